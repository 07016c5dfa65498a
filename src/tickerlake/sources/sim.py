"""Deterministic simulated stock market: the embedded default source. Pure numpy/pyarrow, no I/O.

Nothing here is real market data. Every row carries ``source = "sim"``.

Model, per trading day ``t`` and ticker ``i`` (log returns)::

    m[t]    = drift[t] + SIGMA_M * vm[t] * sqrt(hm[t]) * zm[t]           market factor
    r[i,t]  = beta[i] * m[t] + s[i,t] * sqrt(h[i,t]) * z[i,t]            stock
    h[t+1]  = min((1 - a - b) + (a * z[t]**2 + b) * h[t], CAP)          GARCH(1,1), unit mean

``z`` are Student-t draws scaled to unit variance (fat tails), ``drift`` and ``vm`` come
from :data:`MARKET_REGIMES` (the real crisis windows and their recoveries; the market's
noise sums to zero inside each window, so every seed gets the full crash), ``s`` is the
ticker's idiosyncratic volatility, higher in its first years. The eight FANGMANT
tickers are then pinned through a handful of approximate historical price levels
(:class:`TickerProfile.waypoints`) by adding a piecewise-constant drift, so that prices
sit in realistic ranges while every day-to-day move stays random. Splits, quarterly
dividends and a few injected single-day shocks (the ground truth for anomaly detection)
complete the picture.

Determinism and consistency:

* the calendar and the market factor depend only on ``seed`` (one random stream per
  calendar year, a GARCH recursion from 1980), never on the tickers or the range asked for;
* every ticker has its own random streams keyed by ``(seed, ticker)``, so batches of
  tickers can be generated separately (and in any order) and still agree;
* the eight named tickers are simulated over their whole life, so a row for a given
  ``(seed, ticker, date)`` is the same whatever ``start``/``end`` was requested (only
  ``adj_close`` changes when ``end`` passes 2023-12-12 and brings later dividends, as
  Yahoo's does over time). The synthetic universe (``universe=N``) is laid out over the
  requested range instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa

from tickerlake import calendar
from tickerlake.config import DEFAULT_TICKERS
from tickerlake.errors import TickerlakeError
from tickerlake.lake.contract import RAW_ACTION_COLUMNS, RAW_BAR_COLUMNS

__all__ = [
    "ANOMALY_COLUMNS",
    "ANOMALY_WINDOW",
    "DATASET_COLUMNS",
    "DEFAULT_END",
    "DEFAULT_SEED",
    "DEFAULT_START",
    "EARLIEST_DATE",
    "LATEST_DATE",
    "MARKET_REGIMES",
    "PROFILES",
    "SIM_SOURCE",
    "MarketRegime",
    "TickerProfile",
    "anomaly_ground_truth",
    "expected_rows",
    "nyse_holidays",
    "simulate",
    "simulated_tickers",
    "trading_days",
]

SIM_SOURCE = "sim"
DEFAULT_START = dt.date(1997, 6, 1)
DEFAULT_END = dt.date(2023, 12, 12)
DEFAULT_SEED = 42
#: The market factor is simulated from here on; earlier starts are refused.
EARLIEST_DATE = dt.date(1980, 1, 1)
LATEST_DATE = dt.date(2100, 12, 31)

#: Trailing window (sessions) against which an injected shock's size is measured.
ANOMALY_WINDOW = 60

#: Columns of the ``sim_anomalies`` ground-truth dataset.
ANOMALY_COLUMNS: tuple[str, ...] = (
    "ticker",
    "date",
    "event_id",
    "kind",
    "magnitude_sigma",
    "log_return",
    "baseline_sigma",
    "source",
)

#: Column order of every dataset :func:`simulate` yields (for the raw-zone writer).
DATASET_COLUMNS: dict[str, tuple[str, ...]] = {
    "daily_bars": RAW_BAR_COLUMNS,
    "daily_bars_unadjusted": RAW_BAR_COLUMNS,
    "corporate_actions": RAW_ACTION_COLUMNS,
    "sim_anomalies": ANOMALY_COLUMNS,
}

_D = dt.date
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()

# --------------------------------------------------------------------------------------
# Trading calendar
# --------------------------------------------------------------------------------------

# The days themselves come from :mod:`tickerlake.calendar` (the exchange-calendars library's
# NYSE calendar), shared with the forecasts so both agree on what a trading day is.


def nyse_holidays(year: int) -> list[dt.date]:
    """Weekdays the NYSE is closed in a year: regular holidays and special closures.

    Args:
        year: Calendar year.

    Returns:
        Sorted closure dates falling on weekdays.
    """
    return calendar.holidays(year)


def _epoch(day: dt.date) -> int:
    return day.toordinal() - _EPOCH_ORDINAL


def trading_days(start: dt.date, end: dt.date) -> np.ndarray:
    """NYSE trading days in ``[start, end]`` as a ``datetime64[D]`` array.

    Args:
        start: First calendar day (inclusive).
        end: Last calendar day (inclusive).

    Returns:
        Sorted trading days; empty when ``start > end``.
    """
    return calendar.trading_days(start, end)


@lru_cache(maxsize=8)
def _master_days(through_year: int) -> np.ndarray:
    """Trading days from :data:`EARLIEST_DATE` to the end of ``through_year``, as epoch days."""
    days = trading_days(EARLIEST_DATE, dt.date(through_year, 12, 31)).astype(np.int64)
    days.flags.writeable = False
    return days


# --------------------------------------------------------------------------------------
# Market regimes and ticker profiles
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MarketRegime:
    """A window in which the market factor gets an extra total log move and a volatility multiple.

    Attributes:
        name: Short label.
        start: First day (inclusive).
        end: Last day (inclusive).
        log_move: Extra log return of the market factor spread evenly over the window.
        vol_mult: Multiple of the market factor's volatility inside the window.
    """

    name: str
    start: dt.date
    end: dt.date
    log_move: float
    vol_mult: float


#: Real crisis windows (and their recoveries) reproduced by the market factor.
MARKET_REGIMES: tuple[MarketRegime, ...] = (
    MarketRegime("black_monday_1987", _D(1987, 10, 14), _D(1987, 10, 19), -0.30, 4.0),
    MarketRegime("gulf_war_1990", _D(1990, 7, 17), _D(1990, 10, 11), -0.20, 1.4),
    MarketRegime("dotcom_bubble", _D(1998, 10, 9), _D(2000, 3, 10), 0.55, 1.3),
    MarketRegime("dotcom_bust", _D(2000, 3, 13), _D(2002, 10, 9), -0.75, 1.6),
    MarketRegime("recovery_2003_2007", _D(2002, 10, 10), _D(2007, 10, 9), 0.55, 0.8),
    MarketRegime("credit_crunch", _D(2007, 10, 10), _D(2008, 8, 29), -0.18, 1.3),
    MarketRegime("gfc", _D(2008, 9, 2), _D(2009, 3, 9), -0.70, 2.2),
    MarketRegime("gfc_recovery", _D(2009, 3, 10), _D(2010, 4, 23), 0.55, 1.3),
    MarketRegime("downgrade_2011", _D(2011, 7, 22), _D(2011, 10, 3), -0.18, 1.8),
    MarketRegime("selloff_2018q4", _D(2018, 10, 3), _D(2018, 12, 24), -0.20, 1.6),
    MarketRegime("covid_crash", _D(2020, 2, 20), _D(2020, 3, 23), -0.30, 2.6),
    MarketRegime("covid_recovery", _D(2020, 3, 24), _D(2020, 8, 31), 0.40, 1.6),
    MarketRegime("bear_2022", _D(2022, 1, 4), _D(2022, 10, 12), -0.32, 1.5),
    MarketRegime("rebound_2023", _D(2022, 10, 13), _D(2023, 7, 31), 0.25, 1.0),
)


@dataclass(frozen=True, slots=True)
class TickerProfile:
    """How one named ticker is simulated.

    Attributes:
        ticker: Symbol.
        first_day: Real first trading day; the first simulated row.
        beta: Loading on the market factor.
        idio_vol: Daily idiosyncratic volatility of a mature company.
        young_boost: Extra idiosyncratic volatility right after listing (decays over ~2.5 years).
        waypoints: ``(date, close)`` pins in today's split-adjusted terms; the first is the
            first day's close. Approximate historical levels, not real quotes.
        volume: Typical split-adjusted daily volume at listing and at the end of 2023.
        splits: ``(ex-date, ratio)`` with ratio = new shares per old share.
        dividends: ``(from, until or None, quarterly yield)`` segments of a cash dividend.
        dividend_months: Months of the quarterly ex-dates.
        dividend_day: Day of month from which the ex-date is the next trading day.
    """

    ticker: str
    first_day: dt.date
    beta: float
    idio_vol: float
    young_boost: float
    waypoints: tuple[tuple[dt.date, float], ...]
    volume: tuple[float, float]
    splits: tuple[tuple[dt.date, float], ...] = ()
    dividends: tuple[tuple[dt.date, dt.date | None, float], ...] = ()
    dividend_months: tuple[int, ...] = (2, 5, 8, 11)
    dividend_day: int = 10


# Waypoints are rough historical levels in split-adjusted terms as of end-2023 (NVDA's
# 2024 split excluded), enough to keep the simulated paths in realistic ranges.
PROFILES: dict[str, TickerProfile] = {
    p.ticker: p
    for p in (
        TickerProfile(
            "META",
            _D(2012, 5, 18),
            beta=1.2,
            idio_vol=0.016,
            young_boost=0.8,
            waypoints=(
                (_D(2012, 5, 18), 38.23),
                (_D(2012, 9, 4), 17.7),
                (_D(2016, 1, 4), 102.0),
                (_D(2018, 7, 25), 217.5),
                (_D(2018, 12, 24), 124.0),
                (_D(2021, 9, 7), 382.0),
                (_D(2022, 11, 3), 88.9),
                (_D(2023, 12, 12), 334.0),
            ),
            volume=(6.0e7, 1.8e7),
        ),
        TickerProfile(
            "AAPL",
            _D(1980, 12, 12),
            beta=1.2,
            idio_vol=0.016,
            young_boost=1.0,
            waypoints=(
                (_D(1980, 12, 12), 0.128),
                (_D(1991, 6, 3), 0.35),
                (_D(1997, 7, 8), 0.13),
                (_D(2000, 3, 22), 1.0),
                (_D(2003, 4, 17), 0.23),
                (_D(2007, 12, 27), 7.1),
                (_D(2009, 3, 9), 3.0),
                (_D(2010, 6, 30), 9.0),
                (_D(2012, 9, 19), 25.0),
                (_D(2016, 5, 12), 22.5),
                (_D(2020, 1, 2), 75.0),
                (_D(2021, 12, 31), 178.0),
                (_D(2023, 1, 3), 125.0),
                (_D(2023, 12, 12), 194.7),
            ),
            volume=(3.0e8, 5.5e7),
            splits=(
                (_D(1987, 6, 16), 2.0),
                (_D(2000, 6, 21), 2.0),
                (_D(2005, 2, 28), 2.0),
                (_D(2014, 6, 9), 7.0),
                (_D(2020, 8, 31), 4.0),
            ),
            dividends=(
                (_D(1987, 5, 1), _D(1995, 12, 31), 0.0030),
                (_D(2012, 8, 1), _D(2016, 12, 31), 0.0045),
                (_D(2017, 1, 1), _D(2019, 12, 31), 0.0035),
                (_D(2020, 1, 1), None, 0.0016),
            ),
            dividend_day=8,
        ),
        TickerProfile(
            "NFLX",
            _D(2002, 5, 23),
            beta=1.2,
            idio_vol=0.025,
            young_boost=0.8,
            waypoints=(
                (_D(2002, 5, 23), 1.2),
                (_D(2002, 10, 10), 0.37),
                (_D(2004, 1, 15), 4.3),
                (_D(2008, 12, 1), 3.0),
                (_D(2011, 7, 12), 42.7),
                (_D(2012, 9, 25), 7.8),
                (_D(2015, 7, 15), 98.0),
                (_D(2018, 6, 20), 416.0),
                (_D(2021, 11, 17), 692.0),
                (_D(2022, 5, 11), 174.0),
                (_D(2023, 12, 12), 473.0),
            ),
            volume=(1.0e8, 4.0e6),
            splits=((_D(2004, 2, 12), 2.0), (_D(2015, 7, 15), 7.0)),
        ),
        TickerProfile(
            "GOOGL",
            _D(2004, 8, 19),
            beta=1.05,
            idio_vol=0.012,
            young_boost=1.0,
            waypoints=(
                (_D(2004, 8, 19), 2.51),
                (_D(2007, 11, 6), 18.6),
                (_D(2008, 11, 20), 6.5),
                (_D(2010, 6, 30), 11.1),
                (_D(2013, 12, 31), 28.0),
                (_D(2019, 12, 31), 67.0),
                (_D(2021, 11, 18), 148.0),
                (_D(2022, 11, 3), 83.0),
                (_D(2023, 12, 12), 133.0),
            ),
            volume=(9.0e8, 3.0e7),
            splits=((_D(2014, 4, 3), 2.0), (_D(2022, 7, 18), 20.0)),
        ),
        TickerProfile(
            "MSFT",
            _D(1986, 3, 13),
            beta=1.0,
            idio_vol=0.011,
            young_boost=1.2,
            waypoints=(
                (_D(1986, 3, 13), 0.097),
                (_D(1997, 6, 2), 15.5),
                (_D(1999, 12, 27), 58.0),
                (_D(2002, 7, 23), 21.0),
                (_D(2009, 3, 9), 15.2),
                (_D(2013, 1, 2), 27.0),
                (_D(2018, 12, 24), 94.0),
                (_D(2021, 11, 19), 343.0),
                (_D(2022, 11, 3), 214.0),
                (_D(2023, 12, 12), 374.0),
            ),
            volume=(3.0e8, 2.5e7),
            splits=(
                (_D(1987, 9, 21), 2.0),
                (_D(1990, 4, 16), 2.0),
                (_D(1991, 6, 27), 1.5),
                (_D(1992, 6, 15), 1.5),
                (_D(1994, 5, 23), 2.0),
                (_D(1996, 12, 9), 2.0),
                (_D(1998, 2, 23), 2.0),
                (_D(1999, 3, 29), 2.0),
                (_D(2003, 2, 18), 2.0),
            ),
            dividends=(
                (_D(2003, 2, 1), _D(2003, 12, 31), 0.0015),
                (_D(2004, 1, 1), _D(2012, 12, 31), 0.0045),
                (_D(2013, 1, 1), _D(2019, 12, 31), 0.0055),
                (_D(2020, 1, 1), None, 0.0025),
            ),
            dividend_day=15,
        ),
        TickerProfile(
            "AMZN",
            _D(1997, 5, 15),
            beta=1.3,
            idio_vol=0.02,
            young_boost=1.5,
            waypoints=(
                (_D(1997, 5, 15), 0.098),
                (_D(1999, 12, 9), 5.3),
                (_D(2001, 9, 28), 0.28),
                (_D(2007, 12, 26), 4.8),
                (_D(2008, 11, 20), 1.8),
                (_D(2010, 1, 4), 6.7),
                (_D(2012, 12, 31), 12.5),
                (_D(2015, 12, 29), 34.0),
                (_D(2018, 9, 4), 101.0),
                (_D(2021, 7, 8), 186.0),
                (_D(2022, 12, 28), 81.0),
                (_D(2023, 12, 12), 153.0),
            ),
            volume=(2.0e8, 5.0e7),
            splits=(
                (_D(1998, 6, 2), 2.0),
                (_D(1999, 1, 5), 3.0),
                (_D(1999, 9, 2), 2.0),
                (_D(2022, 6, 6), 20.0),
            ),
        ),
        TickerProfile(
            "NVDA",
            _D(1999, 1, 22),
            beta=1.6,
            idio_vol=0.02,
            young_boost=1.2,
            waypoints=(
                (_D(1999, 1, 22), 0.547),
                (_D(2002, 1, 3), 5.8),
                (_D(2002, 10, 8), 0.58),
                (_D(2007, 10, 31), 9.4),
                (_D(2008, 11, 20), 1.6),
                (_D(2012, 6, 1), 3.1),
                (_D(2015, 12, 29), 8.2),
                (_D(2018, 10, 1), 70.0),
                (_D(2018, 12, 24), 32.0),
                (_D(2021, 11, 29), 333.0),
                (_D(2022, 10, 13), 112.0),
                (_D(2023, 12, 12), 476.0),
            ),
            volume=(2.0e8, 4.5e7),
            splits=(
                (_D(2000, 6, 27), 1.5),
                (_D(2001, 9, 17), 2.0),
                (_D(2006, 4, 7), 2.0),
                (_D(2007, 9, 11), 1.5),
                (_D(2021, 7, 20), 4.0),
            ),
            dividends=(
                (_D(2012, 11, 1), _D(2015, 12, 31), 0.0040),
                (_D(2016, 1, 1), _D(2019, 12, 31), 0.0007),
                (_D(2020, 1, 1), None, 0.0001),
            ),
            dividend_day=25,
        ),
        TickerProfile(
            "TSLA",
            _D(2010, 6, 29),
            beta=1.5,
            idio_vol=0.028,
            young_boost=0.6,
            waypoints=(
                (_D(2010, 6, 29), 1.59),
                (_D(2013, 9, 30), 12.1),
                (_D(2019, 6, 3), 12.3),
                (_D(2020, 1, 2), 28.7),
                (_D(2021, 11, 4), 409.0),
                (_D(2022, 12, 27), 109.0),
                (_D(2023, 7, 18), 293.0),
                (_D(2023, 12, 12), 237.0),
            ),
            volume=(2.8e8, 1.2e8),
            splits=((_D(2020, 8, 31), 5.0), (_D(2022, 8, 25), 3.0)),
        ),
    )
}

# --------------------------------------------------------------------------------------
# Model constants
# --------------------------------------------------------------------------------------

_GARCH_ALPHA = 0.06
_GARCH_BETA = 0.92
# Caps the conditional variance (in multiples of its mean): a GARCH path with fat-tailed
# shocks can otherwise wander to volatilities no real stock shows for months.
_GARCH_CAP = 4.0
_MARKET_SIGMA = 0.0105
_MARKET_DRIFT = 0.0003
_MARKET_DF = 5.0
_IDIO_DF = 4.0
# Natural innovations are Student-t draws, never clipped: a real market's fat tails reach
# the injected shocks' sizes now and then, and a detector scored on this data must live
# with that (bench/insights.py reports its precision and recall on exactly that basis).
_YOUNG_YEARS = 2.5
_SESSIONS_PER_YEAR = 252.0
_CLUSTER_EVENTS_PER_YEAR = 0.15
_CLUSTER_P_NAMED = 0.4
_CLUSTER_P_UNIVERSE = 0.003
_SINGLE_SHOCKS_PER_YEAR = 1.0 / 15.0
_SHOCK_MIN_SIGMA = 7.0
_SHOCK_SPAN_SIGMA = 3.0
_UNIVERSE_SPLITS_PER_YEAR = 1.0 / 12.0
_UNIVERSE_LISTED_AT_START = 0.8
_PRICE_FLOOR = 0.0001
_EVENT_CHUNK = 64

# Random-stream tags: each (seed, tag[, ticker key]) is an independent stream.
_TAG_MARKET = 1
_TAG_CLUSTER = 2
_TAG_UNIVERSE = 3
_TAG_Z = 11
_TAG_NORMAL = 12
_TAG_EXPO = 13
_TAG_SHOCKS = 14
_TAG_MEMBERS = 15
_TAG_SPLITS = 16


def _rng(*words: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(list(words))))


def _ticker_key(ticker: str) -> int:
    """A stable 64-bit key of a symbol (Python's ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.blake2b(ticker.encode(), digest_size=8).digest(), "little")


def _unit_t(rng: np.random.Generator, df: float, n: int) -> np.ndarray:
    """Student-t draws scaled to unit variance (fat tails, not clipped)."""
    z = rng.standard_t(df, n)
    z *= np.sqrt((df - 2.0) / df)
    return z


def _years_of(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970


# --------------------------------------------------------------------------------------
# Market factor
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Market:
    days: np.ndarray  # epoch days of the master calendar
    ret: np.ndarray  # market factor log return
    sd: np.ndarray  # conditional sd of its random part
    idio_mult: np.ndarray  # crisis multiple applied to idiosyncratic volatility
    event_idx: np.ndarray  # master index of cluster-shock days
    event_sign: np.ndarray
    event_ids: tuple[str, ...]


@lru_cache(maxsize=4)
def _market(seed: int, through_year: int) -> _Market:
    """The market factor over the master calendar from 1980 to the end of ``through_year``.

    Each calendar year draws from its own stream and the GARCH recursion runs forward from
    1980, so a day's value depends only on ``seed``, not on how far the calendar reaches.
    """
    days = _master_days(through_year)
    years = _years_of(days)
    n = len(days)
    z = np.empty(n)
    event_idx: list[int] = []
    event_sign: list[float] = []
    event_ids: list[str] = []
    bounds = np.searchsorted(years, np.arange(years[0], years[-1] + 2))
    for j, year in enumerate(range(int(years[0]), int(years[-1]) + 1)):
        lo, hi = int(bounds[j]), int(bounds[j + 1])
        z[lo:hi] = _unit_t(_rng(seed, _TAG_MARKET, year), _MARKET_DF, hi - lo)
        ev = _rng(seed, _TAG_CLUSTER, year)
        count = int(ev.poisson(_CLUSTER_EVENTS_PER_YEAR))
        pos = ev.integers(lo, hi, size=count)
        sign = np.where(ev.random(count) < 0.4, 1.0, -1.0)
        for k, p in enumerate(pos.tolist()):
            if p not in event_idx:
                event_idx.append(p)
                event_sign.append(float(sign[k]))
                event_ids.append(f"C{year}-{k + 1}")
    order = np.argsort(np.array(event_idx, dtype=np.int64), kind="stable")

    drift = np.full(n, _MARKET_DRIFT)
    vm = np.ones(n)
    windows = []
    for reg in MARKET_REGIMES:
        lo, hi = (int(x) for x in np.searchsorted(days, [_epoch(reg.start), _epoch(reg.end) + 1]))
        if hi > lo:
            drift[lo:hi] += reg.log_move / (hi - lo)
            vm[lo:hi] = reg.vol_mult
            windows.append((lo, hi))
    # A short causal average lets volatility build up and fade instead of jumping.
    c = np.concatenate(([0.0], np.cumsum(vm)))
    w = 5
    idx = np.arange(n)
    vm = (c[idx + 1] - c[np.maximum(idx + 1 - w, 0)]) / np.minimum(idx + 1, w)

    a = (_GARCH_ALPHA * z * z + _GARCH_BETA).tolist()
    omega = 1.0 - _GARCH_ALPHA - _GARCH_BETA
    h = [1.0] * n
    for t in range(1, n):
        h[t] = min(omega + a[t - 1] * h[t - 1], _GARCH_CAP)
    sd = _MARKET_SIGMA * vm * np.sqrt(np.array(h))
    noise = sd * z
    # Inside each regime window the noise sums to zero, so every seed gets the regime's
    # full move from its first to its last day; the path in between stays random.
    for lo, hi in windows:
        noise[lo:hi] -= noise[lo:hi].mean()
    ret = drift + noise
    for arr in (days, ret, sd, vm):
        arr.flags.writeable = False
    idio_mult = 1.0 + 0.35 * (vm - 1.0)
    idio_mult.flags.writeable = False
    return _Market(
        days=days,
        ret=ret,
        sd=sd,
        idio_mult=idio_mult,
        event_idx=np.array(event_idx, dtype=np.int64)[order],
        event_sign=np.array(event_sign)[order],
        event_ids=tuple(event_ids[i] for i in order.tolist()),
    )


# --------------------------------------------------------------------------------------
# Per-ticker plans
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Plan:
    """Everything needed to simulate one ticker, in master-calendar indices."""

    ticker: str
    key: int
    first: int  # master index of the first simulated day
    horizon: int  # master index of the last simulated day
    beta: float
    idio_vol: float
    young_boost: float
    pins: tuple[tuple[int, float], ...]  # (life index, log close)
    volume: tuple[float, float]
    split_idx: np.ndarray  # life indices
    split_ratio: np.ndarray
    div_idx: np.ndarray  # life indices
    div_yield: np.ndarray
    cluster_p: float


def _life_index(days: np.ndarray, first: int, day: dt.date) -> int:
    """Life index of the first trading day on or after ``day``."""
    return int(np.searchsorted(days, _epoch(day))) - first


def _named_plan(profile: TickerProfile, days: np.ndarray, end_idx: int) -> _Plan:
    first = int(np.searchsorted(days, _epoch(profile.first_day)))
    if days[first] != _epoch(profile.first_day):
        raise TickerlakeError(f"sim profile {profile.ticker}: {profile.first_day} is not a trading day")
    pins = []
    for day, price in profile.waypoints:
        pins.append((_life_index(days, first, day), float(np.log(price))))
    if pins[0][0] != 0 or any(b[0] <= a[0] for a, b in itertools.pairwise(pins)):
        raise TickerlakeError(f"sim profile {profile.ticker}: waypoints must start on day one and increase")
    horizon = max(end_idx, first + pins[-1][0])
    split_idx = []
    for day, _ in profile.splits:
        i = _life_index(days, first, day)
        if days[first + i] != _epoch(day):
            raise TickerlakeError(f"sim profile {profile.ticker}: split {day} is not a trading day")
        split_idx.append(i)
    splits = set(split_idx)
    div_idx: list[int] = []
    div_yield: list[float] = []
    last_day = dt.date.fromordinal(int(days[horizon]) + _EPOCH_ORDINAL)
    for lo, hi, quarterly in profile.dividends:
        until = min(hi or last_day, last_day)
        for year in range(lo.year, until.year + 1):
            for month in profile.dividend_months:
                day = dt.date(year, month, profile.dividend_day)
                if not lo <= day <= until:
                    continue
                i = _life_index(days, first, day)
                while i in splits:
                    i += 1
                if 1 <= i <= horizon - first and (not div_idx or i > div_idx[-1]):
                    div_idx.append(i)
                    div_yield.append(quarterly)
    return _Plan(
        ticker=profile.ticker,
        key=_ticker_key(profile.ticker),
        first=first,
        horizon=horizon,
        beta=profile.beta,
        idio_vol=profile.idio_vol,
        young_boost=profile.young_boost,
        pins=tuple(pins),
        volume=profile.volume,
        split_idx=np.array(split_idx, dtype=np.int64),
        split_ratio=np.array([r for _, r in profile.splits]),
        div_idx=np.array(div_idx, dtype=np.int64),
        div_yield=np.array(div_yield),
        cluster_p=_CLUSTER_P_NAMED,
    )


def _poisson_days(rng: np.random.Generator, rate_per_year: float, length: int) -> np.ndarray:
    """Event days of a Poisson process over ``length`` sessions with their two uniform marks.

    Draws in fixed-size chunks, so a longer life only appends events: the prefix is stable.

    Returns:
        Array of shape (k, 3): life index, mark 1, mark 2.
    """
    q = rate_per_year / _SESSIONS_PER_YEAR
    log1q = np.log1p(-q)
    rows = []
    pos = -1.0
    while pos < length:
        u = rng.random((_EVENT_CHUNK, 3))
        gaps = 1.0 + np.floor(np.log1p(-u[:, 0]) / log1q)
        at = pos + np.cumsum(gaps)
        rows.append(np.column_stack([at, u[:, 1], u[:, 2]]))
        pos = float(at[-1])
    out = np.concatenate(rows)
    return out[out[:, 0] < length]


@dataclass(frozen=True, slots=True)
class _Universe:
    names: tuple[str, ...]
    u: np.ndarray  # (n, 9) uniforms, one row per ticker


def _universe_names(n: int) -> tuple[str, ...]:
    width = max(5, len(str(n)))
    return tuple(f"S{i:0{width}d}" for i in range(1, n + 1))


def _universe(n: int, seed: int) -> _Universe:
    # One (n, k) draw: row i is the same for every universe size.
    return _Universe(_universe_names(n), _rng(seed, _TAG_UNIVERSE).random((n, 9)))


_UNIVERSE_RATIOS = np.array([2.0, 3.0, 1.5, 4.0, 5.0, 10.0, 0.1])
_UNIVERSE_RATIO_CDF = np.cumsum([0.5, 0.15, 0.1, 0.1, 0.05, 0.05, 0.05])


def _universe_first(u: np.ndarray, start_idx: int, end_idx: int) -> int:
    if u[0] < _UNIVERSE_LISTED_AT_START:
        return start_idx
    last_ipo = max(start_idx, end_idx - int(_SESSIONS_PER_YEAR))
    return start_idx + int(u[1] * (last_ipo - start_idx + 1))


def _universe_plan(name: str, u: np.ndarray, seed: int, start_idx: int, end_idx: int) -> _Plan:
    key = _ticker_key(name)
    first = _universe_first(u, start_idx, end_idx)
    length = end_idx - first + 1
    ev = _poisson_days(_rng(seed, _TAG_SPLITS, key), _UNIVERSE_SPLITS_PER_YEAR, length)
    ev = ev[ev[:, 0] >= 20]
    split_idx = ev[:, 0].astype(np.int64)
    split_ratio = _UNIVERSE_RATIOS[np.minimum(np.searchsorted(_UNIVERSE_RATIO_CDF, ev[:, 1]), 6)]
    # Prices are drawn in "as traded at listing" terms, then expressed in adjusted terms.
    f0 = float(np.prod(split_ratio))
    log_p0 = np.log(5.0) + u[5] * np.log(60.0) - np.log(f0)
    years = length / _SESSIONS_PER_YEAR
    log_p1 = log_p0 + years * (-0.06 + 0.22 * u[6])
    pins = ((0, float(log_p0)),) if length < 2 else ((0, float(log_p0)), (length - 1, float(log_p1)))
    v0 = float(np.exp(np.log(2e5) + u[7] * np.log(250.0)))
    return _Plan(
        ticker=name,
        key=key,
        first=first,
        horizon=end_idx,
        beta=0.5 + 1.1 * float(u[2]),
        idio_vol=0.008 + 0.022 * float(u[3]),
        young_boost=1.5 * float(u[4]),
        pins=pins,
        volume=(v0, v0 * float(np.exp(2.0 * u[8] - 1.0))),
        split_idx=split_idx,
        split_ratio=split_ratio,
        div_idx=np.empty(0, dtype=np.int64),
        div_yield=np.empty(0),
        cluster_p=_CLUSTER_P_UNIVERSE,
    )


# --------------------------------------------------------------------------------------
# Simulation core
# --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Path:
    """One simulated ticker over its life; price arrays are in split-adjusted terms."""

    plan: _Plan
    log_close: np.ndarray
    ret: np.ndarray  # close-to-close log return (first entry: from a virtual previous close)
    sd: np.ndarray  # conditional sd of the day's return
    shocks: list[tuple[int, str, str]]  # (life index, event id, kind)


def _shock_days(plan: _Plan, market: _Market, seed: int, length: int) -> list[tuple[int, str, str, float]]:
    """Injected shocks: (life index, event id, kind, signed size in sigmas), by day."""
    blocked = set(plan.split_idx.tolist()) | set(plan.div_idx.tolist())

    def eligible(i: int) -> bool:
        return ANOMALY_WINDOW < i < length and i not in blocked

    found: dict[int, tuple[int, str, str, float]] = {}
    n_events = len(market.event_idx)
    if n_events:
        u = _rng(seed, _TAG_MEMBERS, plan.key).random((n_events, 2))
        life = market.event_idx - plan.first
        for e in np.flatnonzero(u[:, 0] < plan.cluster_p).tolist():
            i = int(life[e])
            if eligible(i):
                size = market.event_sign[e] * (_SHOCK_MIN_SIGMA + _SHOCK_SPAN_SIGMA * u[e, 1])
                found[i] = (i, market.event_ids[e], "cluster", float(size))
    single = _poisson_days(_rng(seed, _TAG_SHOCKS, plan.key), _SINGLE_SHOCKS_PER_YEAR, length)
    for seq, (at, mag, sgn) in enumerate(single.tolist()):
        i = int(at)
        if eligible(i) and i not in found:
            size = (1.0 if sgn < 0.45 else -1.0) * (_SHOCK_MIN_SIGMA + _SHOCK_SPAN_SIGMA * mag)
            found[i] = (i, f"{plan.ticker}-{seq + 1}", "single", size)
    return [found[i] for i in sorted(found)]


def _simulate_paths(plans: Sequence[_Plan], market: _Market, seed: int) -> list[_Path]:
    """Close-to-close paths of a batch; the GARCH recursion runs across the batch at once."""
    if not plans:
        return []
    a0 = min(p.first for p in plans)
    a1 = max(p.horizon for p in plans)
    rows, n = a1 - a0 + 1, len(plans)
    z = np.zeros((rows, n))
    # Outside a ticker's life the recursion is held at its unit mean.
    coef = np.full((rows, n), _GARCH_ALPHA + _GARCH_BETA)
    for j, p in enumerate(plans):
        sl = slice(p.first - a0, p.horizon - a0 + 1)
        zj = _unit_t(_rng(seed, _TAG_Z, p.key), _IDIO_DF, p.horizon - p.first + 1)
        z[sl, j] = zj
        coef[sl, j] = _GARCH_ALPHA * zj * zj + _GARCH_BETA
    h = np.empty((rows, n))
    h[0] = 1.0
    omega = 1.0 - _GARCH_ALPHA - _GARCH_BETA
    for t in range(1, rows):
        np.multiply(h[t - 1], coef[t - 1], out=h[t])
        h[t] += omega
        np.minimum(h[t], _GARCH_CAP, out=h[t])
    np.sqrt(h, out=h)

    paths = []
    for j, p in enumerate(plans):
        sl = slice(p.first - a0, p.horizon - a0 + 1)
        msl = slice(p.first, p.horizon + 1)
        length = p.horizon - p.first + 1
        age = np.arange(length) / _SESSIONS_PER_YEAR
        s_idio = p.idio_vol * (1.0 + p.young_boost * np.exp(-age / _YOUNG_YEARS)) * market.idio_mult[msl]
        s_idio *= h[sl, j]
        ret = p.beta * market.ret[msl] + s_idio * z[sl, j]
        sd = np.hypot(p.beta * market.sd[msl], s_idio)
        if len(p.div_idx):
            ret[p.div_idx] += np.log1p(-p.div_yield)
        shocks = _shock_days(p, market, seed, length)
        for i, _, _, size in shocks:
            ret[i] = size * float(np.std(ret[i - ANOMALY_WINDOW : i], ddof=1))
        # Pin the path through the waypoints with a piecewise-constant extra drift.
        cum = np.cumsum(ret)
        cum -= ret[0]
        log_p0 = p.pins[0][1]
        at = np.array([i for i, _ in p.pins], dtype=np.float64)
        gap = np.array([lp - log_p0 for _, lp in p.pins]) - cum[at.astype(np.int64)]
        correction = np.interp(np.arange(length, dtype=np.float64), at, gap)
        log_close = log_p0 + cum + correction
        day_ret = np.diff(log_close, prepend=log_p0 - ret[0])
        paths.append(_Path(p, log_close, day_ret, sd, [(i, eid, kind) for i, eid, kind, _ in shocks]))
    return paths


# --------------------------------------------------------------------------------------
# Arrow output
# --------------------------------------------------------------------------------------


def _round(x: np.ndarray) -> np.ndarray:
    return np.maximum(np.round(x, 4), _PRICE_FLOOR)


@dataclass(slots=True)
class _Bars:
    """In-range output columns of one ticker."""

    days: np.ndarray
    adj: tuple[np.ndarray, ...]  # open, high, low, close, adj_close, volume (split-adjusted)
    raw: tuple[np.ndarray, ...]  # open, high, low, close, volume (as traded)
    actions: list[tuple[int, str, float | None, float | None]]  # (epoch day, action, ratio, amount)


def _split_factor(plan: _Plan, life: np.ndarray) -> np.ndarray:
    """Shares on each life day per share after every configured split (1 after the last)."""
    suffix = np.concatenate((np.cumprod(plan.split_ratio[::-1])[::-1], [1.0]))
    return suffix[np.searchsorted(plan.split_idx, life, side="right")]


def _bars(path: _Path, market: _Market, seed: int, lo: int, hi: int) -> _Bars:
    """OHLCV of life indices ``[lo, hi]`` (inclusive), both as adjusted and as traded."""
    p = path.plan
    length = len(path.log_close)
    # The random streams cover the whole life, so a bar does not depend on the range asked for.
    noise = _rng(seed, _TAG_NORMAL, p.key).standard_normal((length, 2))[lo : hi + 1]
    expo = _rng(seed, _TAG_EXPO, p.key).standard_exponential((length, 2))[lo : hi + 1]
    lc = path.log_close[lo : hi + 1]
    r = path.ret[lo : hi + 1]
    sd = path.sd[lo : hi + 1]
    # The open gaps part of the way towards the close, with some noise of its own.
    log_open = lc - 0.6 * r + 0.25 * sd * noise[:, 0]
    top = np.maximum(log_open, lc) + 0.5 * sd * expo[:, 0]
    bottom = np.minimum(log_open, lc) - 0.5 * sd * expo[:, 1]
    o, h, low, c = np.exp(log_open), np.exp(top), np.exp(bottom), np.exp(lc)
    life = np.arange(lo, hi + 1)
    factor = _split_factor(p, life)

    # Volume drifts from its listing level to its end-2023 level, flat afterwards.
    frac = np.minimum(life / max(p.pins[-1][0], 1), 1.0)
    log_v = np.log(p.volume[0]) + frac * (np.log(p.volume[1]) - np.log(p.volume[0]))
    # Volume rises with the size of the move; 0.28 keeps the average near the level.
    log_v += 0.35 * np.minimum(np.abs(r) / sd, 6.0) - 0.28 + 0.25 * noise[:, 1]
    vol_raw = np.maximum(np.rint(np.exp(log_v) / factor), 1.0)
    vol_adj = np.maximum(np.rint(vol_raw * factor), 1.0)

    close = _round(c)
    days = market.days[p.first + lo : p.first + hi + 1]
    actions: list[tuple[int, str, float | None, float | None]] = []
    for i, ratio in zip(p.split_idx.tolist(), p.split_ratio.tolist(), strict=True):
        if lo <= i <= hi:
            actions.append((int(market.days[p.first + i]), "split", ratio, None))
    adj_close = close
    if len(p.div_idx):
        # Every dividend of the simulated life counts, so adj_close does not depend on the range.
        d = p.div_idx
        prev = np.exp(path.log_close[d - 1])
        prev_close = _round(prev)
        cash_as_paid = np.round(p.div_yield * _round(prev * _split_factor(p, d - 1)), 2)
        amount = np.round(cash_as_paid / _split_factor(p, d), 6)
        ok = amount > 0
        d, amount, prev_close = d[ok], amount[ok], prev_close[ok]
        # Yahoo-style: every close before an ex-date is scaled by (1 - dividend / previous close).
        mult = 1.0 - amount / prev_close
        suffix = np.concatenate((np.cumprod(mult[::-1])[::-1], [1.0]))
        adj_close = _round(close * suffix[np.searchsorted(d, life, side="right")])
        for i, a in zip(d.tolist(), amount.tolist(), strict=True):
            if lo <= i <= hi:
                actions.append((int(market.days[p.first + i]), "dividend", None, a))
    actions.sort(key=lambda a: (a[0], a[1]))
    return _Bars(
        days=days,
        adj=(_round(o), _round(h), _round(low), close, adj_close, vol_adj.astype(np.int64)),
        raw=(
            _round(o * factor),
            _round(h * factor),
            _round(low * factor),
            _round(c * factor),
            vol_raw.astype(np.int64),
        ),
        actions=actions,
    )


def _strings(names: Sequence[str], counts: Sequence[int]) -> pa.Array:
    """``names[k]`` repeated ``counts[k]`` times, built straight from Arrow buffers."""
    encoded = [x.encode() for x in names]
    lengths = np.repeat(np.array([len(x) for x in encoded], dtype=np.int64), counts)
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int32)
    data = b"".join(x * int(c) for x, c in zip(encoded, counts, strict=True))
    return pa.StringArray.from_buffers(len(lengths), pa.py_buffer(offsets), pa.py_buffer(data))


def _dates(epoch_days: np.ndarray) -> pa.Array:
    return pa.array(epoch_days.astype(np.int32), type=pa.date32())


def _bar_table(keys: Sequence[pa.Array], cols: Sequence[np.ndarray]) -> pa.Table:
    """A :data:`RAW_BAR_COLUMNS` table from (ticker, date) arrays and six value columns."""
    n = len(keys[0])
    arrays = [
        *keys,
        *[pa.array(c, pa.float64()) for c in cols[:5]],
        pa.array(cols[5], pa.int64()),
        _strings([SIM_SOURCE], [n]),
        pa.nulls(n, pa.string()),
        pa.nulls(n, pa.int64()),
    ]
    return pa.Table.from_arrays(arrays, names=list(RAW_BAR_COLUMNS))


def _actions_table(rows: list[tuple[str, int, str, float | None, float | None]]) -> pa.Table:
    n = len(rows)
    return pa.Table.from_arrays(
        [
            pa.array([r[0] for r in rows], pa.string()),
            _dates(np.array([r[1] for r in rows], dtype=np.int64)),
            pa.array([r[2] for r in rows], pa.string()),
            pa.array([r[3] for r in rows], pa.float64()),
            pa.array([r[4] for r in rows], pa.float64()),
            _strings([SIM_SOURCE], [n]),
            pa.nulls(n, pa.string()),
            pa.nulls(n, pa.int64()),
        ],
        names=list(RAW_ACTION_COLUMNS),
    )


def _anomaly_rows(path: _Path, market: _Market, lo: int, hi: int) -> list[tuple[object, ...]]:
    """Ground truth of one ticker's shocks in ``[lo, hi]``, measured on the final path."""
    out: list[tuple[object, ...]] = []
    for i, event_id, kind in path.shocks:
        if lo <= i <= hi:
            base = float(np.std(path.ret[i - ANOMALY_WINDOW : i], ddof=1))
            r = float(path.ret[i])
            day = int(market.days[path.plan.first + i])
            out.append(
                (path.plan.ticker, day, event_id, kind, round(r / base, 4), round(r, 6), round(base, 6))
            )
    return out


def _anomaly_table(rows: list[tuple[object, ...]]) -> pa.Table:
    n = len(rows)
    cols: list[Sequence[object]] = list(zip(*rows, strict=True)) if rows else [[] for _ in range(7)]
    return pa.Table.from_arrays(
        [
            pa.array(cols[0], pa.string()),
            _dates(np.array(cols[1], dtype=np.int64)),
            pa.array(cols[2], pa.string()),
            pa.array(cols[3], pa.string()),
            pa.array(cols[4], pa.float64()),
            pa.array(cols[5], pa.float64()),
            pa.array(cols[6], pa.float64()),
            _strings([SIM_SOURCE], [n]),
        ],
        names=list(ANOMALY_COLUMNS),
    )


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Request:
    names: tuple[str, ...]
    start_idx: int
    end_idx: int
    seed: int
    universe: _Universe | None
    market: _Market


def _as_date(value: dt.date | str, what: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise TickerlakeError(f"sim: {what} {value!r} is not a date (YYYY-MM-DD)") from None


def simulated_tickers(tickers: Sequence[str] | None = None, universe: int | None = None) -> tuple[str, ...]:
    """The symbols a simulation covers, in output order.

    Args:
        tickers: Named tickers (any of :data:`PROFILES`); None means the eight defaults.
        universe: Size of a synthetic universe (``S00001``...) instead of named tickers.

    Returns:
        Symbols, upper-case, without duplicates.

    Raises:
        TickerlakeError: Unknown ticker, both or a bad universe size.
    """
    if universe is not None:
        if tickers:
            raise TickerlakeError("sim: give either tickers or a universe size, not both")
        if isinstance(universe, bool) or not isinstance(universe, int) or not 1 <= universe <= 1_000_000:
            raise TickerlakeError(f"sim: universe size must be an integer in 1..1000000, got {universe!r}")
        return _universe_names(universe)
    names = tuple(dict.fromkeys(t.strip().upper() for t in (tickers or DEFAULT_TICKERS)))
    unknown = [t for t in names if t not in PROFILES]
    if unknown:
        raise TickerlakeError(
            f"sim: no simulation profile for {', '.join(unknown)} (known: {', '.join(PROFILES)}; "
            "use a universe size for synthetic tickers)"
        )
    return names


def _request(
    tickers: Sequence[str] | None,
    start: dt.date | str,
    end: dt.date | str,
    seed: int,
    universe: int | None,
) -> _Request:
    start_d, end_d = _as_date(start, "start"), _as_date(end, "end")
    if start_d > end_d:
        raise TickerlakeError(f"sim: start {start_d} is after end {end_d}")
    if start_d < EARLIEST_DATE or end_d > LATEST_DATE:
        raise TickerlakeError(f"sim: dates must lie within {EARLIEST_DATE}..{LATEST_DATE}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise TickerlakeError(f"sim: seed must be a non-negative integer, got {seed!r}")
    names = simulated_tickers(tickers, universe)
    # Whole regime windows are always simulated so the market factor never depends on `end`.
    through = max(end_d.year, *(r.end.year for r in MARKET_REGIMES))
    if universe is None:
        through = max(through, *(PROFILES[t].waypoints[-1][0].year for t in names))
    market = _market(int(seed), through)
    start_idx = int(np.searchsorted(market.days, _epoch(start_d), side="left"))
    end_idx = int(np.searchsorted(market.days, _epoch(end_d), side="right")) - 1
    uni = _universe(universe, int(seed)) if universe is not None else None
    return _Request(names, start_idx, end_idx, int(seed), uni, market)


def _plans(req: _Request, names: Sequence[str]) -> list[_Plan]:
    if req.end_idx < req.start_idx:
        return []
    out = []
    for name in names:
        if req.universe is None:
            profile = PROFILES[name]
            if _epoch(profile.first_day) > req.market.days[req.end_idx]:
                continue
            out.append(_named_plan(profile, req.market.days, req.end_idx))
        else:
            i = int(name[1:]) - 1
            out.append(_universe_plan(name, req.universe.u[i], req.seed, req.start_idx, req.end_idx))
    return out


def _life_range(plan: _Plan, req: _Request) -> tuple[int, int]:
    return max(req.start_idx, plan.first) - plan.first, min(req.end_idx, plan.horizon) - plan.first


def simulate(
    tickers: Sequence[str] | None = None,
    start: dt.date | str = DEFAULT_START,
    end: dt.date | str = DEFAULT_END,
    seed: int = DEFAULT_SEED,
    *,
    universe: int | None = None,
    batch_size: int = 256,
    unadjusted: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> Iterator[tuple[str, pa.Table]]:
    """Simulate daily bars, corporate actions and anomaly ground truth.

    Arguments are checked before the first batch is produced. For each batch of
    ``batch_size`` tickers it yields, in this order (empty tables included):

    * ``("daily_bars", t)``: :data:`RAW_BAR_COLUMNS`; prices split-adjusted as Yahoo
      reports them (rounded to 4 decimals), ``adj_close`` also dividend-adjusted, volume
      in split-adjusted shares (int64), ``source = "sim"``, ``source_file``/``source_row`` null;
    * ``("daily_bars_unadjusted", t)`` (when ``unadjusted``): the same rows at the prices
      and share counts actually traded; ``adj_close`` is the same fully adjusted close;
    * ``("corporate_actions", t)``: :data:`RAW_ACTION_COLUMNS`, splits (``ratio``) and
      dividends (``amount`` per share in split-adjusted terms, like Yahoo) inside the range;
    * ``("sim_anomalies", t)``: :data:`ANOMALY_COLUMNS`, injected shocks inside the range
      (see :func:`anomaly_ground_truth`).

    Args:
        tickers: Named tickers; None means the eight FANGMANT tickers.
        start: First day (inclusive); a ticker starts at the later of this and its first day.
        end: Last day (inclusive).
        seed: Non-negative seed; the same arguments give byte-identical tables.
        universe: Generate ``universe`` synthetic tickers ``S00001``... instead (random
            listing dates and splits, laid out over ``[start, end]``).
        batch_size: Tickers per batch; bounds memory (about 0.2 KB per ticker-day).
        unadjusted: Also yield ``daily_bars_unadjusted``.
        on_progress: Called with (tickers done, tickers total) after each batch.

    Returns:
        An iterator of ``(dataset, table)`` pairs, rows ordered by (ticker, date) within a batch.

    Raises:
        TickerlakeError: Bad dates, seed, tickers or universe size.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise TickerlakeError(f"sim: batch size must be a positive integer, got {batch_size!r}")
    req = _request(tickers, start, end, seed, universe)
    return _generate(req, batch_size, unadjusted, on_progress)


def _generate(
    req: _Request,
    batch_size: int,
    unadjusted: bool,
    on_progress: Callable[[int, int], None] | None,
) -> Iterator[tuple[str, pa.Table]]:
    total = len(req.names)
    for b in range(0, total, batch_size):
        names = req.names[b : b + batch_size]
        paths = _simulate_paths(_plans(req, names), req.market, req.seed)
        kept: list[str] = []
        counts: list[int] = []
        parts: list[_Bars] = []
        actions: list[tuple[str, int, str, float | None, float | None]] = []
        anomalies: list[tuple[object, ...]] = []
        for path in paths:
            lo, hi = _life_range(path.plan, req)
            if hi < lo:
                continue
            bars = _bars(path, req.market, req.seed, lo, hi)
            kept.append(path.plan.ticker)
            counts.append(hi - lo + 1)
            parts.append(bars)
            actions.extend((path.plan.ticker, *a) for a in bars.actions)
            anomalies.extend(_anomaly_rows(path, req.market, lo, hi))
        days = np.concatenate([x.days for x in parts]) if parts else np.empty(0, np.int64)
        adj = [np.concatenate([x.adj[k] for x in parts]) if parts else np.empty(0) for k in range(6)]
        keys = (_strings(kept, counts), _dates(days))
        yield "daily_bars", _bar_table(keys, adj)
        if unadjusted:
            raw = [np.concatenate([x.raw[k] for x in parts]) if parts else np.empty(0) for k in range(5)]
            yield "daily_bars_unadjusted", _bar_table(keys, [*raw[:4], adj[4], raw[4]])
        yield "corporate_actions", _actions_table(actions)
        yield "sim_anomalies", _anomaly_table(anomalies)
        del paths, parts
        if on_progress is not None:
            on_progress(min(b + batch_size, total), total)


def anomaly_ground_truth(
    tickers: Sequence[str] | None = None,
    start: dt.date | str = DEFAULT_START,
    end: dt.date | str = DEFAULT_END,
    seed: int = DEFAULT_SEED,
    *,
    universe: int | None = None,
    batch_size: int = 256,
) -> pa.Table:
    """The shocks :func:`simulate` injects for the same arguments, without building bars.

    Each shock replaces one day's close-to-close log return of one ticker (a ``single``
    event) or of several tickers on the same day (a ``cluster`` event, same sign, shared
    ``event_id``) by 7 to 10 times the standard deviation of that ticker's previous
    :data:`ANOMALY_WINDOW` log returns. Shocks never fall on split or dividend days nor in a
    ticker's first :data:`ANOMALY_WINDOW` sessions; the price level shift persists.

    Columns (:data:`ANOMALY_COLUMNS`): ``magnitude_sigma`` = ``log_return / baseline_sigma``,
    where ``log_return`` is ln(close / previous close) of the split-adjusted close (before
    rounding) and ``baseline_sigma`` the sample standard deviation (ddof=1) of the
    :data:`ANOMALY_WINDOW` previous such returns.

    Args:
        tickers: As for :func:`simulate`.
        start: As for :func:`simulate`.
        end: As for :func:`simulate`.
        seed: As for :func:`simulate`.
        universe: As for :func:`simulate`.
        batch_size: As for :func:`simulate`.

    Returns:
        One row per (ticker, date) shocked inside the range, ordered by ticker then date.
    """
    req = _request(tickers, start, end, seed, universe)
    rows: list[tuple[object, ...]] = []
    for b in range(0, len(req.names), batch_size):
        for path in _simulate_paths(_plans(req, req.names[b : b + batch_size]), req.market, req.seed):
            lo, hi = _life_range(path.plan, req)
            rows.extend(_anomaly_rows(path, req.market, lo, hi))
    return _anomaly_table(rows)


def expected_rows(
    tickers: Sequence[str] | None = None,
    start: dt.date | str = DEFAULT_START,
    end: dt.date | str = DEFAULT_END,
    seed: int = DEFAULT_SEED,
    *,
    universe: int | None = None,
) -> int:
    """Number of ``daily_bars`` rows :func:`simulate` yields for these arguments (cheap).

    Args:
        tickers: As for :func:`simulate`.
        start: As for :func:`simulate`.
        end: As for :func:`simulate`.
        seed: As for :func:`simulate`.
        universe: As for :func:`simulate`.

    Returns:
        Row count.
    """
    req = _request(tickers, start, end, seed, universe)
    if req.end_idx < req.start_idx:
        return 0
    total = 0
    for i, name in enumerate(req.names):
        if req.universe is None:
            first = int(np.searchsorted(req.market.days, _epoch(PROFILES[name].first_day)))
        else:
            first = _universe_first(req.universe.u[i], req.start_idx, req.end_idx)
        total += max(0, req.end_idx - max(first, req.start_idx) + 1)
    return total
