"""Forecast: hand-computed intervals on a constant-volatility series, errors, a calibration backtest."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pyarrow as pa
import pytest

from tickerlake.insights import backtest, forecast
from tickerlake.insights.errors import BadInput, UnknownTicker, WindowTooShort
from tickerlake.insights.forecast import Z80, Z95


def _zigzag(n: int = 100, a: float = 0.01) -> pa.Table:
    """100 at the start and (n even) at the end, moving ±a in log terms every business day."""
    days = np.busday_offset(np.datetime64("2022-01-03"), np.arange(n + 1), roll="forward")
    logp = math.log(100) + np.array([0.0 if k % 2 == 0 else a for k in range(n + 1)])
    return pa.table(
        {
            "ticker": ["ZIG"] * (n + 1),
            "date": pa.array(days.astype(object).tolist(), pa.date32()),
            "close": np.exp(logp),
        }
    )


def test_intervals_hand_computed() -> None:
    bars = _zigzag()
    res = forecast(bars, "zig", horizon=5)
    assert res.ticker == "ZIG" and res.last_value == pytest.approx(100.0)
    assert res.last_date == dt.date(2022, 5, 23)  # a Monday: 100 business days after Jan 3
    # Monday 30 May 2022 is Memorial Day: the fifth trading day after the 23rd is the 31st.
    assert [p.date for p in res.points] == [dt.date(2022, 5, d) for d in (24, 25, 26, 27, 31)]
    a, n = 0.01, 100
    for p in res.points:
        # Every squared return is a², so short- and long-run variance agree; the mean return is 0.
        var = p.step * a * a + (p.step**2) * a * a / n
        assert p.median == pytest.approx(100.0)
        assert p.point == pytest.approx(100.0 * math.exp(-var))  # the MAPE-optimal point
        assert p.lo80 == pytest.approx(100 * math.exp(-Z80 * math.sqrt(var)))
        assert p.hi80 == pytest.approx(100 * math.exp(Z80 * math.sqrt(var)))
        assert p.lo95 == pytest.approx(100 * math.exp(-Z95 * math.sqrt(var)))
        assert p.hi95 == pytest.approx(100 * math.exp(Z95 * math.sqrt(var)))
        assert p.lo95 < p.lo80 < p.point < p.median < p.hi80 < p.hi95
    assert res.volatility_pct == pytest.approx(a * math.sqrt(252) * 100)
    assert res.narrative.startswith(
        "ZIG close is forecast at 99.95 on May 31, 2022 (5 trading days after 100 on"
    )


def test_future_dates_skip_exchange_holidays() -> None:
    # A series ending on Friday 22 December 2023: Christmas (Monday 25th) and New Year's
    # Day 2024 (a Monday) are skipped, the weekends too.
    days = np.busday_offset(np.datetime64("2023-12-22"), -np.arange(80)[::-1], roll="forward")
    bars = pa.table(
        {
            "ticker": ["HOL"] * len(days),
            "date": pa.array(days.astype(object).tolist(), pa.date32()),
            "close": 100 * np.exp(0.01 * (np.arange(len(days)) % 2)),
        }
    )
    res = forecast(bars, "HOL", horizon=7)
    assert res.last_date == dt.date(2023, 12, 22)
    assert [p.date for p in res.points] == [
        dt.date(2023, 12, 26),
        dt.date(2023, 12, 27),
        dt.date(2023, 12, 28),
        dt.date(2023, 12, 29),
        dt.date(2024, 1, 2),
        dt.date(2024, 1, 3),
        dt.date(2024, 1, 4),
    ]
    assert [p.step for p in res.points] == list(range(1, 8))
    assert "on Jan 4, 2024 (7 trading days after" in res.narrative


def test_bad_requests() -> None:
    with pytest.raises(UnknownTicker, match="unknown ticker 'NOPE'"):
        forecast(_zigzag(), "NOPE")
    with pytest.raises(WindowTooShort, match="needs at least 60"):
        forecast(_zigzag(40), "ZIG")
    with pytest.raises(BadInput, match="horizon"):
        forecast(_zigzag(), "ZIG", horizon=0)
    with pytest.raises(BadInput, match="price measure"):
        forecast(_zigzag(), "ZIG", measure="volume")


def test_backtest_is_calibrated_on_a_random_walk(synth_market) -> None:
    bars = synth_market(tickers=("AAA", "BBB", "CCC"), days=1500, seed=11, drift=0.0004)
    res = backtest(bars, horizon=20, every=10)
    assert res.tickers == ("AAA", "BBB", "CCC")
    assert abs(res.coverage80 - 80) <= 5 and abs(res.coverage95 - 95) <= 5
    assert res.mape <= res.naive_mape * 1.01
    with pytest.raises(WindowTooShort):
        backtest(_zigzag(), horizon=30)


def test_forecast_from_an_origin_carries_what_happened_next() -> None:
    bars = _zigzag(n=120)
    res = forecast(bars, "ZIG", horizon=5, origin="2022-05-22")  # a Sunday: the Friday before is used
    assert res.last_date == dt.date(2022, 5, 20)
    # The model saw only the bars up to the origin: the same forecast as on the cut data.
    cut = bars.filter(pa.compute.less_equal(bars["date"], pa.scalar(dt.date(2022, 5, 20))))
    assert [p.median for p in res.points] == [p.median for p in forecast(cut, "ZIG", horizon=5).points]
    # Actuals: 100 on even steps from the start, 101.005 on odd ones; Memorial Day is skipped.
    assert [p.date for p in res.points] == [dt.date(2022, 5, d) for d in (23, 24, 25, 26, 27)]
    assert [round(p.actual, 3) for p in res.points] == [100.0, 101.005, 100.0, 101.005, 100.0]
    assert res.actual_days == 5 and res.inside95 == 5
    assert "It was actually 100 on May 27, 2022" in res.narrative
    assert forecast(bars, "ZIG", horizon=5).points[0].actual is None


def test_total_close_of_several_tickers_on_their_common_days() -> None:
    a = _zigzag(n=100)
    b = _zigzag(n=100).set_column(0, "ticker", pa.array(["ZAG"] * 101))
    late = b.slice(10)  # ZAG lists ten days later: those ten days are not in the total
    res = forecast(pa.concat_tables([a, late]), None, horizon=3)
    assert res.ticker == "TOTAL" and res.tickers == ("ZAG", "ZIG")
    assert res.last_value == pytest.approx(200.0)
    assert res.narrative.startswith("The total close of ZAG, ZIG is forecast at")
    with pytest.raises(WindowTooShort, match="before the origin"):
        forecast(a, "ZIG", origin="2022-02-01")
