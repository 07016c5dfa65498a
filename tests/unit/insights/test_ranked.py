"""Ranked tickers over a window (Good Friday inside, an IPO, a tie, a ticker without data)."""

from __future__ import annotations

import datetime as dt

import pytest

from tickerlake.insights import ranked
from tickerlake.insights.errors import EmptyWindow


def test_top_ranked_with_tie_and_ipo(make_bars, good_friday_rows) -> None:
    res = ranked(make_bars(good_friday_rows), "2008-03-19", "2008-03-25", n=2)
    assert [r.ticker for r in res.ranked] == ["A", "B", "D", "C"]
    assert [r.rank for r in res.ranked] == [1, 2, 3, 4]
    assert res.narrative == (
        "Top 2 tickers by close change from Mar 19, 2008 to Mar 25, 2008: A increased by 25% (2.5), "
        "from 10 to 12.5, and B increased by 25% (5), from 20 to 25."
    )
    d = res.ranked[2]
    assert d.partial and d.first_date == dt.date(2008, 3, 24) and d.pct_change == pytest.approx(20.0)
    assert [(e.ticker, e.reason) for e in res.excluded] == [("E", "no close in the window")]


def test_bottom_and_volume(make_bars, good_friday_rows) -> None:
    res = ranked(make_bars(good_friday_rows), "2008-03-19", "2008-03-25", n=1, bottom=True)
    assert res.rows[0].ticker == "C" and res.rows[0].pct_change == pytest.approx(-20 / 3)
    vol = ranked(make_bars(good_friday_rows), "2008-03-19", "2008-03-25", measure="volume")
    assert [(r.ticker, r.total) for r in vol.rows] == [("C", 1200.0), ("A", 400.0), ("B", 200.0)]
    assert vol.narrative.endswith("C with 1,200, A with 400, and B with 200.")


def test_partial_ticker_is_described(make_bars, good_friday_rows) -> None:
    res = ranked(make_bars(good_friday_rows), "2008-03-20", "2008-03-25", n=5)
    assert [r.ticker for r in res.rows] == ["B", "D", "A", "C"]
    assert "D increased by 20% (1), from 5 to 6 (trading Mar 24, 2008 to Mar 25, 2008 only)" in res.narrative
    whole = ranked(make_bars(good_friday_rows), "2008-03-24", "2008-03-25", n=1)
    assert whole.rows[0].ticker == "D" and not whole.rows[0].partial


def test_empty_window(make_bars, good_friday_rows) -> None:
    with pytest.raises(EmptyWindow, match="no trading day between Mar 21, 2008 and Mar 23, 2008"):
        ranked(make_bars(good_friday_rows), "2008-03-21", "2008-03-23")


def test_unadjusted_split_is_back_adjusted(make_bars, make_actions) -> None:
    rows = [("A", "2022-01-03", 100.0), ("A", "2022-01-04", 51.0), ("A", "2022-01-05", 52.0)]
    plain = ranked(make_bars(rows), n=1)
    assert plain.rows[0].pct_change == pytest.approx(-48.0)  # what an unadjusted feed shows
    res = ranked(make_bars(rows), n=1, corporate_actions=make_actions([("A", "2022-01-04", 2.0)]))
    assert (res.rows[0].first_value, res.rows[0].pct_change) == (50.0, pytest.approx(4.0))
