"""Highest and lowest values of the total and of each ticker."""

from __future__ import annotations

import datetime as dt

import pytest

from tickerlake.insights import extremes
from tickerlake.insights.errors import DateOutsideData


def test_extremes_hand_computed(make_bars, good_friday_rows) -> None:
    res = extremes(make_bars(good_friday_rows), "2008-03-19", "2008-03-25")
    # Daily totals of A, B and C (the tickers trading every day): 60, 57, 61, 65.5.
    assert res.total_tickers == ("A", "B", "C")
    assert (res.max_value, res.max_date) == (65.5, dt.date(2008, 3, 25))
    assert (res.min_value, res.min_date) == (57.0, dt.date(2008, 3, 20))
    assert res.narrative == (
        "Highest total close from Mar 19, 2008 to Mar 25, 2008 was 65.5 on Mar 25, 2008; "
        "the lowest was 57 on Mar 20, 2008."
    )
    c = next(t for t in res.tickers if t.ticker == "C")
    assert (c.min_value, c.min_date) == (27.0, dt.date(2008, 3, 20))  # tie with Mar 24: the earliest
    assert [(e.ticker, e.reason) for e in res.excluded] == [
        ("D", "no close on 2 of the window's days"),
        ("E", "no close in the window"),
    ]


def test_single_ticker_and_no_full_ticker(make_bars, good_friday_rows) -> None:
    one = extremes(make_bars([r for r in good_friday_rows if r[0] == "A"]))
    assert (one.max_value, one.min_value) == (12.5, 10.0)
    gappy = extremes(make_bars([r for r in good_friday_rows if r[0] in ("D", "E")]))
    assert gappy.max_date is None and "no ticker traded on every day" in gappy.narrative
    with pytest.raises(DateOutsideData):
        extremes(make_bars(good_friday_rows), "2009-01-01", "2009-02-01")
