"""The JSON API under ``/api``: bars, every insight kind, read-only SQL and the catalog.

Every endpoint is a thin shell over the same functions as the CLI (the insight functions of
:mod:`tickerlake.insights`, the query engine of :mod:`tickerlake.query`, the crawler's
report). Answers are cached per lake state by :class:`~tickerlake.web.data.LakeCache`, so
a dashboard that asks twice pays once. Errors are mapped to statuses by their class in
:mod:`tickerlake.web.errors`: bad parameters get a 4xx with a one-line ``detail``, never a 500,
and a missing thing is raised as :class:`~tickerlake.errors.NotFoundError` (404).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from tickerlake import __version__
from tickerlake.errors import NotFoundError, TickerlakeError
from tickerlake.insights import (
    AnomalyResult,
    BadInput,
    ExtremesResult,
    ForecastResult,
    GrowthResult,
    MoversResult,
    PeriodResult,
    RankedResult,
    RecessionResult,
    SummaryResult,
    anomalies,
    extremes,
    forecast,
    growth,
    movers,
    period_over_period,
    period_to_date,
    ranked,
    recession,
    summary,
)
from tickerlake.lake.contract import TICKER_MAX_LENGTH
from tickerlake.query.engine import QueryResult, SnapshotInfo, TableInfo, get_engine, jsonable
from tickerlake.query.named import list_named
from tickerlake.web.data import (
    LakeCache,
    Market,
    dumps,
    dumps_plain,
    line_series,
    ohlc_series,
    parse_tickers,
    resolve_span,
)

__all__ = ["router"]


# --------------------------------------------------------------------------- models (for the schema)


class ErrorOut(BaseModel):
    """An error answer."""

    error: str = Field(description="Error type, e.g. UnknownTicker, QueryRefused, ValidationError.")
    detail: str = Field(description="One-line message for humans.")


class WindowOut(BaseModel):
    """A named analysis window."""

    name: str
    label: str
    start: dt.date
    end: dt.date


class MetaOut(BaseModel):
    """What the lake holds."""

    version: str
    lake: str
    tickers: list[str]
    first_date: dt.date | None
    last_date: dt.date | None
    trading_days: int
    rows: int
    loaded_at: str
    windows: list[WindowOut]


class SeriesOut(BaseModel):
    """One ticker's values on the shared date axis, with window statistics."""

    ticker: str
    values: list[float | None]
    first: float | None
    first_date: str | None
    last: float | None
    last_date: str | None
    change_pct: float | None
    min: float | None
    max: float | None


class TotalOut(BaseModel):
    """The total across the selected tickers per day."""

    values: list[float | None]
    tickers: list[int] = Field(description="How many tickers had a value that day.")
    first: float | None
    last: float | None
    change_pct: float | None
    min: float | None
    max: float | None


class BarsOut(BaseModel):
    """Series for the line chart."""

    measure: str
    label: str
    start: str
    end: str
    days: int
    dates: list[str]
    series: list[SeriesOut]
    total: TotalOut | None


class OhlcOut(BaseModel):
    """One ticker's candles and volume."""

    ticker: str
    measure: str
    label: str
    dates: list[str]
    open: list[float | None]
    high: list[float | None]
    low: list[float | None]
    close: list[float | None]
    volume: list[int | None]


class ParamOut(BaseModel):
    """A named query's parameter."""

    name: str
    type: str
    optional: bool
    doc: str


class NamedOut(BaseModel):
    """A named query."""

    name: str
    description: str
    params: list[ParamOut]
    sql: str


ParamValue = str | int | float | bool | list[str] | None


class QueryIn(BaseModel):
    """A read-only query: SQL text, or a named query with its parameters."""

    model_config = ConfigDict(extra="forbid")

    sql: str | None = Field(None, max_length=100_000, description="One read-only SQL statement.")
    named: str | None = Field(None, max_length=100, description="A named query (see /api/named).")
    params: dict[str, ParamValue] | None = Field(
        None, description="Parameters: of the named query, or $name parameters of the SQL."
    )
    limit: int | None = Field(None, ge=1, description="Row limit (at most the server's limit).")
    timeout_s: float | None = Field(None, gt=0, description="Time limit in seconds (at most the server's).")


class QueryOut(BaseModel):
    """Rows of a query."""

    columns: list[str]
    types: list[str]
    rows: list[list[Any]]
    row_count: int
    truncated: bool
    limit: int
    elapsed_ms: float
    sql: str


class CatalogOut(BaseModel):
    """Every table queryable in SQL, and the last crawl."""

    lake: str
    tables: list[TableInfo]
    crawl: dict[str, Any] | None


class TableOut(BaseModel):
    """One table with its Iceberg snapshots."""

    table: TableInfo
    snapshots: list[SnapshotInfo]


class RecessionCompareOut(BaseModel):
    """Every analysis window side by side."""

    measure: str
    tickers: list[str]
    windows: list[dict[str, Any]]


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorOut,
        "description": "Bad parameters (a date outside the data, a too short window...).",
    },
    404: {
        "model": ErrorOut,
        "description": "Unknown ticker, window, table or named query; or an empty lake.",
    },
    422: {"model": ErrorOut, "description": "Parameters of the wrong type or out of range."},
    503: {
        "model": ErrorOut,
        "description": "The lake's store or catalog is briefly unreachable: try again after Retry-After.",
    },
}
_QUERY_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    403: {"model": ErrorOut, "description": "Refused: not a read-only statement, or files outside the lake."},
}


# --------------------------------------------------------------------------- parameters

Tickers = Annotated[
    str | None,
    Query(max_length=400, description="Comma-separated tickers, e.g. AAPL,MSFT (default: all)."),
]
WindowName = Annotated[
    str | None,
    Query(max_length=64, description="A named window (see /api/windows); start/end override its dates."),
]
Start = Annotated[dt.date | None, Query(description="First day, inclusive (YYYY-MM-DD).")]
End = Annotated[dt.date | None, Query(description="Last day, inclusive (YYYY-MM-DD).")]
Day = Annotated[dt.date | None, Query(description="A trading day (default: the last one in the data).")]
N = Annotated[int, Query(ge=1, le=50, description="How many rows to name.")]
Bottom = Annotated[bool, Query(description="Biggest decreases (or smallest) first.")]
Measure = Literal["close", "adj_close", "volume", "open", "high", "low"]
PriceMeasure = Literal["close", "adj_close"]
Grain = Literal["day", "week", "month", "quarter", "year"]

router = APIRouter(prefix="/api")


def _cache(request: Request) -> LakeCache:
    return request.app.state.cache


def _json(body: bytes) -> Response:
    return Response(content=body, media_type="application/json")


def _key(**params: Any) -> tuple[Any, ...]:
    return tuple(sorted((k, str(v)) for k, v in params.items()))


def _selection(market: Market, tickers: str | None) -> tuple[str, ...]:
    market.require()
    return parse_tickers(tickers, market.tickers)


def _one(market: Market, ticker: str, what: str) -> str:
    chosen = _selection(market, ticker)
    if "," in ticker or not ticker.strip() or len(chosen) != 1:
        raise BadInput(f"{what} needs exactly one ticker, got {ticker.strip()[:40]!r}")
    return chosen[0]


def _span(cache: LakeCache, window: str | None, start: dt.date | None, end: dt.date | None) -> Any:
    return resolve_span(window, start, end, cache.windows())


def _day(market: Market, day: dt.date | None) -> dt.date:
    market.require()
    last = market.last_date
    assert last is not None
    return day or last


# --------------------------------------------------------------------------- lake and bars


@router.get("/health", summary="Liveness and the lake served", tags=["meta"])
def health(request: Request) -> dict[str, str]:
    """Always 200 while the server runs."""
    return {"status": "ok", "version": __version__, "lake": _cache(request).settings.lake_uri}


@router.get("/meta", response_model=MetaOut, summary="Tickers, data range and windows", tags=["meta"])
def meta(request: Request) -> Response:
    """What the lake holds: tickers (display order), first and last trading day, windows."""
    cache = _cache(request)

    def compute(market: Market) -> dict[str, Any]:
        return {
            "version": __version__,
            "lake": cache.settings.lake_uri,
            "tickers": list(market.tickers),
            "first_date": market.first_date,
            "last_date": market.last_date,
            "trading_days": len(market.dates),
            "rows": market.bars.num_rows,
            "loaded_at": market.loaded_at,
            "windows": [
                {"name": w.name, "label": w.label, "start": w.start, "end": w.end}
                for w in cache.windows().values()
            ],
        }

    return _json(cache.cached(("meta",), compute))


@router.get("/windows", response_model=list[WindowOut], summary="Named analysis windows", tags=["meta"])
def windows(request: Request) -> list[dict[str, Any]]:
    """Built-in windows (NBER recessions, the original study's windows, the 2022 bear market) and user ones."""
    return [
        {"name": w.name, "label": w.label, "start": w.start, "end": w.end}
        for w in _cache(request).windows().values()
    ]


@router.get(
    "/bars", response_model=BarsOut, responses=_ERRORS, summary="Series for the line chart", tags=["bars"]
)
def bars(
    request: Request,
    tickers: Tickers = None,
    window: WindowName = None,
    start: Start = None,
    end: End = None,
    measure: Annotated[
        Literal["close", "adj_close", "volume", "normalised"],
        Query(description="close, adj_close, volume, or close rebased to 100 at the window start."),
    ] = "close",
    total: Annotated[bool, Query(description="Also return the total across the tickers per day.")] = False,
) -> Response:
    """Daily values of the selected tickers on a shared date axis (null where a ticker has no bar)."""
    cache = _cache(request)
    span = _span(cache, window, start, end)
    key = _key(kind="bars", tickers=tickers, s=span.start, e=span.end, m=measure, t=total)

    def compute(market: Market) -> dict[str, Any]:
        series = line_series(market, _selection(market, tickers), span.start, span.end, measure, total)
        return dumps_plain(series)

    return _json(cache.cached(key, compute))


@router.get(
    "/ohlc", response_model=OhlcOut, responses=_ERRORS, summary="Candles of one ticker", tags=["bars"]
)
def ohlc(
    request: Request,
    ticker: Annotated[str, Query(min_length=1, max_length=TICKER_MAX_LENGTH, description="The ticker.")],
    window: WindowName = None,
    start: Start = None,
    end: End = None,
    measure: Annotated[
        Literal["close", "adj_close", "normalised"], Query(description="Price scale.")
    ] = "close",
) -> Response:
    """Open, high, low, close and volume of one ticker, for a candlestick + volume chart."""
    cache = _cache(request)
    span = _span(cache, window, start, end)
    key = _key(kind="ohlc", ticker=ticker, s=span.start, e=span.end, m=measure)

    def compute(market: Market) -> dict[str, Any]:
        return dumps_plain(
            ohlc_series(market, _one(market, ticker, "candles"), span.start, span.end, measure)
        )

    return _json(cache.cached(key, compute))


# --------------------------------------------------------------------------- insights


@router.get(
    "/insights/movers", response_model=MoversResult, responses=_ERRORS, summary="Top or bottom movers of a day",
    tags=["insights"],
)  # fmt: skip
def insight_movers(
    request: Request,
    date: Day = None,
    n: N = 3,
    bottom: Bottom = False,
    measure: Annotated[Measure, Query(description="The value compared.")] = "close",
    rank_by: Annotated[
        Literal["pct_change", "change"], Query(description="Percent or absolute change.")
    ] = "pct_change",
    tickers: Tickers = None,
) -> Response:
    """Each ticker's change against its own previous trading day, ranked; exclusions reported."""
    cache = _cache(request)
    key = _key(kind="movers", d=date, n=n, b=bottom, m=measure, r=rank_by, t=tickers)

    def compute(market: Market) -> Any:
        bars = market.bars_for(_selection(market, tickers))
        return movers(bars, _day(market, date), n, bottom, measure, rank_by, market.actions)

    return _json(cache.cached(key, compute))


@router.get(
    "/insights/period", response_model=PeriodResult, responses=_ERRORS,
    summary="Period over period (KPI)", tags=["insights"],
)  # fmt: skip
def insight_period(
    request: Request,
    date: Day = None,
    grain: Annotated[Grain, Query(description="Period length.")] = "day",
    measure: Annotated[Measure, Query(description="The value totalled.")] = "close",
    tickers: Tickers = None,
) -> Response:
    """The total across tickers for the period containing ``date`` against the previous period."""
    cache = _cache(request)
    key = _key(kind="period", d=date, g=grain, m=measure, t=tickers)

    def compute(market: Market) -> Any:
        bars = market.bars_for(_selection(market, tickers))
        return period_over_period(bars, _day(market, date), grain, measure, market.actions)

    return _json(cache.cached(key, compute))


@router.get(
    "/insights/period-to-date", response_model=PeriodResult, responses=_ERRORS,
    summary="Period to date", tags=["insights"],
)  # fmt: skip
def insight_period_to_date(
    request: Request,
    date: Day = None,
    grain: Annotated[
        Literal["week", "month", "quarter", "year"], Query(description="Period length.")
    ] = "month",
    measure: Annotated[Measure, Query(description="The value totalled.")] = "close",
    tickers: Tickers = None,
) -> Response:
    """Week/month/quarter/year-to-date total against the previous period."""
    cache = _cache(request)
    key = _key(kind="ptd", d=date, g=grain, m=measure, t=tickers)

    def compute(market: Market) -> Any:
        bars = market.bars_for(_selection(market, tickers))
        return period_to_date(bars, _day(market, date), grain, measure, market.actions)

    return _json(cache.cached(key, compute))


@router.get(
    "/insights/growth", response_model=GrowthResult, responses=_ERRORS,
    summary="Compound growth rate", tags=["insights"],
)  # fmt: skip
def insight_growth(
    request: Request,
    window: WindowName = None,
    start: Start = None,
    end: End = None,
    grain: Annotated[Grain, Query(description="The rate is per this period.")] = "month",
    measure: Annotated[Measure, Query(description="The value totalled.")] = "close",
    tickers: Tickers = None,
) -> Response:
    """Compound growth rate of the total (and of each ticker) over a window."""
    cache = _cache(request)
    span = _span(cache, window, start, end)
    key = _key(kind="growth", s=span.start, e=span.end, g=grain, m=measure, t=tickers)

    def compute(market: Market) -> Any:
        bars = market.bars_for(_selection(market, tickers))
        return growth(bars, span.start, span.end, grain, measure, market.actions)

    return _json(cache.cached(key, compute))


@router.get(
    "/insights/ranked", response_model=RankedResult, responses=_ERRORS,
    summary="Tickers ranked over a window", tags=["insights"],
)  # fmt: skip
def insight_ranked(
    request: Request,
    window: WindowName = None,
    start: Start = None,
    end: End = None,
    n: N = 3,
    bottom: Bottom = False,
    measure: Annotated[Measure, Query(description="The value ranked.")] = "close",
    tickers: Tickers = None,
) -> Response:
    """Tickers ranked by their change (prices) or total (volume) over a window."""
    cache = _cache(request)
    span = _span(cache, window, start, end)
    key = _key(kind="ranked", s=span.start, e=span.end, n=n, b=bottom, m=measure, t=tickers)

    def compute(market: Market) -> Any:
        bars = market.bars_for(_selection(market, tickers))
        return ranked(bars, span.start, span.end, n, bottom, measure, market.actions)

    return _json(cache.cached(key, compute))


@router.get(
    "/insights/extremes", response_model=ExtremesResult, responses=_ERRORS,
    summary="Highest and lowest values", tags=["insights"],
)  # fmt: skip
def insight_extremes(
    request: Request,
    window: WindowName = None,
    start: Start = None,
    end: End = None,
    measure: Annotated[Measure, Query(description="The value.")] = "close",
    tickers: Tickers = None,
) -> Response:
    """Highest and lowest total (and per-ticker values) over a window, with their dates."""
    cache = _cache(request)
    span = _span(cache, window, start, end)
    key = _key(kind="extremes", s=span.start, e=span.end, m=measure, t=tickers)

    def compute(market: Market) -> Any:
        bars = market.bars_for(_selection(market, tickers))
        return extremes(bars, span.start, span.end, measure, market.actions)

    return _json(cache.cached(key, compute))


@router.get(
    "/insights/anomalies", response_model=AnomalyResult, responses=_ERRORS,
    summary="Anomalous days with contributors", tags=["insights"],
)  # fmt: skip
def insight_anomalies(
    request: Request,
    window: WindowName = None,
    start: Start = None,
    end: End = None,
    sensitivity: Annotated[float, Query(ge=0, le=1, description="0 (fewest) to 1 (most anomalies).")] = 0.5,
    measure: Annotated[PriceMeasure, Query(description="The price whose returns are scored.")] = "close",
    top_n: Annotated[int, Query(ge=1, le=20, description="Contributors named per anomaly.")] = 3,
    tickers: Tickers = None,
) -> Response:
    """Unusual days found on returns (never on price levels, so a split is never one), with the
    tickers that drove each, their actual and expected values."""
    cache = _cache(request)
    span = _span(cache, window, start, end)
    key = _key(kind="anomalies", s=span.start, e=span.end, x=sensitivity, m=measure, n=top_n, t=tickers)

    def compute(market: Market) -> Any:
        bars = market.bars_for(_selection(market, tickers))
        return anomalies(bars, span.start, span.end, sensitivity, measure, top_n, market.actions)

    return _json(cache.cached(key, compute))


@router.get(
    "/insights/forecast", response_model=ForecastResult, responses=_ERRORS,
    summary="Forecast with 80% and 95% intervals", tags=["insights"],
)  # fmt: skip
def insight_forecast(
    request: Request,
    ticker: Annotated[str, Query(min_length=1, max_length=TICKER_MAX_LENGTH, description="The ticker to forecast.")],
    horizon: Annotated[int, Query(ge=1, le=260, description="Trading days ahead.")] = 30,
    measure: Annotated[PriceMeasure, Query(description="The price forecast.")] = "close",
) -> Response:
    """Point forecast of one ticker with 80% and 95% prediction intervals."""
    cache = _cache(request)
    key = _key(kind="forecast", t=ticker, h=horizon, m=measure)

    def compute(market: Market) -> Any:
        one = _one(market, ticker, "a forecast")
        return forecast(market.bars_for([one]), one, horizon, measure, market.actions)

    return _json(cache.cached(key, compute))


@router.get(
    "/insights/recessions", response_model=RecessionResult, responses=_ERRORS,
    summary="How each ticker fared in a downturn", tags=["insights"],
)  # fmt: skip
def insight_recessions(
    request: Request,
    period: Annotated[
        str | None, Query(max_length=64, description="A window name (default: study-2008-focus).")
    ] = None,
    start: Annotated[dt.date | None, Query(description="Window start, instead of a period.")] = None,
    end: Annotated[dt.date | None, Query(description="Window end, instead of a period.")] = None,
    measure: Annotated[PriceMeasure, Query(description="The price analysed.")] = "close",
    tickers: Tickers = None,
) -> Response:
    """Return, maximum drawdown, volatility, worst and best day, beta, correlation and recovery per ticker."""
    cache = _cache(request)
    if not period and (start is None) != (end is None):
        raise BadInput("give a period name, or both start and end")
    if not period and start is None:
        period = "study-2008-focus"
    key = _key(kind="recession", p=period, s=start, e=end, m=measure, t=tickers)

    def compute(market: Market) -> Any:
        bars = market.bars_for(_selection(market, tickers))
        return recession(bars, period, start, end, cache.windows(), measure, market.actions)

    return _json(cache.cached(key, compute))


@router.get(
    "/insights/recessions/compare", response_model=RecessionCompareOut, responses=_ERRORS,
    summary="Every window side by side", tags=["insights"],
)  # fmt: skip
def insight_recessions_compare(
    request: Request,
    measure: Annotated[PriceMeasure, Query(description="The price analysed.")] = "close",
    tickers: Tickers = None,
) -> Response:
    """The equal-weight basket and each ticker's return and drawdown in every named window."""
    cache = _cache(request)
    key = _key(kind="recession-compare", m=measure, t=tickers)

    def compute(market: Market) -> Any:
        chosen = _selection(market, tickers)
        bars = market.bars_for(chosen)
        rows = []
        for w in cache.windows().values():
            row: dict[str, Any] = {"name": w.name, "label": w.label, "start": w.start, "end": w.end}
            try:
                res = recession(bars, w, measure=measure, corporate_actions=market.actions)
            except TickerlakeError as e:
                row.update(error=str(e), basket=None, tickers={})
            else:
                b = res.basket
                row.update(
                    error=None,
                    first_date=res.first_date,
                    last_date=res.last_date,
                    basket={
                        "return_pct": b.return_pct,
                        "max_drawdown_pct": b.max_drawdown_pct,
                        "volatility_pct": b.volatility_pct,
                    },
                    tickers={
                        t.ticker: {"return_pct": t.return_pct, "max_drawdown_pct": t.max_drawdown_pct}
                        for t in res.tickers
                    },
                    best=res.tickers[0].ticker if res.tickers else None,
                    worst=res.tickers[-1].ticker if res.tickers else None,
                )
            rows.append(row)
        return {"measure": measure, "tickers": list(chosen), "windows": rows}

    return _json(cache.cached(key, compute))


@router.get(
    "/insights/summary", response_model=SummaryResult, responses=_ERRORS,
    summary="The most important insights of a window", tags=["insights"],
)  # fmt: skip
def insight_summary(
    request: Request,
    window: WindowName = None,
    start: Start = None,
    end: End = None,
    n: Annotated[int, Query(ge=1, le=20, description="How many insights.")] = 5,
    measure: Annotated[PriceMeasure, Query(description="The price analysed.")] = "close",
    tickers: Tickers = None,
) -> Response:
    """A QuickSight-style autonarrative: the window's insights ranked by importance."""
    cache = _cache(request)
    span = _span(cache, window, start, end)
    key = _key(kind="summary", s=span.start, e=span.end, n=n, m=measure, t=tickers)

    def compute(market: Market) -> Any:
        bars = market.bars_for(_selection(market, tickers))
        return summary(bars, span.start, span.end, n, measure, market.actions)

    return _json(cache.cached(key, compute))


# --------------------------------------------------------------------------- SQL


@router.get("/named", response_model=list[NamedOut], summary="Named queries", tags=["query"])
def named_queries() -> list[dict[str, Any]]:
    """The shipped named queries with their parameters."""
    return [
        {
            "name": q.name,
            "description": q.description,
            "params": [
                {"name": p.name, "type": p.type, "optional": p.optional, "doc": p.doc} for p in q.params
            ],
            "sql": q.sql,
        }
        for q in list_named()
    ]


def _run(request: Request, body: QueryIn) -> tuple[QueryResult, int]:
    settings = _cache(request).settings
    if bool(body.sql and body.sql.strip()) == bool(body.named):
        raise BadInput("give either sql or named (one of them)")
    limit = min(body.limit or settings.query_row_limit, settings.query_row_limit)
    timeout = settings.query_timeout_s
    if body.timeout_s is not None:
        timeout = min(body.timeout_s, timeout) if timeout > 0 else body.timeout_s
    params = dict(body.params) if body.params else None
    if body.named:
        if body.named not in {q.name for q in list_named()}:
            raise NotFoundError(
                f"unknown named query {body.named!r} (known: {', '.join(q.name for q in list_named())})"
            )
        result = get_engine(settings).run_named(body.named, params, limit=limit, timeout_s=timeout)
    else:
        assert body.sql is not None
        result = get_engine(settings).query(body.sql, params, limit=limit, timeout_s=timeout)
    return result, limit


@router.post(
    "/query", response_model=QueryOut, responses=_QUERY_ERRORS, summary="Run read-only SQL", tags=["query"]
)
def query(request: Request, body: Annotated[QueryIn, Body()]) -> Response:
    """One read-only statement (or a named query) over the catalog, with a row limit and a time limit.

    Writes, ATTACH/COPY/INSTALL and reading files outside the lake are refused (403).
    """
    result, limit = _run(request, body)
    rows = [[jsonable(v) for v in row] for row in result.rows()]
    payload = {**result.summary(), "rows": rows, "limit": limit, "sql": result.sql}
    return _json(json.dumps(payload, separators=(",", ":"), default=str).encode())


@router.post(
    "/query/csv", responses={**_QUERY_ERRORS, 200: {"content": {"text/csv": {}}, "description": "The rows as CSV."}},
    summary="Run read-only SQL, answer CSV", tags=["query"],
)  # fmt: skip
def query_csv(request: Request, body: Annotated[QueryIn, Body()]) -> Response:
    """The same as ``POST /api/query``, with the rows as a CSV download."""
    result, _ = _run(request, body)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(result.columns)
    for row in result.rows():
        writer.writerow(["" if v is None else _csv_cell(jsonable(v)) for v in row])
    name = body.named or "query"
    headers = {"Content-Disposition": f'attachment; filename="tickerlake-{name}.csv"'}
    if result.truncated:
        headers["X-Tickerlake-Truncated"] = str(result.row_count)
    return Response(content=out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


def _csv_cell(value: Any) -> str:
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


# --------------------------------------------------------------------------- catalog


def _crawl_report(request: Request) -> dict[str, Any] | None:
    from tickerlake.lake.crawler import last_crawl_report

    try:
        return last_crawl_report(_cache(request).settings)
    except (OSError, ValueError) as e:
        return {"error": f"cannot read the last crawl report: {e}"}


@router.get(
    "/catalog",
    response_model=CatalogOut,
    responses=_ERRORS,
    summary="Tables and the last crawl",
    tags=["catalog"],
)
def catalog(request: Request) -> Response:
    """Curated (Iceberg) and raw (crawled) tables with schema, partitions, row counts, and the last crawl report."""
    settings = _cache(request).settings
    tables = get_engine(settings).tables(row_counts=True)
    return _json(dumps({"lake": settings.lake_uri, "tables": tables, "crawl": _crawl_report(request)}))


@router.get("/catalog/crawl", responses=_ERRORS, summary="The last crawl report", tags=["catalog"])
def catalog_crawl(request: Request) -> dict[str, Any]:
    """What the last crawl found: new tables, new columns, type changes, partitions, problems."""
    report = _crawl_report(request)
    if report is None:
        raise NotFoundError("no crawl yet: run `tickerlake crawl` (or `tickerlake etl`)")
    return report


@router.get(
    "/catalog/tables/{name}", response_model=TableOut, responses=_ERRORS,
    summary="One table with its snapshots", tags=["catalog"],
)  # fmt: skip
def catalog_table(
    request: Request,
    name: Annotated[str, Path(max_length=200, description="Qualified name, e.g. market.daily_bars.")],
) -> Response:
    """A table's schema, partitions and counts, with its Iceberg snapshots newest first."""
    engine = get_engine(_cache(request).settings)
    found = [t for t in engine.tables(row_counts=True) if t.name == name]
    if not found:
        known = ", ".join(t.name for t in engine.tables(row_counts=False))
        raise NotFoundError(f"no table {name!r} (tables: {known or 'none yet'})")
    return _json(dumps({"table": found[0], "snapshots": engine.history(name)}))
