"""Recession windows: hand-computed per-ticker figures, recovery, ranking, window names."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from tickerlake.insights import BUILTIN_WINDOWS, parse_windows, recession, resolve_window
from tickerlake.insights.errors import BadInput, UnknownPeriod, WindowTooShort

D = dt.date
PRE = ["2008-02-25", "2008-02-26", "2008-02-27", "2008-02-28", "2008-02-29"]
WIN = ["2008-03-03", "2008-03-04", "2008-03-05", "2008-03-06", "2008-03-07"]
POST = ["2008-03-10", "2008-03-11"]
SERIES = {
    "A": ([110, 120, 115, 112, 100], [100, 90, 99, 80, 88], [100, 121]),
    "B": ([50] * 5, [50] * 5, [50, 50]),
    "C": ([200, 190, 180, 170, 160], [150, 148, 147, 149, 144], [150, 151]),
    "D": ([], [None, None, 10, 12, 13], [13, 14]),  # lists inside the window
    "E": ([], [None, None, None, None, 7], [7, 7]),  # one day in the window only
}


def _rows() -> list[tuple[str, str, float]]:
    rows = []
    for t, (pre, win, post) in SERIES.items():
        days = (PRE[-len(pre) :] if pre else []) + WIN + POST
        for d, v in zip(days, pre + win + post, strict=True):
            if v is not None:
                rows.append((t, d, float(v)))
    return rows


def test_per_ticker_figures_hand_computed(make_bars) -> None:
    res = recession(make_bars(_rows()), start="2008-03-01", end="2008-03-07")
    assert (res.first_date, res.last_date) == (D(2008, 3, 3), D(2008, 3, 7))
    assert [r.ticker for r in res.tickers] == ["D", "B", "C", "A"]
    assert [(e.ticker, e.reason) for e in res.excluded] == [("E", "only one trading day in the window")]
    a = res.tickers[3]
    assert a.rank == 4 and a.return_pct == pytest.approx(-12.0)
    assert (a.max_drawdown_pct, a.peak_date, a.trough_date) == (
        pytest.approx(-20.0),
        D(2008, 3, 3),
        D(2008, 3, 6),
    )
    simple = np.array([-0.1, 0.1, 80 / 99 - 1, 0.1])
    assert a.volatility_pct == pytest.approx(np.std(np.log1p(simple), ddof=1) * math.sqrt(252) * 100)
    assert (a.worst_day, a.worst_day_pct) == (D(2008, 3, 6), pytest.approx((80 / 99 - 1) * 100))
    assert (a.best_day, a.best_day_pct) == (D(2008, 3, 5), pytest.approx(10.0))  # tie with Mar 7: the first
    b = res.tickers[1]
    assert (b.beta, b.return_pct, b.max_drawdown_pct) == (pytest.approx(0.0), 0.0, 0.0)
    assert math.isnan(b.correlation)
    assert (a.pre_window_peak, a.pre_window_peak_date) == (120.0, D(2008, 2, 26))
    assert (a.recovered, a.recovery_date, a.recovery_days) == (True, D(2008, 3, 11), 3)
    assert (b.recovered, b.recovery_days) == (True, 0)
    c = res.tickers[2]
    assert (c.recovered, c.recovery_days, c.pre_window_peak) == (False, None, 200.0)
    d = res.tickers[0]
    assert d.partial and d.recovered is None and d.return_pct == pytest.approx(30.0)
    assert (
        "Most resilient: D (+30%); hardest hit: A (-12%, max drawdown -20% from Mar 3, 2008 to Mar 6, 2008)"
        in (res.narrative)
    )
    assert res.narrative.endswith("2 of 3 had recovered their pre-window peak by Mar 11, 2008; C has not.")


def test_beta_and_basket_with_two_tickers(make_bars) -> None:
    rows = [r for r in _rows() if r[0] in ("A", "B")]
    res = recession(make_bars(rows), start="2008-03-03", end="2008-03-07")
    a, b = (next(r for r in res.tickers if r.ticker == t) for t in ("A", "B"))
    # The basket return is half of A's each day (B is flat): beta 2, correlation 1.
    assert a.beta == pytest.approx(2.0) and a.correlation == pytest.approx(1.0)
    assert b.beta == pytest.approx(0.0)
    level = np.prod(1 + np.array([-0.1, 0.1, 80 / 99 - 1, 0.1]) / 2)
    assert res.basket.return_pct == pytest.approx((level - 1) * 100)
    assert res.basket.ticker == "BASKET" and res.basket.rank == 0


def test_single_ticker_lake(make_bars) -> None:
    res = recession(make_bars([r for r in _rows() if r[0] == "A"]), start="2008-03-03", end="2008-03-07")
    (a,) = res.tickers
    assert a.beta == pytest.approx(1.0) and a.correlation == pytest.approx(1.0)
    assert " A returned -12% with a max drawdown of -20%." in res.narrative


def test_windows_and_errors(make_bars) -> None:
    assert (BUILTIN_WINDOWS["nber-2008"].start, BUILTIN_WINDOWS["nber-2008"].end) == (
        D(2007, 12, 1),
        D(2009, 6, 30),
    )
    assert BUILTIN_WINDOWS["study-2008-focus"].start == D(2008, 4, 15)
    assert BUILTIN_WINDOWS["bear-2022"].end == D(2022, 10, 12)
    assert resolve_window("NBER-2020").end == D(2020, 4, 30)
    mine = parse_windows("dip=2008-03-03..2008-03-07:the March dip; other = 2008-03-04..2008-03-05")
    assert mine["dip"].label == "the March dip" and mine["other"].start == D(2008, 3, 4)
    res = recession(make_bars(_rows()), "dip", windows=mine)
    assert res.narrative.startswith("The March dip (Mar 3, 2008 to Mar 7, 2008): the equal-weight basket")
    with pytest.raises(UnknownPeriod, match="unknown period 'nope'"):
        recession(make_bars(_rows()), "nope")
    with pytest.raises(BadInput, match="bad window"):
        parse_windows("x=2008-03-03")
    with pytest.raises(BadInput, match="ends before it starts"):
        parse_windows("x=2008-03-03..2008-03-01")
    with pytest.raises(WindowTooShort, match="1 trading day"):
        recession(make_bars(_rows()), start="2008-03-07", end="2008-03-08")
    with pytest.raises(BadInput, match="period name or both"):
        recession(make_bars(_rows()), start="2008-03-07")
