"""Price forecasts with 80% and 95% prediction intervals, and their rolling-origin backtest. No I/O.

Model: the log price follows a random walk with a small drift and time-varying
volatility. For a forecast from day ``T`` to ``T + h`` (trading days):

* centre: the median ``P_T · exp(h·μ)``, where ``μ`` is the mean daily log return over
  the ticker's whole history shrunk towards zero by ``n / (n + 750)`` — a short, noisy
  history cannot pull the forecast far from the last value (the naive forecast, hard to
  beat for prices), a long one earns its drift;
* point: the value that minimises the expected absolute *percentage* error under the
  model — for a log-normal forecast with log-variance ``V`` that is ``median · exp(-V)``
  (the median of the forecast density weighted by 1/price), a little below the median
  because over-forecasting a price costs more percent than under-forecasting it;
* spread: the variance of the ``h``-day log return is the sum of daily variances that
  revert from the current short-term level ``σ_S²`` (RiskMetrics EWMA, λ = 0.94) to the
  long-run level ``σ_L²`` (mean square return of the last three years) with a one-month
  half-life — a GARCH(1,1)-shaped term structure — plus the drift's estimation variance;
* intervals: normal quantiles of the log return (±1.2816σ and ±1.96σ), so the bands are
  asymmetric in price and never negative.

What is forecast: one ticker's close, or the *total close* of several tickers (the sum
of their closes on the days every one of them traded, so a listing inside the history is
not a jump). Prices are put on the one basis of returns first
(:func:`~tickerlake.insights._panel.basis`), so neither a split nor a dividend is a move. From any *origin*: the model sees only the bars up to the
origin (the last trading day on or before the date asked for) and the result carries
the actual value of each forecast day the data holds, so "from the 2008 peak" can be
shown beside what happened next.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from tickerlake.calendar import next_trading_days
from tickerlake.insights._panel import PRICE_MEASURES, as_date, basis, build_panel
from tickerlake.insights.errors import BadInput, DateOutsideData, WindowTooShort
from tickerlake.insights.narrative import fmt_date, fmt_num, measure_label

__all__ = [
    "TOTAL",
    "BacktestResult",
    "ForecastPoint",
    "ForecastResult",
    "HorizonCoverage",
    "backtest",
    "forecast",
]

EWMA_LAMBDA = 0.94
LONG_WINDOW = 756
REVERSION = 0.5 ** (1 / 21)
DRIFT_PRIOR_DAYS = 750.0
MIN_RETURNS = 60
Z80 = 1.2815515655446004
Z95 = 1.959963984540054


@dataclass(frozen=True, eq=False)
class _Params:
    """Model parameters known at the close of each day of a series (arrays of equal length)."""

    mu: np.ndarray
    var_s: np.ndarray
    var_l: np.ndarray
    n: np.ndarray


def _params(logp: np.ndarray) -> _Params:
    """Causal parameters for every day of a log-price series without gaps."""
    import pandas as pd  # here, not at import: serve starts without it

    r = np.diff(logp, prepend=np.nan)
    r[0] = np.nan
    r2 = pd.Series(r * r)
    var_s = r2.ewm(alpha=1 - EWMA_LAMBDA, adjust=True, ignore_na=True, min_periods=1).mean().to_numpy()
    var_l = r2.rolling(LONG_WINDOW, min_periods=1).mean().to_numpy()
    n = np.concatenate([[0.0], np.arange(1, len(r), dtype=float)])
    total = np.concatenate([[0.0], np.cumsum(r[1:])])
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(n > 0, total / n, 0.0)
    mu = mean * n / (n + DRIFT_PRIOR_DAYS)
    return _Params(mu, var_s, var_l, n)


def _horizon_var(p: _Params, i: np.ndarray | int, h: np.ndarray | int) -> np.ndarray:
    """Variance of the ``h``-day log return from day ``i``."""
    vs, vl, n = p.var_s[i], p.var_l[i], p.n[i]
    decay = REVERSION * (1 - REVERSION**h) / (1 - REVERSION)
    drift_var = (np.asarray(h, dtype=float) ** 2) * vl / np.maximum(n, 1.0)
    var: np.ndarray = np.maximum(h * vl + (vs - vl) * decay, 1e-12) + drift_var
    return var


@dataclass(frozen=True)
class ForecastPoint:
    """The forecast for one future trading day.

    Attributes:
        step: Trading days ahead (1 = next trading day).
        date: The trading day (NYSE calendar: weekends and exchange holidays skipped).
        point: Point forecast (minimises the expected absolute percentage error).
        median: Median of the forecast distribution (the intervals' centre).
        lo80: Lower bound of the 80% prediction interval.
        hi80: Upper bound of the 80% prediction interval.
        lo95: Lower bound of the 95% prediction interval.
        hi95: Upper bound of the 95% prediction interval.
        actual: What the data holds for that day (None when it ends before, or the day is missing).
    """

    step: int
    date: dt.date
    point: float
    median: float
    lo80: float
    hi80: float
    lo95: float
    hi95: float
    actual: float | None = None


@dataclass(frozen=True)
class ForecastResult:
    """A forecast of one ticker or of a total close.

    Attributes:
        ticker: The ticker, or ``TOTAL`` for the total close of ``tickers``.
        tickers: The tickers the series is made of.
        measure: The price measure.
        last_date: Last trading day used: the origin.
        last_value: Its value.
        horizon: Trading days forecast.
        drift_pct: Daily drift used, in percent (log return × 100).
        volatility_pct: Current annualised volatility, in percent.
        long_run_volatility_pct: Long-run annualised volatility, in percent.
        method: Short description of the model.
        points: One row per future trading day.
        narrative: One sentence.
        actual_days: Forecast days whose actual value the data holds.
        inside80: Of those, how many fell inside the 80% interval.
        inside95: Of those, how many fell inside the 95% interval.
    """

    ticker: str
    tickers: tuple[str, ...]
    measure: str
    last_date: dt.date
    last_value: float
    horizon: int
    drift_pct: float
    volatility_pct: float
    long_run_volatility_pct: float
    method: str
    points: tuple[ForecastPoint, ...]
    narrative: str
    actual_days: int = 0
    inside80: int = 0
    inside95: int = 0


#: The name of a total-close series.
TOTAL = "TOTAL"


def _series(
    bars: pa.Table,
    tickers: str | Sequence[str] | None,
    measure: str,
    corporate_actions: pa.Table | None,
    origin: dt.date | None,
) -> tuple[str, tuple[str, ...], np.ndarray, np.ndarray]:
    """(name, tickers, dates, values): one ticker's series, or the total of several on their common days.

    Values are on the basis of :func:`~tickerlake.insights._panel.basis` (no split or
    dividend moves them), scaled so that each ticker's value on the origin (or the last
    day) is its close as it was: the history before it is adjusted as a terminal's
    adjusted chart is, and the actual path after it compares with the forecast.
    """
    if measure not in PRICE_MEASURES:
        raise BadInput(f"forecasts need a price measure ({', '.join(PRICE_MEASURES)}), not {measure!r}")
    base = basis(bars, measure, corporate_actions)
    panel = base.panel
    names = [tickers] if isinstance(tickers, str) else list(tickers or panel.tickers)
    cols = sorted({panel.col(t) for t in names})
    chosen = tuple(panel.tickers[j] for j in cols)
    values = panel.values[:, cols]
    if base.factor is not None:
        o = len(panel.dates) - 1
        if origin is not None:
            o = max(int(np.searchsorted(panel.dates, np.datetime64(origin, "D"), "right")) - 1, 0)
        factor = base.factor[:, cols]
        values = values * (factor / factor[o])
    ok = ~np.isnan(values).any(axis=1)
    name = chosen[0] if len(chosen) == 1 else TOTAL
    return name, chosen, panel.dates[ok], values[ok].sum(axis=1)


def forecast(
    bars: pa.Table,
    ticker: str | Sequence[str] | None = None,
    horizon: int = 30,
    measure: str = "close",
    corporate_actions: pa.Table | None = None,
    origin: dt.date | str | None = None,
) -> ForecastResult:
    """Forecast a ticker's price, or the total close of several, ``horizon`` trading days from an origin.

    Args:
        bars: Rows in the ``market.daily_bars`` schema.
        ticker: One ticker, several (their total close), or None for the total close of all.
        horizon: Trading days ahead (exchange calendar), 1 to 750.
        measure: The price forecast.
        corporate_actions: Splits and dividends, so that no corporate action is a move.
        origin: Forecast from this day (the last trading day on or before it); default the last bar.

    Raises:
        UnknownTicker: Not in the data.
        WindowTooShort: Fewer than 60 daily returns of history before the origin.
        DateOutsideData: The origin is before the series starts.
        BadInput: Horizon outside 1..750 or a non-price measure.
    """
    if not 1 <= horizon <= 750:
        raise BadInput(f"--horizon must be between 1 and 750 trading days, got {horizon}")
    origin_day = None if origin is None else as_date(origin, "origin")
    name, chosen, all_dates, all_values = _series(bars, ticker, measure, corporate_actions, origin_day)
    if not len(all_values):
        raise WindowTooShort(f"{', '.join(chosen)} never all traded on the same day")
    cut = len(all_values)
    if origin is not None:
        day = np.datetime64(origin_day, "D")
        cut = int(np.searchsorted(all_dates, day, "right"))
        if cut == 0:
            first = all_dates[0].astype(object)
            raise DateOutsideData(
                f"the origin {fmt_date(as_date(origin))} is before {name}'s first bar ({fmt_date(first)})"
            )
    dates, values = all_dates[:cut], all_values[:cut]
    if len(values) - 1 < MIN_RETURNS:
        raise WindowTooShort(
            f"{name} has {max(len(values) - 1, 0)} daily returns before the origin; a forecast needs at least {MIN_RETURNS}"
        )
    logp = np.log(values)
    p = _params(logp)
    i = len(logp) - 1
    steps = np.arange(1, horizon + 1)
    var = _horizon_var(p, i, steps)
    sd = np.sqrt(var)
    centre = logp[i] + steps * p.mu[i]
    future = next_trading_days(dates[-1].item(), horizon)
    later = dict(zip(all_dates[cut:].astype(object).tolist(), all_values[cut:].tolist(), strict=True))
    points = tuple(
        ForecastPoint(
            int(h),
            future[k],
            float(np.exp(centre[k] - var[k])),
            float(np.exp(centre[k])),
            float(np.exp(centre[k] - Z80 * sd[k])),
            float(np.exp(centre[k] + Z80 * sd[k])),
            float(np.exp(centre[k] - Z95 * sd[k])),
            float(np.exp(centre[k] + Z95 * sd[k])),
            later.get(future[k]),
        )
        for k, h in enumerate(steps)
    )
    seen = [q for q in points if q.actual is not None]
    in80 = sum(1 for q in seen if q.lo80 <= (q.actual or 0.0) <= q.hi80)
    in95 = sum(1 for q in seen if q.lo95 <= (q.actual or 0.0) <= q.hi95)
    last = points[-1]
    label = measure_label(measure, "")
    who = name if name != TOTAL else f"The total {label.strip() or 'close'} of {', '.join(chosen)}"
    what = f"{who} {label}" if name != TOTAL else who
    text = (
        f"{what.strip()} is forecast at {fmt_num(last.point)} on {fmt_date(last.date)} "
        f"({horizon} trading day{'s' if horizon != 1 else ''} after {fmt_num(float(values[-1]))} on "
        f"{fmt_date(dates[-1].astype(object))}), with an 80% prediction interval of {fmt_num(last.lo80)} "
        f"to {fmt_num(last.hi80)} and a 95% interval of {fmt_num(last.lo95)} to {fmt_num(last.hi95)}."
    )
    if seen:
        final = seen[-1]
        text += (
            f" It was actually {fmt_num(final.actual or 0.0)} on {fmt_date(final.date)}; {in80} of the "
            f"{len(seen)} days with data fell inside the 80% interval and {in95} inside the 95% one."
        )
    return ForecastResult(
        name,
        chosen,
        measure,
        dates[-1].astype(object),
        float(values[-1]),
        horizon,
        float(p.mu[i] * 100),
        float(math.sqrt(p.var_s[i] * 252) * 100),
        float(math.sqrt(p.var_l[i] * 252) * 100),
        "log random walk, shrunk drift, EWMA→long-run volatility",
        points,
        text,
        len(seen),
        in80,
        in95,
    )


@dataclass(frozen=True)
class HorizonCoverage:
    """Backtest figures at one horizon."""

    horizon: int
    mape: float
    naive_mape: float
    coverage80: float
    coverage95: float


@dataclass(frozen=True)
class BacktestResult:
    """Rolling-origin backtest over every (origin, step) pair of every ticker.

    Attributes:
        tickers: Tickers backtested.
        horizon: Maximum steps ahead.
        every: Trading days between origins.
        forecasts: (origin, step) pairs scored.
        mape: Mean absolute percentage error of the point forecast, in percent.
        naive_mape: Same for the last-value forecast.
        coverage80: Share of actuals inside the 80% interval, in percent.
        coverage95: Share inside the 95% interval, in percent.
        by_horizon: Figures at a few horizons.
    """

    tickers: tuple[str, ...]
    horizon: int
    every: int
    forecasts: int
    mape: float
    naive_mape: float
    coverage80: float
    coverage95: float
    by_horizon: tuple[HorizonCoverage, ...]


def backtest(
    bars: pa.Table,
    tickers: list[str] | None = None,
    horizon: int = 30,
    every: int = 5,
    min_history: int = 252,
    measure: str = "close",
) -> BacktestResult:
    """Rolling-origin backtest: forecast from every ``every``-th day once ``min_history`` days exist.

    Raises:
        WindowTooShort: No ticker has enough history for a single origin.
    """
    panel = build_panel(bars, measure)
    names = [panel.tickers[panel.col(t)] for t in tickers] if tickers else list(panel.tickers)
    err, naive, in80, in95, hs = [], [], [], [], []
    used: list[str] = []
    for name in names:
        col = panel.values[:, panel.col(name)]
        vals = col[~np.isnan(col)]
        if len(vals) < min_history + horizon + 1:
            continue
        used.append(name)
        logp = np.log(vals)
        p = _params(logp)
        origins = np.arange(min_history, len(logp) - horizon, every)
        steps = np.arange(1, horizon + 1)
        o, h = np.meshgrid(origins, steps, indexing="ij")
        actual = vals[o + h]
        centre = logp[o] + h * p.mu[o]
        var = _horizon_var(p, o, h)
        sd = np.sqrt(var)
        err.append(np.abs(np.exp(centre - var) - actual) / actual)
        naive.append(np.abs(vals[o] - actual) / actual)
        dev = np.abs(np.log(actual) - centre)
        in80.append(dev <= Z80 * sd)
        in95.append(dev <= Z95 * sd)
        hs.append(h)
    if not err:
        raise WindowTooShort(f"no ticker has the {min_history + horizon + 1} trading days a backtest needs")
    e, nv = np.concatenate([a.ravel() for a in err]), np.concatenate([a.ravel() for a in naive])
    c80, c95 = np.concatenate([a.ravel() for a in in80]), np.concatenate([a.ravel() for a in in95])
    hh = np.concatenate([a.ravel() for a in hs])
    by = tuple(
        HorizonCoverage(
            int(k),
            float(e[hh == k].mean() * 100),
            float(nv[hh == k].mean() * 100),
            float(c80[hh == k].mean() * 100),
            float(c95[hh == k].mean() * 100),
        )
        for k in sorted({1, 5, 10, 20, horizon} & set(range(1, horizon + 1)))
    )
    return BacktestResult(
        tuple(used),
        horizon,
        every,
        len(e),
        float(e.mean() * 100),
        float(nv.mean() * 100),
        float(c80.mean() * 100),
        float(c95.mean() * 100),
        by,
    )
