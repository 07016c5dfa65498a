"""Every insight kind as one operation: typed parameters in, the insight's typed result out.

Each function selects the tickers (checked against the lake), resolves the window or day,
and calls the pure function of :mod:`tickerlake.insights` on the lake's bars and corporate
actions. The CLI renders the result as text or ``--json``, the web as JSON; both call these
functions, so their answers are the same by construction.

``windows`` is the mapping of named analysis windows (see
:func:`tickerlake.service.selection.all_windows`): built-in, from the settings and, on the
CLI, from ``--define``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from tickerlake import insights as ins
from tickerlake.errors import TickerlakeError
from tickerlake.insights import Window
from tickerlake.service.market import Market
from tickerlake.service.selection import (
    DEFAULT_RECESSION_PERIOD,
    Grain,
    Measure,
    PriceMeasure,
    RankBy,
    Span,
    ToDateGrain,
    one_ticker,
    resolve_span,
)

__all__ = [
    "KINDS",
    "AnomaliesParams",
    "BasketFigures",
    "ExtremesParams",
    "ForecastParams",
    "GrowthParams",
    "MoversParams",
    "PeriodParams",
    "PeriodToDateParams",
    "RankedParams",
    "RecessionCompareParams",
    "RecessionComparison",
    "RecessionParams",
    "SummaryParams",
    "TickerFigures",
    "WindowComparison",
    "anomalies",
    "extremes",
    "forecast",
    "growth",
    "movers",
    "period",
    "period_to_date",
    "ranked",
    "recession_compare",
    "recessions",
    "summary",
]

Windows = Mapping[str, Window] | None


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class _Selection:
    """Tickers to include: comma-separated text, checked against the lake (None: all)."""

    tickers: str | None = None


@dataclass(frozen=True)
class _Windowed(_Selection):
    """A window: a named one, and/or explicit first and last days (which win)."""

    window: str | None = None
    start: dt.date | None = None
    end: dt.date | None = None


@dataclass(frozen=True)
class MoversParams(_Selection):
    """Top or bottom movers of a day (default: the last trading day)."""

    date: dt.date | None = None
    n: int = 3
    bottom: bool = False
    measure: Measure = "close"
    rank_by: RankBy = "pct_change"


@dataclass(frozen=True)
class PeriodParams(_Selection):
    """The period containing ``date`` against the previous one."""

    date: dt.date | None = None
    grain: Grain = "day"
    measure: Measure = "close"


@dataclass(frozen=True)
class PeriodToDateParams(_Selection):
    """Week/month/quarter/year to ``date`` against the previous period."""

    date: dt.date | None = None
    grain: ToDateGrain = "month"
    measure: Measure = "close"


@dataclass(frozen=True)
class GrowthParams(_Windowed):
    """Compound growth rate per ``grain`` over a window."""

    grain: Grain = "month"
    measure: Measure = "close"


@dataclass(frozen=True)
class RankedParams(_Windowed):
    """Tickers ranked by change (prices) or total (volume) over a window."""

    n: int = 3
    bottom: bool = False
    measure: Measure = "close"


@dataclass(frozen=True)
class ExtremesParams(_Windowed):
    """Highest and lowest values over a window."""

    measure: Measure = "close"


@dataclass(frozen=True)
class AnomaliesParams(_Windowed):
    """Anomalous days: ``sensitivity`` 0 (fewest) to 1 (most), ``top_n`` contributors each."""

    sensitivity: float = 0.5
    measure: PriceMeasure = "close"
    top_n: int = 3


@dataclass(frozen=True)
class ForecastParams:
    """A forecast ``horizon`` trading days ahead from ``origin`` (default: the last bar).

    ``ticker`` forecasts exactly that ticker; without it, the total close of ``tickers``
    (comma-separated; None: all), or that ticker's close when it names one.
    """

    ticker: str | None = None
    horizon: int = 30
    measure: PriceMeasure = "close"
    tickers: str | None = None
    origin: dt.date | None = None


@dataclass(frozen=True)
class RecessionParams(_Selection):
    """A downturn window: a ``period`` name, or both ``start`` and ``end`` (default: the study's focus)."""

    period: str | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    measure: PriceMeasure = "close"


@dataclass(frozen=True)
class RecessionCompareParams(_Selection):
    """Every named window side by side."""

    measure: PriceMeasure = "close"


@dataclass(frozen=True)
class SummaryParams(_Windowed):
    """The ``n`` most important insights of a window."""

    n: int = 5
    measure: PriceMeasure = "close"


# --------------------------------------------------------------------------- operations


def _bars(market: Market, tickers: str | None) -> pa.Table:
    return market.bars_for(market.select(tickers))


def _span(p: _Windowed, windows: Windows) -> Span:
    return resolve_span(p.window, p.start, p.end, windows)


def movers(market: Market, p: MoversParams, windows: Windows = None) -> ins.MoversResult:
    """Each ticker's change against its own previous trading day, ranked; exclusions reported."""
    bars = _bars(market, p.tickers)
    return ins.movers(bars, market.day(p.date), p.n, p.bottom, p.measure, p.rank_by, market.actions)


def period(market: Market, p: PeriodParams, windows: Windows = None) -> ins.PeriodResult:
    """The total across tickers for the period containing the day against the previous period."""
    bars = _bars(market, p.tickers)
    return ins.period_over_period(bars, market.day(p.date), p.grain, p.measure, market.actions)


def period_to_date(market: Market, p: PeriodToDateParams, windows: Windows = None) -> ins.PeriodResult:
    """Week/month/quarter/year-to-date total against the previous period."""
    bars = _bars(market, p.tickers)
    return ins.period_to_date(bars, market.day(p.date), p.grain, p.measure, market.actions)


def growth(market: Market, p: GrowthParams, windows: Windows = None) -> ins.GrowthResult:
    """Compound growth rate of the total (and of each ticker) over a window."""
    span = _span(p, windows)
    return ins.growth(_bars(market, p.tickers), span.start, span.end, p.grain, p.measure, market.actions)


def ranked(market: Market, p: RankedParams, windows: Windows = None) -> ins.RankedResult:
    """Tickers ranked by their change (prices) or total (volume) over a window."""
    span = _span(p, windows)
    bars = _bars(market, p.tickers)
    return ins.ranked(bars, span.start, span.end, p.n, p.bottom, p.measure, market.actions)


def extremes(market: Market, p: ExtremesParams, windows: Windows = None) -> ins.ExtremesResult:
    """Highest and lowest total (and per-ticker values) over a window, with their dates."""
    span = _span(p, windows)
    return ins.extremes(_bars(market, p.tickers), span.start, span.end, p.measure, market.actions)


def anomalies(market: Market, p: AnomaliesParams, windows: Windows = None) -> ins.AnomalyResult:
    """Unusual days found on returns (so a split is never one), with the tickers that drove each."""
    span = _span(p, windows)
    bars = _bars(market, p.tickers)
    return ins.anomalies(bars, span.start, span.end, p.sensitivity, p.measure, p.top_n, market.actions)


def forecast(market: Market, p: ForecastParams, windows: Windows = None) -> ins.ForecastResult:
    """Point forecast of one ticker or a total close with 80% and 95% prediction intervals, and
    the actual values after the origin where the lake has them."""
    market.require()
    chosen = (
        [one_ticker(p.ticker, market.tickers, "a forecast")] if p.ticker else list(market.select(p.tickers))
    )
    target: str | list[str] = chosen[0] if len(chosen) == 1 else chosen
    return ins.forecast(market.bars_for(chosen), target, p.horizon, p.measure, market.actions, p.origin)


def recessions(market: Market, p: RecessionParams, windows: Windows = None) -> ins.RecessionResult:
    """Return, drawdown, volatility, worst and best day, beta and recovery per ticker in a downturn.

    Raises:
        BadInput: Only one of ``start`` and ``end`` without a period.
    """
    if not p.period and (p.start is None) != (p.end is None):
        raise ins.BadInput("give a period name, or both start and end")
    period_name = p.period or (None if p.start is not None else DEFAULT_RECESSION_PERIOD)
    bars = _bars(market, p.tickers)
    return ins.recession(bars, period_name, p.start, p.end, windows, p.measure, market.actions)


@dataclass(frozen=True)
class BasketFigures:
    """The equal-weight basket in one window (percent)."""

    return_pct: float | None
    max_drawdown_pct: float | None
    volatility_pct: float | None


@dataclass(frozen=True)
class TickerFigures:
    """One ticker in one window (percent)."""

    return_pct: float | None
    max_drawdown_pct: float | None


@dataclass(frozen=True)
class WindowComparison:
    """One named window of a comparison; ``error`` says why a window has no figures.

    Attributes:
        name: Window name.
        label: Window label.
        start: Window start.
        end: Window end.
        error: Why there are no figures (e.g. no data in the window), else None.
        first_date: First trading day analysed.
        last_date: Last trading day analysed.
        basket: The equal-weight basket's figures.
        tickers: Each ticker's figures, best return first.
        best: The ticker with the best return.
        worst: The ticker with the worst return.
    """

    name: str
    label: str
    start: dt.date
    end: dt.date
    error: str | None = None
    first_date: dt.date | None = None
    last_date: dt.date | None = None
    basket: BasketFigures | None = None
    tickers: dict[str, TickerFigures] | None = None
    best: str | None = None
    worst: str | None = None


@dataclass(frozen=True)
class RecessionComparison:
    """Every named window side by side."""

    measure: str
    tickers: list[str]
    windows: list[WindowComparison]


def recession_compare(
    market: Market, p: RecessionCompareParams, windows: Windows = None
) -> RecessionComparison:
    """The equal-weight basket and each ticker's return and drawdown in every named window.

    A window the data cannot answer (before the first bar, too short...) is reported with
    its ``error`` rather than failing the whole comparison.
    """
    from tickerlake.insights import BUILTIN_WINDOWS

    chosen = market.select(p.tickers)
    bars = market.bars_for(chosen)
    rows = []
    for w in (windows or BUILTIN_WINDOWS).values():
        try:
            res = ins.recession(bars, w, measure=p.measure, corporate_actions=market.actions)
        except TickerlakeError as e:
            rows.append(WindowComparison(w.name, w.label, w.start, w.end, error=str(e), tickers={}))
            continue
        b = res.basket
        rows.append(
            WindowComparison(
                w.name,
                w.label,
                w.start,
                w.end,
                first_date=res.first_date,
                last_date=res.last_date,
                basket=BasketFigures(b.return_pct, b.max_drawdown_pct, b.volatility_pct),
                tickers={t.ticker: TickerFigures(t.return_pct, t.max_drawdown_pct) for t in res.tickers},
                best=res.tickers[0].ticker if res.tickers else None,
                worst=res.tickers[-1].ticker if res.tickers else None,
            )
        )
    return RecessionComparison(p.measure, list(chosen), rows)


def summary(market: Market, p: SummaryParams, windows: Windows = None) -> ins.SummaryResult:
    """A QuickSight-style autonarrative: the window's insights ranked by importance."""
    span = _span(p, windows)
    return ins.summary(_bars(market, p.tickers), span.start, span.end, p.n, p.measure, market.actions)


#: Every insight kind by its CLI command and API path name: (parameters, operation).
KINDS: dict[str, tuple[type, Callable[..., Any]]] = {
    "movers": (MoversParams, movers),
    "period": (PeriodParams, period),
    "period-to-date": (PeriodToDateParams, period_to_date),
    "growth": (GrowthParams, growth),
    "ranked": (RankedParams, ranked),
    "extremes": (ExtremesParams, extremes),
    "anomalies": (AnomaliesParams, anomalies),
    "forecast": (ForecastParams, forecast),
    "recessions": (RecessionParams, recessions),
    "recessions-compare": (RecessionCompareParams, recession_compare),
    "summary": (SummaryParams, summary),
}
