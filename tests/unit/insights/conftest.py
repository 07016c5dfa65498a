"""Fixtures for the insight tests: tiny hand-made bar tables and a seeded synthetic market."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pytest

__all__ = ["GOOD_FRIDAY_ROWS", "good_friday_rows", "make_actions", "make_bars", "synth_market"]

Row = tuple[str, str, float] | tuple[str, str, float, int]

# Mar 21, 2008 was Good Friday: the window's trading days are Mar 19, 20, 24 and 25.
GOOD_FRIDAY_ROWS: list[Row] = [
    ("A", "2008-03-19", 10.0, 100),
    ("A", "2008-03-20", 11.0, 100),
    ("A", "2008-03-24", 12.0, 100),
    ("A", "2008-03-25", 12.5, 100),
    ("B", "2008-03-19", 20.0, 50),
    ("B", "2008-03-20", 19.0, 50),
    ("B", "2008-03-24", 22.0, 50),
    ("B", "2008-03-25", 25.0, 50),
    ("C", "2008-03-19", 30.0, 300),
    ("C", "2008-03-20", 27.0, 300),
    ("C", "2008-03-24", 27.0, 300),
    ("C", "2008-03-25", 28.0, 300),
    ("D", "2008-03-24", 5.0, 1),
    ("D", "2008-03-25", 6.0, 1),
    ("E", "2008-03-18", 7.0, 1),
]


def _bars(rows: Sequence[Row]) -> pa.Table:
    """Long bars from ``(ticker, 'YYYY-MM-DD', close[, volume])`` rows (adj_close = close)."""
    tickers = [r[0] for r in rows]
    dates = [dt.date.fromisoformat(r[1]) for r in rows]
    close = [float(r[2]) for r in rows]
    volume = [int(r[3]) if len(r) > 3 else 1000 for r in rows]  # type: ignore[misc]
    return pa.table(
        {
            "ticker": pa.array(tickers, pa.string()),
            "date": pa.array(dates, pa.date32()),
            "open": pa.array(close, pa.float64()),
            "high": pa.array(close, pa.float64()),
            "low": pa.array(close, pa.float64()),
            "close": pa.array(close, pa.float64()),
            "adj_close": pa.array(close, pa.float64()),
            "volume": pa.array(volume, pa.int64()),
        }
    )


def _actions(rows: Sequence[tuple[str, str, float]]) -> pa.Table:
    """Split actions from ``(ticker, 'YYYY-MM-DD', ratio)`` rows."""
    return pa.table(
        {
            "ticker": pa.array([r[0] for r in rows], pa.string()),
            "date": pa.array([dt.date.fromisoformat(r[1]) for r in rows], pa.date32()),
            "action": pa.array(["split"] * len(rows), pa.string()),
            "ratio": pa.array([float(r[2]) for r in rows], pa.float64()),
            "amount": pa.nulls(len(rows), pa.float64()),
        }
    )


def _synth(
    tickers: Sequence[str] = ("AAA", "BBB", "CCC", "DDD", "EEE"),
    days: int = 400,
    seed: int = 0,
    shocks: Sequence[tuple[str, int, float]] = (),
    start: dt.date = dt.date(2020, 1, 2),
    idio_vol: float = 0.01,
    market_vol: float = 0.01,
    drift: float = 0.0,
) -> pa.Table:
    """A seeded one-factor market on business days; ``shocks`` = (ticker, day index, log return)."""
    rng = np.random.default_rng(seed)
    dates = np.busday_offset(np.datetime64(start, "D"), np.arange(days), roll="forward")
    market = rng.normal(drift, market_vol, days)
    cols: dict[str, list] = {"ticker": [], "date": [], "close": [], "volume": []}
    for k, t in enumerate(tickers):
        beta = 0.8 + 0.1 * k
        r = beta * market + rng.normal(0.0, idio_vol, days)
        for who, at, size in shocks:
            if who == t:
                r[at] = size
        r[0] = 0.0
        close = 50.0 * (k + 1) * np.exp(np.cumsum(r))
        cols["ticker"] += [t] * days
        cols["date"] += dates.astype(object).tolist()
        cols["close"] += close.tolist()
        cols["volume"] += rng.integers(1_000_000, 2_000_000, days).tolist()
    return pa.table(
        {
            "ticker": pa.array(cols["ticker"], pa.string()),
            "date": pa.array(cols["date"], pa.date32()),
            "close": pa.array(cols["close"], pa.float64()),
            "adj_close": pa.array(cols["close"], pa.float64()),
            "volume": pa.array(cols["volume"], pa.int64()),
        }
    )


@pytest.fixture(scope="session")
def make_bars() -> Callable[[Sequence[Row]], pa.Table]:
    """Factory: long bars from ``(ticker, date, close[, volume])`` rows."""
    return _bars


@pytest.fixture(scope="session")
def make_actions() -> Callable[[Sequence[tuple[str, str, float]]], pa.Table]:
    """Factory: split actions from ``(ticker, date, ratio)`` rows."""
    return _actions


@pytest.fixture(scope="session")
def synth_market() -> Callable[..., pa.Table]:
    """Factory: a seeded synthetic market (see :func:`_synth`)."""
    return _synth


@pytest.fixture(scope="session")
def good_friday_rows() -> list[Row]:
    """A window around Good Friday 2008 with a tie, an IPO, a gap-free trio and an absent ticker."""
    return GOOD_FRIDAY_ROWS
