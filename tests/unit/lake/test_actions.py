"""Corporate actions inferred from real prices (tests/fixtures/real) and split adjustment."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from tickerlake.lake.actions import (
    adjust_series,
    infer_from_factor,
    later_split_factor,
    match_ratio,
    suspect_splits,
)

REAL = Path(__file__).parents[2] / "fixtures" / "real" / "yahoo_2004_2008.csv"


def _series(ticker: str) -> tuple[list[dt.date], dict[str, np.ndarray]]:
    with open(REAL, encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["Ticker"] == ticker]
    dates = [dt.date.fromisoformat(r["Date"]) for r in rows]
    cols = {
        k: np.array([float(r[k]) for r in rows])
        for k in ("Open", "High", "Low", "Close", "Adj Close", "Volume")
    }
    return dates, cols


def test_match_ratio_takes_clean_ratios_only() -> None:
    assert match_ratio(2.0) == 2.0
    assert match_ratio(2.0 * 1.004) == 2.0  # a split with a small dividend the same day
    assert match_ratio(1 / 10) == pytest.approx(0.1)
    assert match_ratio(1.5) == 1.5
    assert match_ratio(1.12) is None  # MSFT's special dividend step
    assert match_ratio(2.1) is None
    assert match_ratio(0.0) is None


def test_aapl_split_is_inferred_from_the_factor_and_nothing_else_in_2004_2008() -> None:
    dates, c = _series("AAPL")
    found = infer_from_factor(dates, c["Close"], c["Adj Close"])
    # AAPL paid no dividend from 1995 to 2012: exactly the 2:1 split of 2005-02-28.
    assert [(a.date, a.action, a.ratio, a.source) for a in found] == [
        (dt.date(2005, 2, 28), "split", 2.0, "inferred")
    ]


def test_msft_special_dividend_is_inferred_with_its_amount() -> None:
    dates, c = _series("MSFT")
    found = infer_from_factor(dates, c["Close"], c["Adj Close"])
    assert all(a.action == "dividend" and a.source == "inferred" for a in found)
    special = [a for a in found if a.date == dt.date(2004, 11, 15)]
    # $3.00 special + $0.08 regular, read back from Yahoo's factor: (1 - f[t-1]/f[t]) x 29.97.
    assert len(special) == 1 and special[0].amount == pytest.approx(3.03, abs=0.02)
    # Every other one is a regular quarterly dividend (8 to 13 cents a share).
    others = [a for a in found if a.date != dt.date(2004, 11, 15)]
    assert len(others) == 16  # four a year, 2005 to 2008
    assert all(0.07 < (a.amount or 0) < 0.14 for a in others)


def test_a_raw_only_series_has_its_split_suspected_not_inferred() -> None:
    dates, c = _series("AAPL")
    found = suspect_splits(dates, c["Close"], c["Open"])
    assert [(a.date, a.ratio, a.source) for a in found] == [(dt.date(2005, 2, 28), 2.0, "suspected")]


def test_a_jump_that_reverses_is_not_suspected() -> None:
    dates = [dt.date(2020, 1, d) for d in range(2, 12)]
    close = np.array([100, 101, 50, 99, 100, 101, 100, 99, 100, 100], dtype=float)
    assert suspect_splits(dates, close, close.copy()) == []


def test_later_split_factor_multiplies_the_splits_after_each_day() -> None:
    dates = [dt.date(2020, 1, 1), dt.date(2020, 6, 1), dt.date(2021, 1, 1)]
    k = later_split_factor(dates, [(dt.date(2020, 6, 1), 4.0), (dt.date(2020, 12, 1), 2.0)])
    assert k.tolist() == [8.0, 2.0, 1.0]


def test_adjust_series_on_raw_prices_divides_before_the_split_and_keeps_raw_close() -> None:
    dates, c = _series("AAPL")
    split = [(dt.date(2005, 2, 28), 2.0)]
    adj = adjust_series(dates, c["Close"], c["Open"], c["High"], c["Low"], c["Volume"], split)
    t = dates.index(dt.date(2005, 2, 25))
    assert adj.raw
    assert adj.raw_close[t] == 88.99 and adj.close[t] == pytest.approx(44.495)
    assert adj.volume[t] == 2 * 16348400
    assert adj.close[t + 1] == 44.86 and adj.raw_close[t + 1] == 44.86
    # Already adjusted prices (no jump on the split day) keep their close; raw_close is derived.
    again = adjust_series(dates, adj.close, adj.open, adj.high, adj.low, adj.volume, split)
    assert not again.raw
    np.testing.assert_array_equal(again.close, adj.close)
    np.testing.assert_allclose(again.raw_close, c["Close"])
