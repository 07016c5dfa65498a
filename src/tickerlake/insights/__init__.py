"""Insights over the curated bars: pure functions on Arrow tables, no I/O.

Each function takes rows in the ``market.daily_bars`` schema (long format: ticker, date,
close, adj_close, volume, ...) and returns a frozen dataclass with the numbers and a
QuickSight-style ``narrative`` sentence. Ticker identity always comes from the rows'
``ticker`` column. Bad requests raise :class:`~tickerlake.insights.errors.InsightError`
subclasses (one-line messages).
"""

from __future__ import annotations

from tickerlake.insights.anomalies import (
    Anomaly,
    AnomalyInput,
    AnomalyResult,
    Contribution,
    anomalies,
    anomaly_input,
    threshold_for,
)
from tickerlake.insights.errors import (
    BadInput,
    DateOutsideData,
    EmptyWindow,
    InsightError,
    NoData,
    NotATradingDay,
    UnknownPeriod,
    UnknownTicker,
    WindowTooShort,
)
from tickerlake.insights.extremes import ExtremesResult, TickerExtremes, extremes
from tickerlake.insights.forecast import BacktestResult, ForecastPoint, ForecastResult, backtest, forecast
from tickerlake.insights.movers import Excluded, Mover, MoversResult, movers
from tickerlake.insights.periods import (
    GRAINS,
    GrowthResult,
    PeriodResult,
    TickerChange,
    TickerGrowth,
    growth,
    period_bounds,
    period_over_period,
    period_to_date,
    previous_period,
)
from tickerlake.insights.ranked import RankedResult, RankedRow, ranked
from tickerlake.insights.recessions import (
    BUILTIN_WINDOWS,
    RecessionResult,
    TickerRecession,
    Window,
    parse_windows,
    recession,
    resolve_window,
)
from tickerlake.insights.summary import Insight, SummaryResult, summary

__all__ = [
    "BUILTIN_WINDOWS",
    "GRAINS",
    "Anomaly",
    "AnomalyInput",
    "AnomalyResult",
    "BacktestResult",
    "BadInput",
    "Contribution",
    "DateOutsideData",
    "EmptyWindow",
    "Excluded",
    "ExtremesResult",
    "ForecastPoint",
    "ForecastResult",
    "GrowthResult",
    "Insight",
    "InsightError",
    "Mover",
    "MoversResult",
    "NoData",
    "NotATradingDay",
    "PeriodResult",
    "RankedResult",
    "RankedRow",
    "RecessionResult",
    "SummaryResult",
    "TickerChange",
    "TickerExtremes",
    "TickerGrowth",
    "TickerRecession",
    "UnknownPeriod",
    "UnknownTicker",
    "Window",
    "WindowTooShort",
    "anomalies",
    "anomaly_input",
    "backtest",
    "extremes",
    "forecast",
    "growth",
    "movers",
    "parse_windows",
    "period_bounds",
    "period_over_period",
    "period_to_date",
    "previous_period",
    "ranked",
    "recession",
    "resolve_window",
    "summary",
    "threshold_for",
]
