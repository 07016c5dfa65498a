"""Unit tests of the live statistics fold (pure)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from tickerlake.stream.live import TickerStats, apply_ticks

DAY1 = 1_577_975_400_000_000  # 2020-01-02T14:30:00Z
DAY2 = DAY1 + 86_400_000_000


def cols(*rows: tuple[str, int, float, int]) -> dict[str, pa.Array]:
    t, ts, p, s = zip(*rows, strict=True) if rows else ((), (), (), ())
    return {
        "ticker": pa.array(t, pa.string()),
        "ts": pa.array(ts, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "price": pa.array(p, pa.float64()),
        "size": pa.array(s, pa.int64()),
    }


def test_one_batch_gives_open_high_low_last_volume_vwap():
    batch = cols(
        ("AAPL", DAY1, 10.0, 100),
        ("MSFT", DAY1, 50.0, 10),
        ("AAPL", DAY1 + 5, 12.0, 300),
        ("AAPL", DAY1 + 9, 9.0, 100),
    )
    stats = apply_ticks({}, batch)
    a = stats["AAPL"]
    assert (a.day, a.trades, a.volume, a.open, a.high, a.low, a.last) == (
        "2020-01-02",
        3,
        500,
        10.0,
        12.0,
        9.0,
        9.0,
    )
    # (10*100 + 12*300 + 9*100) / 500
    assert a.vwap == pytest.approx(11.0)
    assert a.change_pct == pytest.approx(-10.0)
    assert a.last_ts_us == DAY1 + 9
    assert stats["MSFT"].volume == 10 and stats["MSFT"].vwap == 50.0


def test_batches_accumulate_and_a_new_day_starts_afresh():
    first = apply_ticks({}, cols(("AAPL", DAY1, 10.0, 100)))
    second = apply_ticks(first, cols(("AAPL", DAY1 + 1, 11.0, 100)))
    assert first["AAPL"].volume == 100  # the input is not changed
    assert (second["AAPL"].trades, second["AAPL"].volume, second["AAPL"].last) == (2, 200, 11.0)
    third = apply_ticks(second, cols(("AAPL", DAY2, 20.0, 5), ("AAPL", DAY1 + 2, 1.0, 1)))
    assert third["AAPL"] == TickerStats(
        "AAPL", "2020-01-03", 1, 5, 20.0, 20.0, 20.0, 20.0, 20.0, 0.0, DAY2, 100.0
    )
    # Ticks of an earlier session are history, not live.
    assert apply_ticks(third, cols(("AAPL", DAY1 + 3, 1.0, 1))) == third


def test_zero_volume_has_no_vwap_and_empty_batches_change_nothing():
    stats = apply_ticks({}, cols(("AAPL", DAY1, 10.0, 0)))
    assert stats["AAPL"].vwap is None
    assert apply_ticks(stats, cols()) == stats
