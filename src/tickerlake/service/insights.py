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
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tickerlake import insights as ins
from tickerlake.errors import TickerlakeError
from tickerlake.insights import Window
from tickerlake.insights._panel import PRICE_MEASURES, basis_input
from tickerlake.insights.recessions import PEAK_LOOKBACK
from tickerlake.service.market import Market
from tickerlake.service.memory import release
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
    "STORED_RETURNS_TICKERS",
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


# How many trading days around a window each insight reads: what its pure function looks
# at outside the window, with room to spare (the results equal those on the whole history;
# tests/integration/service/test_pushdown.py holds them equal to 1e-9).
#: Anomalies: the market-wide view's two-year median of two-year medians, and the EWMA
#: scale (λ = 0.94: 0.94^400 < 1e-10) on both sides of a day.
ANOMALY_BEFORE, ANOMALY_AFTER = 1_100, 420
#: Recessions: the pre-window peak is looked for in the year before (the recovery after
#: the window is read to the end of the data).
RECESSION_BEFORE = 262
#: Day-over-day views: the previous trading day and split days just before the window.
DAY_BEFORE = 10
#: Universe-wide anomalies, summaries and recessions read the date-clustered layer (with the
#: returns the ETL stored) on lakes of more tickers than this (on a few tickers recomputing
#: the returns costs less than the join).
STORED_RETURNS_TICKERS = 200


def _shift(market: Market, day: dt.date | None, days: int, right: bool = False) -> dt.date | None:
    """The trading day ``days`` before (negative) or after ``day`` (None stays None: open end)."""
    if day is None or market.empty:
        return None
    i = int(np.searchsorted(market.dates, np.datetime64(day, "D"), "right" if right else "left"))
    i = i - 1 + days if right else i + days
    if i < 0:
        return None
    if i >= len(market.dates):
        return None
    return market.date(i)


def _around(
    market: Market, start: dt.date | None, end: dt.date | None, before: int, after: int | None
) -> tuple[dt.date | None, dt.date | None]:
    """``[start, end]`` widened by ``before`` and ``after`` trading days (``after`` None: to the end)."""
    lo = _shift(market, start, -before) if start is not None else None
    hi = None if after is None or end is None else _shift(market, end, after, right=True)
    return lo, hi


def _cols(measure: str, returns: bool = False) -> tuple[str, ...]:
    """The columns an insight reads: the key and its measure; for returns and for any price
    measure also ``close`` and ``adj_close`` (the basis no corporate action moves: a change
    of a price is a return on it). Fewer columns, less to decode."""
    basis = returns or measure in PRICE_MEASURES
    return tuple(dict.fromkeys(("ticker", "date", measure, *(("close", "adj_close") if basis else ()))))


def _bars(
    market: Market,
    tickers: str | None,
    start: dt.date | None,
    end: dt.date | None,
    columns: Sequence[str],
) -> pa.Table:
    """The selected tickers' bars in ``[start, end]``, each ticker present (see :meth:`Market.present`)."""
    return market.present(market.select(tickers), start, end, columns)


def _acts(market: Market, bars: pa.Table) -> pa.Table:
    """The corporate actions of the tickers and days in ``bars`` (what an insight on them can use)."""
    acts = market.actions
    if acts.num_rows == 0 or bars.num_rows == 0:
        return acts
    days = bars.column("date")
    keep = pc.and_(
        pc.is_in(acts.column("ticker"), value_set=_tickers_of(bars)),
        pc.and_(
            pc.greater_equal(acts.column("date"), pc.min(days)),
            pc.less_equal(acts.column("date"), pc.max(days)),
        ),
    )
    return acts.filter(keep)


_Op = TypeVar("_Op", bound=Callable[..., Any])


def _releasing(op: _Op) -> _Op:
    """``op``, then the memory it freed given back (see :mod:`tickerlake.service.memory`):
    the operations whose slices and matrices reach hundreds of megabytes on a universe."""

    @functools.wraps(op)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return op(*args, **kwargs)
        finally:
            release()

    return cast(_Op, run)


def _span(p: _Windowed, windows: Windows) -> Span:
    return resolve_span(p.window, p.start, p.end, windows)


def movers(market: Market, p: MoversParams, windows: Windows = None) -> ins.MoversResult:
    """Each ticker's change against its own previous trading day, ranked; exclusions reported.

    Reads the selection's last days up to the day, and for a ticker without a value in
    them its first bar and its last bars before the day (a gap or an IPO is reported as in
    the whole history).
    """
    chosen = market.select(p.tickers)
    day = market.day(p.date)
    lo = _shift(market, day, -DAY_BEFORE) or market.date(0)
    hi = _shift(market, day, 1, right=True) or market.date(len(market.dates) - 1)
    bars = market.bars_for(chosen, lo, hi, _cols(p.measure))
    before = (
        bars.filter(
            pc.and_(
                pc.less(bars.column("date"), pa.scalar(day, pa.date32())), pc.is_valid(bars.column(p.measure))
            )
        )
        if p.measure in bars.column_names
        else bars.slice(0, 0)
    )
    have = set(pc.unique(before.column("ticker")).to_pylist()) if before.num_rows else set()
    lacking = [t for t in chosen if t not in have]
    if lacking:
        edge = market.slices.boundary(lacking, day, p.measure, _cols(p.measure))
        # Only the rows outside the slice read already: one row per (ticker, date).
        outside = pc.or_(
            pc.less(edge.column("date"), pa.scalar(lo, pa.date32())),
            pc.greater(edge.column("date"), pa.scalar(hi, pa.date32())),
        )
        bars = pa.concat_tables([bars, edge.filter(outside).cast(bars.schema)])
    return ins.movers(bars, day, p.n, p.bottom, p.measure, p.rank_by, _acts(market, bars))


def _period_bars(market: Market, tickers: str | None, day: dt.date, grain: str, measure: str) -> pa.Table:
    """The previous and the current period, and a trading day past the current one (which
    tells whether the data covers the whole period)."""
    first = min(ins.previous_period(day, grain)[0], _shift(market, day, -DAY_BEFORE) or day)
    end = _shift(market, ins.period_bounds(day, grain)[1], 1, right=True)
    return _bars(market, tickers, _shift(market, first, -DAY_BEFORE), end, _cols(measure))


def period(market: Market, p: PeriodParams, windows: Windows = None) -> ins.PeriodResult:
    """The total across tickers for the period containing the day against the previous period."""
    day = market.day(p.date)
    bars = _period_bars(market, p.tickers, day, p.grain, p.measure)
    return ins.period_over_period(bars, day, p.grain, p.measure, _acts(market, bars))


def period_to_date(market: Market, p: PeriodToDateParams, windows: Windows = None) -> ins.PeriodResult:
    """Week/month/quarter/year-to-date total against the previous period."""
    day = market.day(p.date)
    bars = _period_bars(market, p.tickers, day, p.grain, p.measure)
    return ins.period_to_date(bars, day, p.grain, p.measure, _acts(market, bars))


def _windowed(
    market: Market,
    p: GrowthParams | RankedParams | ExtremesParams | AnomaliesParams | SummaryParams,
    windows: Windows,
    before: int = DAY_BEFORE,
    after: int | None = 1,
    returns: bool = False,
) -> tuple[Span, pa.Table]:
    span = _span(p, windows)
    lo, hi = _around(market, span.start, span.end, before, after)
    return span, _bars(market, p.tickers, lo, hi, _cols(p.measure, returns))


def growth(market: Market, p: GrowthParams, windows: Windows = None) -> ins.GrowthResult:
    """Compound growth rate of the total (and of each ticker) over a window."""
    span, bars = _windowed(market, p, windows)
    return ins.growth(bars, span.start, span.end, p.grain, p.measure, _acts(market, bars))


def ranked(market: Market, p: RankedParams, windows: Windows = None) -> ins.RankedResult:
    """Tickers ranked by their change (prices) or total (volume) over a window."""
    span, bars = _windowed(market, p, windows)
    return ins.ranked(bars, span.start, span.end, p.n, p.bottom, p.measure, _acts(market, bars))


def extremes(market: Market, p: ExtremesParams, windows: Windows = None) -> ins.ExtremesResult:
    """Highest and lowest total (and per-ticker values) over a window, with their dates."""
    span, bars = _windowed(market, p, windows)
    return ins.extremes(bars, span.start, span.end, p.measure, _acts(market, bars))


def _universe(
    market: Market,
    tickers: str | None,
    start: dt.date | None,
    end: dt.date | None,
    columns: Sequence[str],
    returns: bool = False,
) -> pa.Table | None:
    """The whole universe's ``columns`` in ``[start, end]`` (with the first bar of each ticker
    without one there, as :meth:`Market.present` adds), and with ``returns`` the stored
    returns (``ret``), read from the date-clustered layer with the tickers dictionary-encoded
    and in no order (see :meth:`~tickerlake.lake.pushdown.LakeSlices.universe`).

    None unless the question is about every ticker of a lake of more than
    :data:`STORED_RETURNS_TICKERS` and the insight-ready layer is current.
    """
    if len(market.tickers) <= STORED_RETURNS_TICKERS:
        return None
    if len(market.select(tickers)) != len(market.tickers):
        return None
    bars = market.slices.universe(start, end, (*columns, *(("ret",) if returns else ())))
    if bars is None:
        return None
    inside = set(_tickers_of(bars).to_pylist())
    absent = [t for t in market.tickers if t not in inside]
    if not absent:
        return bars
    firsts = market.slices.firsts(absent, columns)
    if returns:
        firsts = firsts.append_column("ret", pa.nulls(firsts.num_rows, pa.float64()))
    # The same dictionary as the slice's (the stored tickers): one encoding for the pivot.
    names = bars.column("ticker").chunk(0).dictionary if bars.column("ticker").num_chunks else None
    if names is not None:
        code = {t: i for i, t in enumerate(names.to_pylist())}
        at = pa.array([code[t] for t in firsts.column("ticker").to_pylist()], pa.int32())
        firsts = firsts.set_column(0, "ticker", pa.DictionaryArray.from_arrays(at, names))
    return pa.concat_tables([bars, firsts.select(bars.column_names).cast(bars.schema)])


def _stored_returns(
    market: Market,
    tickers: str | None,
    measure: str,
    start: dt.date | None,
    end: dt.date | None,
    columns: Sequence[str] = ("ticker", "date", "close"),
) -> pa.Table | None:
    """:func:`_universe` with the stored returns, for a question about every ticker's close."""
    return None if measure != "close" else _universe(market, tickers, start, end, columns, returns=True)


def _tickers_of(bars: pa.Table) -> pa.Array:
    """The distinct tickers of ``bars`` as strings (the column may be dictionary-encoded)."""
    if bars.num_rows == 0:
        return pa.array([], pa.string())
    unique = pc.unique(bars.column("ticker"))
    return unique.cast(pa.string()) if pa.types.is_dictionary(unique.type) else unique


@_releasing
def anomalies(market: Market, p: AnomaliesParams, windows: Windows = None) -> ins.AnomalyResult:
    """Unusual days found on returns (so a split is never one), with the tickers that drove each.

    Over the whole universe the returns the ETL stored are read (three columns, nothing
    recomputed) when the insight-ready layer is current.
    """
    span = _span(p, windows)
    lo, hi = _around(market, span.start, span.end, ANOMALY_BEFORE, ANOMALY_AFTER)
    stored = _stored_returns(market, p.tickers, p.measure, lo, hi)
    if stored is not None:
        data = ins.anomaly_input(stored, p.measure, _acts(market, stored), market.dates)
        # The long rows are not needed past the pivot: on a universe they are hundreds of
        # megabytes that would stay resident through the scan.
        del stored
        release()
        return ins.anomalies(data, span.start, span.end, p.sensitivity, p.measure, p.top_n)
    span, bars = _windowed(market, p, windows, ANOMALY_BEFORE, ANOMALY_AFTER, returns=True)
    return ins.anomalies(bars, span.start, span.end, p.sensitivity, p.measure, p.top_n, _acts(market, bars))


def forecast(market: Market, p: ForecastParams, windows: Windows = None) -> ins.ForecastResult:
    """Point forecast of one ticker or a total close with 80% and 95% prediction intervals, and
    the actual values after the origin where the lake has them.

    Reads the chosen tickers' whole history of the measure: the drift is estimated from all of it.
    """
    market.require()
    chosen = (
        [one_ticker(p.ticker, market.tickers, "a forecast")] if p.ticker else list(market.select(p.tickers))
    )
    target: str | list[str] = chosen[0] if len(chosen) == 1 else chosen
    bars = market.bars_for(chosen, columns=_cols(p.measure))
    return ins.forecast(bars, target, p.horizon, p.measure, _acts(market, bars), p.origin)


@_releasing
def recessions(market: Market, p: RecessionParams, windows: Windows = None) -> ins.RecessionResult:
    """Return, drawdown, volatility, worst and best day, beta and recovery per ticker in a downturn.

    Raises:
        BadInput: Only one of ``start`` and ``end`` without a period.
    """
    if not p.period and (p.start is None) != (p.end is None):
        raise ins.BadInput("give a period name, or both start and end")
    period_name = p.period or (None if p.start is not None else DEFAULT_RECESSION_PERIOD)
    start = ins.resolve_window(period_name, windows).start if period_name else p.start
    lo = _shift(market, start, -RECESSION_BEFORE)
    stored = _universe(market, p.tickers, lo, None, _cols(p.measure))
    if stored is not None and p.measure in PRICE_MEASURES:
        acts = _acts(market, stored)
        data = basis_input(stored, p.measure)
        # As for the anomalies: the long rows are not needed past the pivot.
        del stored
        release()
        return ins.recession(data, period_name, p.start, p.end, windows, p.measure, acts)
    bars = _bars(market, p.tickers, lo, None, _cols(p.measure)) if stored is None else stored
    return ins.recession(bars, period_name, p.start, p.end, windows, p.measure, _acts(market, bars))


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


@_releasing
def recession_compare(
    market: Market, p: RecessionCompareParams, windows: Windows = None
) -> RecessionComparison:
    """The equal-weight basket and each ticker's return and drawdown in every named window.

    A window the data cannot answer (before the first bar, too short...) is reported with
    its ``error`` rather than failing the whole comparison.
    """
    from tickerlake.insights import BUILTIN_WINDOWS

    chosen = market.select(p.tickers)
    rows = []
    for w in (windows or BUILTIN_WINDOWS).values():
        try:
            bars = market.present(chosen, _shift(market, w.start, -RECESSION_BEFORE), None, _cols(p.measure))
            res = ins.recession(bars, w, measure=p.measure, corporate_actions=_acts(market, bars))
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


@_releasing
def summary(market: Market, p: SummaryParams, windows: Windows = None) -> ins.SummaryResult:
    """A QuickSight-style autonarrative: the window's insights ranked by importance.

    Over the whole universe, the date-clustered bars with their stored returns are read
    when the insight-ready layer is current (see :func:`anomalies`).
    """
    span = _span(p, windows)
    lo, hi = _around(market, span.start, span.end, ANOMALY_BEFORE, None)
    stored = _stored_returns(market, p.tickers, p.measure, lo, hi)
    if stored is not None:
        acts = _acts(market, stored)
        # Only the anomalies' input needs the longer rows, which are dropped once it is
        # pivoted (see :func:`anomalies`); the window's own insights read a year before it
        # (and adj_close), read next.
        data = ins.anomaly_input(stored, p.measure, acts, market.dates)
        del stored
        release()
        near_lo = _shift(market, span.start, -PEAK_LOOKBACK)
        near = _universe(market, p.tickers, near_lo, hi, _cols(p.measure, returns=True))
        if near is not None:
            return ins.summary(near, span.start, span.end, p.n, p.measure, acts, anomaly_data=data)
    span, bars = _windowed(market, p, windows, ANOMALY_BEFORE, None, returns=True)
    return ins.summary(bars, span.start, span.end, p.n, p.measure, _acts(market, bars))


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
