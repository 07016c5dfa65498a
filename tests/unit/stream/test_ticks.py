"""Unit tests of bars → ticks (pure): the path reproduces each bar exactly, inside the session."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickerlake.stream.ticks import (
    SESSION_US,
    bars_to_ticks,
    session_open_us,
)

D = dt.date


def _bars(*rows: tuple) -> pa.Table:
    """Rows of (ticker, date, open, high, low, close, volume)."""
    cols = list(zip(*rows, strict=True)) if rows else [[]] * 7
    return pa.table(
        {
            "ticker": pa.array(cols[0], pa.string()),
            "date": pa.array(cols[1], pa.date32()),
            "open": pa.array(cols[2], pa.float64()),
            "high": pa.array(cols[3], pa.float64()),
            "low": pa.array(cols[4], pa.float64()),
            "close": pa.array(cols[5], pa.float64()),
            "volume": pa.array(cols[6], pa.int64()),
        }
    )


def _us(y: int, m: int, d: int, hh: int, mm: int) -> int:
    return int(dt.datetime(y, m, d, hh, mm, tzinfo=dt.UTC).timestamp()) * 1_000_000


def _per_bar(result, ticker: str, day: dt.date) -> dict[str, np.ndarray]:
    ticks = result.ticks
    code = ticks.names.index(ticker)
    open_us = session_open_us(np.array([(day - D(1970, 1, 1)).days]))[0]
    mask = (ticks.ticker == code) & (ticks.ts >= open_us) & (ticks.ts < open_us + SESSION_US)
    return {
        "ts": ticks.ts[mask],
        "price": ticks.price[mask],
        "size": ticks.size[mask],
        "seq": ticks.seq[mask],
    }


def test_session_open_follows_new_york_daylight_saving():
    days = np.array([(d - D(1970, 1, 1)).days for d in (D(2020, 1, 2), D(2020, 7, 1), D(2020, 3, 9))])
    # 09:30 EST is 14:30 UTC; 09:30 EDT is 13:30 UTC (DST began on 2020-03-08).
    assert session_open_us(days).tolist() == [
        _us(2020, 1, 2, 14, 30),
        _us(2020, 7, 1, 13, 30),
        _us(2020, 3, 9, 13, 30),
    ]


def test_one_bar_is_reproduced_exactly():
    bars = _bars(("AAPL", D(2020, 1, 2), 74.06, 75.15, 73.8, 75.09, 135_480_400))
    result = bars_to_ticks(bars, ticks_per_bar=390, seed=7)
    t = _per_bar(result, "AAPL", D(2020, 1, 2))
    assert len(t["ts"]) == 390
    assert t["price"][0] == 74.06
    assert t["price"][-1] == 75.09
    assert t["price"].max() == 75.15
    assert t["price"].min() == 73.8
    assert int(t["size"].sum()) == 135_480_400
    assert (t["size"] >= 1).all()
    assert t["ts"][0] == _us(2020, 1, 2, 14, 30)
    assert t["ts"][-1] < _us(2020, 1, 2, 21, 0)
    assert (np.diff(t["ts"]) > 0).all()
    assert t["seq"].tolist() == list(range(1, 391))
    assert result.next_seq == {"AAPL": 391}
    assert result.bars == 1
    assert result.skipped == []


def test_prices_stay_in_range_and_on_the_tick_grid():
    bars = _bars(("MSFT", D(2021, 6, 1), 250.0, 252.5, 248.25, 249.0, 10_000_000))
    prices = bars_to_ticks(bars, ticks_per_bar=1000, seed=1).ticks.price
    assert prices.min() == 248.25 and prices.max() == 252.5
    # Rounded to 4 decimals (anchors are the bar's own values).
    assert np.allclose(prices, np.round(prices, 4), rtol=0, atol=1e-9)


def test_deterministic_per_seed_and_independent_of_the_selection():
    one = _bars(("AAPL", D(2020, 1, 3), 10.0, 11.0, 9.0, 10.5, 1000))
    both = _bars(
        ("AAPL", D(2020, 1, 2), 10.0, 12.0, 8.0, 9.5, 5000),
        ("AAPL", D(2020, 1, 3), 10.0, 11.0, 9.0, 10.5, 1000),
        ("MSFT", D(2020, 1, 3), 20.0, 21.0, 19.0, 20.5, 3000),
    )
    a = bars_to_ticks(one, 50, seed=3)
    b = bars_to_ticks(one, 50, seed=3)
    c = bars_to_ticks(one, 50, seed=4)
    assert np.array_equal(a.ticks.price, b.ticks.price) and np.array_equal(a.ticks.ts, b.ticks.ts)
    assert not np.array_equal(a.ticks.ts, c.ticks.ts)
    # The day's path does not depend on which other bars were asked for (seq does).
    in_both = _per_bar(bars_to_ticks(both, 50, seed=3), "AAPL", D(2020, 1, 3))
    assert np.array_equal(in_both["price"], a.ticks.price)
    assert np.array_equal(in_both["ts"], a.ticks.ts)
    assert in_both["seq"].tolist() == list(range(51, 101))


def test_emission_order_is_by_time_then_ticker_and_seq_counts_per_ticker():
    bars = _bars(
        ("MSFT", D(2020, 1, 2), 20.0, 21.0, 19.0, 20.5, 300),
        ("AAPL", D(2020, 1, 2), 10.0, 11.0, 9.0, 10.5, 100),
        ("AAPL", D(2020, 1, 3), 10.5, 11.0, 10.0, 10.8, 100),
    )
    result = bars_to_ticks(bars, 10, seed=5, seq_start={"AAPL": 100})
    ticks = result.ticks
    key = ticks.ts * 2 + ticks.ticker
    assert (np.diff(key) > 0).all()
    assert ticks.names == ("AAPL", "MSFT")
    aapl = ticks.seq[ticks.ticker == 0]
    assert aapl.tolist() == list(range(100, 120))
    assert result.next_seq == {"AAPL": 120, "MSFT": 11}
    # Both tickers open at exactly 09:30 on the first day.
    assert ticks.ts[0] == ticks.ts[1] == _us(2020, 1, 2, 14, 30)


def test_small_volume_gives_zero_sizes_that_still_sum():
    bars = _bars(
        ("AAPL", D(2020, 1, 2), 10.0, 11.0, 9.0, 10.5, 3), ("AAPL", D(2020, 1, 3), 10.0, 10.0, 10.0, 10.0, 0)
    )
    result = bars_to_ticks(bars, 8, seed=1)
    first = _per_bar(result, "AAPL", D(2020, 1, 2))
    second = _per_bar(result, "AAPL", D(2020, 1, 3))
    assert int(first["size"].sum()) == 3 and (first["size"] >= 0).all()
    assert int(second["size"].sum()) == 0
    assert (second["price"] == 10.0).all()


def test_invalid_and_repeated_bars_are_skipped_with_reasons():
    bars = _bars(
        ("AAPL", D(2020, 1, 2), 10.0, 11.0, 9.0, 10.5, 100),
        ("AAPL", D(2020, 1, 2), 10.0, 11.0, 9.0, 10.6, 100),
        ("MSFT", D(2020, 1, 2), 10.0, 9.0, 11.0, 10.5, 100),
        ("NVDA", D(2020, 1, 2), float("nan"), 11.0, 9.0, 10.5, 100),
        ("TSLA", D(2020, 1, 2), 10.0, 11.0, 9.0, 10.5, -5),
    )
    result = bars_to_ticks(bars, 4, seed=1)
    reasons = {(s.ticker, s.reason.split(" ")[0]) for s in result.skipped}
    assert reasons == {("AAPL", "repeated"), ("MSFT", "inconsistent"), ("NVDA", "open,"), ("TSLA", "volume")}
    assert result.bars == 1
    assert len(result.ticks) == 4


def test_empty_input_and_too_few_ticks():
    assert len(bars_to_ticks(_bars(), 4).ticks) == 0
    with pytest.raises(ValueError, match="at least 4"):
        bars_to_ticks(_bars(("AAPL", D(2020, 1, 2), 1.0, 1.0, 1.0, 1.0, 1)), 3)


def test_to_arrow_columns():
    table = bars_to_ticks(_bars(("AAPL", D(2020, 1, 2), 10.0, 11.0, 9.0, 10.5, 100)), 4).ticks.to_arrow()
    assert table.column_names == ["ticker", "ts", "price", "size", "seq"]
    assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert table.column("ts")[0].as_py() == dt.datetime(2020, 1, 2, 14, 30, tzinfo=dt.UTC)


@st.composite
def _bar(draw: st.DrawFn) -> tuple:
    low = draw(st.floats(0.01, 5000, allow_nan=False, allow_infinity=False))
    high = low + draw(st.floats(0, 500, allow_nan=False, allow_infinity=False))
    o = draw(st.floats(low, high))
    c = draw(st.floats(low, high))
    volume = draw(st.integers(0, 10**11))
    day = draw(st.dates(D(1990, 1, 1), D(2040, 12, 31)))
    return ("T", day, o, high, low, c, volume)


@settings(max_examples=150, deadline=None)
@given(bar=_bar(), n=st.integers(4, 500), seed=st.integers(0, 2**63 - 1))
def test_any_valid_bar_is_reproduced(bar: tuple, n: int, seed: int):
    result = bars_to_ticks(_bars(bar), n, seed)
    _, day, o, h, lo, c, v = bar
    t = _per_bar(result, "T", day)
    assert len(t["ts"]) == n
    assert t["price"][0] == o and t["price"][-1] == c
    assert t["price"].max() == h and t["price"].min() == lo
    assert int(t["size"].sum()) == v and (t["size"] >= 0).all()
    assert (np.diff(t["ts"]) > 0).all()
    open_us = session_open_us(np.array([(day - D(1970, 1, 1)).days]))[0]
    assert t["ts"][0] == open_us and t["ts"][-1] < open_us + SESSION_US
