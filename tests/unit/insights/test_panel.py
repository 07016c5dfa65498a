"""Long bars → panel: identity by the ticker column, validation, windows, split handling."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from tickerlake.insights._panel import (
    adjust_splits,
    as_date,
    build_panel,
    log_returns,
    prev_index,
    split_days,
)
from tickerlake.insights.errors import (
    BadInput,
    DateOutsideData,
    EmptyWindow,
    NoData,
    NotATradingDay,
    UnknownTicker,
)


def test_columns_follow_the_ticker_column_not_row_order(make_bars) -> None:
    rows = [
        ("MSFT", "2022-01-04", 300.0),
        ("aapl", "2022-01-03", 180.0),
        ("GOOGL", "2022-01-03", 140.0),
        ("MSFT", "2022-01-03", 310.0),
        ("AAPL", "2022-01-04", 181.0),
    ]
    p = build_panel(make_bars(rows))
    assert p.tickers == ("AAPL", "GOOGL", "MSFT")
    assert p.dates.astype(str).tolist() == ["2022-01-03", "2022-01-04"]
    assert p.values[0].tolist() == [180.0, 140.0, 310.0]
    assert p.values[1, p.col("AAPL")] == 181.0
    assert p.values[1, p.col("msft")] == 300.0
    assert np.isnan(p.values[1, p.col("GOOGL")])
    assert p.has_row[:, p.col("GOOGL")].tolist() == [True, False]


def test_bad_inputs_are_one_line_errors(make_bars) -> None:
    with pytest.raises(NoData):
        build_panel(make_bars([]))
    with pytest.raises(BadInput, match="unknown measure"):
        build_panel(make_bars([("A", "2022-01-03", 1.0)]), "price")
    with pytest.raises(BadInput, match="duplicate bar for A on 2022-01-03"):
        build_panel(make_bars([("A", "2022-01-03", 1.0), ("A", "2022-01-03", 2.0)]))
    with pytest.raises(BadInput, match="non-positive close"):
        build_panel(make_bars([("A", "2022-01-03", 0.0)]))
    with pytest.raises(BadInput, match="lack the column 'close'"):
        build_panel(pa.table({"ticker": ["A"], "date": [dt.date(2022, 1, 3)]}))
    with pytest.raises(UnknownTicker, match="unknown ticker ZZZ"):
        build_panel(make_bars([("A", "2022-01-03", 1.0)]), tickers=["zzz"])
    with pytest.raises(BadInput, match="bad date"):
        as_date("2022-13-01")


def test_string_dates_and_nulls() -> None:
    t = pa.table({"ticker": ["A", "A"], "date": ["2022-01-03", "2022-01-04"], "close": [1.0, None]})
    p = build_panel(t)
    assert p.last_date == dt.date(2022, 1, 4)
    assert p.has_row[1, 0] and np.isnan(p.values[1, 0])


def test_locate_and_window(make_bars) -> None:
    p = build_panel(make_bars([("A", "2022-01-03", 1.0), ("A", "2022-01-05", 2.0), ("A", "2022-01-10", 3.0)]))
    assert p.locate(dt.date(2022, 1, 5)) == 1
    with pytest.raises(NotATradingDay, match=r"previous: Jan 5, 2022, next: Jan 10, 2022"):
        p.locate(dt.date(2022, 1, 8))
    with pytest.raises(DateOutsideData, match=r"outside the data \(Jan 3, 2022 to Jan 10, 2022\)"):
        p.locate(dt.date(2021, 12, 31))
    assert p.window(dt.date(2022, 1, 4), dt.date(2022, 1, 10)) == (1, 3)
    assert p.window(None, None) == (0, 3)
    with pytest.raises(EmptyWindow, match="no trading day between Jan 6, 2022 and Jan 9, 2022"):
        p.window(dt.date(2022, 1, 6), dt.date(2022, 1, 9))
    with pytest.raises(DateOutsideData):
        p.window(dt.date(2023, 1, 1), dt.date(2023, 2, 1))
    with pytest.raises(BadInput, match="starts"):
        p.window(dt.date(2022, 1, 9), dt.date(2022, 1, 6))


def test_prev_index_and_gaps() -> None:
    valid = np.array([[True, False], [False, True], [True, True], [True, False]])
    assert prev_index(valid).tolist() == [[-1, -1], [0, -1], [0, 1], [2, 2]]


def test_returns_skip_gaps_and_matching_splits(make_bars, make_actions) -> None:
    rows = [
        ("A", "2022-01-03", 100.0),
        ("A", "2022-01-04", 50.5),  # unadjusted 2:1 split: the jump matches the ratio
        ("A", "2022-01-05", 51.0),
        ("B", "2022-01-03", 10.0),
        ("B", "2022-01-05", 11.0),  # no bar on Jan 4: a gap
    ]
    p = build_panel(make_bars(rows))
    acts = make_actions([("A", "2022-01-04", 2.0), ("B", "2022-01-05", 3.0)])
    _, found = split_days(p, acts)
    assert [(s.ticker, s.date, s.ratio) for s in found] == [("A", dt.date(2022, 1, 4), 2.0)]
    r = log_returns(p, acts)
    assert np.isnan(r.r[1, 0]) and r.r[2, 0] == pytest.approx(np.log(51.0 / 50.5))
    assert np.isnan(r.r[2, 1])  # across the gap
    assert log_returns(p, acts, allow_gaps=True).r[2, 1] == pytest.approx(np.log(1.1))
    adjusted, _ = adjust_splits(p, acts)
    assert adjusted.values[:, 0].tolist() == [50.0, 50.5, 51.0]
    # An adjusted series has no jump, so an announced split changes nothing.
    q = build_panel(make_bars([("A", "2022-01-03", 50.0), ("A", "2022-01-04", 50.5)]))
    assert split_days(q, acts)[1] == []
