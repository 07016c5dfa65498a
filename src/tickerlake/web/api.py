"""The JSON API under ``/api``: bars, every insight kind, read-only SQL and the catalog.

Every endpoint is a thin shell over one operation of :mod:`tickerlake.service`, the same
functions the CLI calls, so the two answer alike by construction: the endpoint turns query
parameters into the operation's typed parameters, and its typed result into JSON with
:func:`tickerlake.jsonable.jsonable`. Answers are cached per lake state by
:class:`~tickerlake.web.data.LakeCache`, so a dashboard that asks twice pays once. Errors
are mapped to statuses by their class in :mod:`tickerlake.web.errors`: bad parameters get
a 4xx with a one-line ``detail``, never a 500, and a missing thing is a
:class:`~tickerlake.errors.NotFoundError` (404).
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from tickerlake import __version__
from tickerlake.insights import (
    AnomalyResult,
    ExtremesResult,
    ForecastResult,
    GrowthResult,
    MoversResult,
    PeriodResult,
    RankedResult,
    RecessionResult,
    SummaryResult,
    Window,
)
from tickerlake.jsonable import jsonable
from tickerlake.lake.contract import TICKER_MAX_LENGTH
from tickerlake.query.named import NamedQuery
from tickerlake.service import catalog as catalog_service
from tickerlake.service import charts, queries
from tickerlake.service import insights as ops
from tickerlake.service.market import LakeMeta, lake_meta
from tickerlake.service.selection import (
    Grain,
    LineMeasure,
    Measure,
    OhlcMeasure,
    PriceMeasure,
    RankBy,
    ToDateGrain,
)
from tickerlake.web.data import LakeCache, dumps, dumps_plain

__all__ = ["router"]


# --------------------------------------------------------------------------- models (for the schema)
# Answers of the service's operations are described by their own result types (dataclasses);
# only what the web alone answers (chart series, query rows, errors) has a model here.


class ErrorOut(BaseModel):
    """An error answer."""

    error: str = Field(description="Error type, e.g. UnknownTicker, QueryRefused, ValidationError.")
    detail: str = Field(description="One-line message for humans.")


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
    cancel_key: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="A key of the caller's choice; POST /api/query/cancel with it stops the query.",
    )


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
    run_id: str = Field(description="The run's id in the query history (GET /api/history).")


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

router = APIRouter(prefix="/api")


def _cache(request: Request) -> LakeCache:
    cache: LakeCache = request.app.state.cache
    return cache


def _json(body: bytes) -> Response:
    return Response(content=body, media_type="application/json")


def _answer(request: Request, kind: str, params: Any, op: Callable[..., Any]) -> Response:
    """The cached JSON of ``op(market, params, windows)`` in the current lake state.

    The parameters are frozen dataclasses, so they are the cache key themselves.
    """
    cache = _cache(request)
    windows = cache.windows()
    return _json(cache.cached((kind, params), lambda market: op(market, params, windows)))


# --------------------------------------------------------------------------- lake and bars


@router.get("/health", summary="Liveness and the lake served", tags=["meta"])
def health(request: Request) -> dict[str, str]:
    """Always 200 while the server runs."""
    return {"status": "ok", "version": __version__, "lake": _cache(request).settings.lake_uri}


@router.get("/meta", response_model=LakeMeta, summary="Tickers, data range and windows", tags=["meta"])
def meta(request: Request) -> Response:
    """What the lake holds: tickers (display order), first and last trading day, windows."""
    cache = _cache(request)
    return _json(cache.cached(("meta",), lambda market: lake_meta(market, cache.settings)))


@router.get("/windows", response_model=list[Window], summary="Named analysis windows", tags=["meta"])
def windows(request: Request) -> Response:
    """Built-in windows (NBER recessions, the original study's windows, the 2022 bear market) and user ones."""
    return _json(dumps(list(_cache(request).windows().values())))


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
        LineMeasure,
        Query(description="close, adj_close, volume, or close rebased to 100 at the window start."),
    ] = "close",
    total: Annotated[bool, Query(description="Also return the total across the tickers per day.")] = False,
) -> Response:
    """Daily values of the selected tickers on a shared date axis (null where a ticker has no bar)."""
    p = charts.BarsParams(tickers, window, start, end, measure, total)
    # The series are plain JSON types already: encoded without jsonable's walk.
    return _answer(request, "bars", p, lambda m, q, w: dumps_plain(charts.bars(m, q, w)))


@router.get(
    "/ohlc", response_model=OhlcOut, responses=_ERRORS, summary="Candles of one ticker", tags=["bars"]
)
def ohlc(
    request: Request,
    ticker: Annotated[str, Query(min_length=1, max_length=TICKER_MAX_LENGTH, description="The ticker.")],
    window: WindowName = None,
    start: Start = None,
    end: End = None,
    measure: Annotated[OhlcMeasure, Query(description="Price scale.")] = "close",
) -> Response:
    """Open, high, low, close and volume of one ticker, for a candlestick + volume chart."""
    p = charts.OhlcParams(ticker, window, start, end, measure)
    return _answer(request, "ohlc", p, lambda m, q, w: dumps_plain(charts.ohlc(m, q, w)))


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
    rank_by: Annotated[RankBy, Query(description="Percent or absolute change.")] = "pct_change",
    tickers: Tickers = None,
) -> Response:
    """Each ticker's change against its own previous trading day, ranked; exclusions reported."""
    p = ops.MoversParams(tickers=tickers, date=date, n=n, bottom=bottom, measure=measure, rank_by=rank_by)
    return _answer(request, "movers", p, ops.movers)


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
    p = ops.PeriodParams(tickers=tickers, date=date, grain=grain, measure=measure)
    return _answer(request, "period", p, ops.period)


@router.get(
    "/insights/period-to-date", response_model=PeriodResult, responses=_ERRORS,
    summary="Period to date", tags=["insights"],
)  # fmt: skip
def insight_period_to_date(
    request: Request,
    date: Day = None,
    grain: Annotated[ToDateGrain, Query(description="Period length.")] = "month",
    measure: Annotated[Measure, Query(description="The value totalled.")] = "close",
    tickers: Tickers = None,
) -> Response:
    """Week/month/quarter/year-to-date total against the previous period."""
    p = ops.PeriodToDateParams(tickers=tickers, date=date, grain=grain, measure=measure)
    return _answer(request, "period-to-date", p, ops.period_to_date)


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
    p = ops.GrowthParams(tickers=tickers, window=window, start=start, end=end, grain=grain, measure=measure)
    return _answer(request, "growth", p, ops.growth)


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
    p = ops.RankedParams(
        tickers=tickers, window=window, start=start, end=end, n=n, bottom=bottom, measure=measure
    )
    return _answer(request, "ranked", p, ops.ranked)


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
    p = ops.ExtremesParams(tickers=tickers, window=window, start=start, end=end, measure=measure)
    return _answer(request, "extremes", p, ops.extremes)


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
    p = ops.AnomaliesParams(
        tickers=tickers, window=window, start=start, end=end, sensitivity=sensitivity, measure=measure,
        top_n=top_n,
    )  # fmt: skip
    return _answer(request, "anomalies", p, ops.anomalies)


@router.get(
    "/insights/forecast", response_model=ForecastResult, responses=_ERRORS,
    summary="Forecast with 80% and 95% intervals", tags=["insights"],
)  # fmt: skip
def insight_forecast(
    request: Request,
    ticker: Annotated[
        str | None,
        Query(min_length=1, max_length=TICKER_MAX_LENGTH, description="The one ticker to forecast."),
    ] = None,
    horizon: Annotated[int, Query(ge=1, le=260, description="Trading days ahead (exchange calendar).")] = 30,
    measure: Annotated[PriceMeasure, Query(description="The price forecast.")] = "close",
    tickers: Tickers = None,
    origin: Annotated[
        dt.date | None,
        Query(description="Forecast from this day (default: the last bar); actuals follow it."),
    ] = None,
) -> Response:
    """Point forecast of one ticker, or of the total close of ``tickers``, with 80% and 95%
    prediction intervals, from any origin, with the actual values after it that the lake holds."""
    p = ops.ForecastParams(ticker=ticker, horizon=horizon, measure=measure, tickers=tickers, origin=origin)
    return _answer(request, "forecast", p, ops.forecast)


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
    p = ops.RecessionParams(tickers=tickers, period=period, start=start, end=end, measure=measure)
    return _answer(request, "recessions", p, ops.recessions)


@router.get(
    "/insights/recessions/compare", response_model=ops.RecessionComparison, responses=_ERRORS,
    summary="Every window side by side", tags=["insights"],
)  # fmt: skip
def insight_recessions_compare(
    request: Request,
    measure: Annotated[PriceMeasure, Query(description="The price analysed.")] = "close",
    tickers: Tickers = None,
) -> Response:
    """The equal-weight basket and each ticker's return and drawdown in every named window."""
    p = ops.RecessionCompareParams(tickers=tickers, measure=measure)
    return _answer(request, "recessions-compare", p, ops.recession_compare)


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
    p = ops.SummaryParams(tickers=tickers, window=window, start=start, end=end, n=n, measure=measure)
    return _answer(request, "summary", p, ops.summary)


# --------------------------------------------------------------------------- SQL


@router.get("/named", response_model=list[NamedQuery], summary="Named queries", tags=["query"])
def named_queries(request: Request) -> Response:
    """Every query runnable by name: the shipped ones, then the lake's saved ones (``kind``)."""
    return _json(dumps(queries.listed_queries(_cache(request).settings)))


def caller(request: Request) -> tuple[str, str]:
    """The caller's name for the query history, and the prefix of its cancel keys (one
    caller cannot cancel another's queries)."""
    principal = getattr(request.state, "principal", None)
    if principal is None:
        return "", "anonymous:"
    return principal.name or "", principal.limit_key + ":"


def _run(request: Request, body: QueryIn) -> queries.QueryAnswer:
    user, prefix = caller(request)
    key = prefix + body.cancel_key if body.cancel_key else None
    req = queries.QueryRequest(body.sql, body.named, body.params, body.limit, body.timeout_s, key)
    # A server's limits are the most a client may ask for.
    return queries.run(_cache(request).settings, req, capped=True, source="web", user=user)


@router.post(
    "/query", response_model=QueryOut, responses=_QUERY_ERRORS, summary="Run read-only SQL", tags=["query"]
)
def query(request: Request, body: Annotated[QueryIn, Body()]) -> Response:
    """One read-only statement (or a named query) over the catalog, with a row limit and a time limit.

    Writes, ATTACH/COPY/INSTALL and reading files outside the lake are refused (403).
    """
    answer = _run(request, body)
    result = answer.result
    rows = [[jsonable(v) for v in row] for row in result.rows()]
    payload = {
        **result.summary(),
        "rows": rows,
        "limit": answer.limit,
        "sql": result.sql,
        "run_id": answer.run_id,
    }
    return _json(json.dumps(payload, separators=(",", ":"), default=str).encode())


@router.post(
    "/query/csv", responses={**_QUERY_ERRORS, 200: {"content": {"text/csv": {}}, "description": "The rows as CSV."}},
    summary="Run read-only SQL, answer CSV", tags=["query"],
)  # fmt: skip
def query_csv(request: Request, body: Annotated[QueryIn, Body()]) -> Response:
    """The same as ``POST /api/query``, with the rows as a CSV download."""
    result = _run(request, body).result
    out = io.StringIO()
    queries.write_csv(result, out)
    name = body.named or "query"
    headers = {"Content-Disposition": f'attachment; filename="tickerlake-{name}.csv"'}
    if result.truncated:
        headers["X-Tickerlake-Truncated"] = str(result.row_count)
    return Response(content=out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


# --------------------------------------------------------------------------- catalog


@router.get(
    "/catalog",
    response_model=catalog_service.CatalogView,
    responses=_ERRORS,
    summary="Tables and the last crawl",
    tags=["catalog"],
)
def catalog(request: Request) -> Response:
    """Curated (Iceberg) and raw (crawled) tables with schema, partitions, row counts, and the last crawl report."""
    return _json(dumps(catalog_service.catalog(_cache(request).settings)))


@router.get("/catalog/crawl", responses=_ERRORS, summary="The last crawl report", tags=["catalog"])
def catalog_crawl(request: Request) -> dict[str, Any]:
    """What the last crawl found: new tables, new columns, type changes, partitions, problems."""
    return catalog_service.last_crawl(_cache(request).settings)


@router.get(
    "/catalog/tables/{name}", response_model=catalog_service.TableDetail, responses=_ERRORS,
    summary="One table with its snapshots", tags=["catalog"],
)  # fmt: skip
def catalog_table(
    request: Request,
    name: Annotated[str, Path(max_length=200, description="Qualified name, e.g. market.daily_bars.")],
) -> Response:
    """A table's schema, partitions and counts, with its Iceberg snapshots newest first."""
    return _json(dumps(catalog_service.table_detail(_cache(request).settings, name)))
