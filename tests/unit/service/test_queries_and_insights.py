"""The service's query plumbing (CSV cells, limits) and insight operations on a hand-made market."""

from __future__ import annotations

import datetime as dt
import decimal
import io
from typing import Any

import pyarrow as pa
import pytest

from tickerlake.config import Settings
from tickerlake.insights import BUILTIN_WINDOWS, BadInput, NoData, UnknownTicker, Window
from tickerlake.jsonable import jsonable
from tickerlake.query.results import QueryResult
from tickerlake.service import insights as ops
from tickerlake.service import queries
from tickerlake.service.market import build_market, lake_meta

D = dt.date.fromisoformat


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (None, ""),
        (1.5, "1.5"),
        ("a,b", "a,b"),
        (D("2020-01-02"), "2020-01-02"),
        (decimal.Decimal("1.25"), "1.25"),
        ([1, None], "[1, null]"),
        ({"k": D("2020-01-02")}, '{"k": "2020-01-02"}'),
        (float("nan"), ""),
    ],
)
def test_csv_cell(value: Any, cell: str) -> None:
    assert queries.csv_cell(value) == cell


def test_write_csv_quotes_and_heads() -> None:
    table = pa.table({"t": ["A,B", None], "n": [1, 2]})
    result = QueryResult(["t", "n"], ["VARCHAR", "BIGINT"], table, 2, False, 1.0)
    out = io.StringIO()
    queries.write_csv(result, out)
    assert out.getvalue() == 't,n\n"A,B",1\n,2\n'


def test_server_limits_are_caps(tmp_path: Any) -> None:
    settings = Settings(lake=str(tmp_path), query_row_limit=100, query_timeout_s=10.0)
    limits = queries._limits
    assert limits(settings, queries.QueryRequest(sql="x"), capped=True) == (100, 10.0)
    assert limits(settings, queries.QueryRequest(sql="x", limit=5, timeout_s=60), capped=True) == (5, 10.0)
    assert limits(settings, queries.QueryRequest(sql="x", limit=500, timeout_s=1), capped=True) == (100, 1)
    assert limits(settings, queries.QueryRequest(sql="x", limit=0), capped=False) == (0, None)


@pytest.mark.parametrize(
    "req", [queries.QueryRequest(), queries.QueryRequest(sql="SELECT 1", named="drawdown")]
)
def test_a_request_is_sql_or_named(tmp_path: Any, req: queries.QueryRequest) -> None:
    with pytest.raises(BadInput, match="either sql or named"):
        queries.run(Settings(lake=str(tmp_path)), req)


def _market() -> Any:
    days = [D("2020-01-01") + dt.timedelta(days=i) for i in range(400)]
    days = [d for d in days if d.weekday() < 5]
    rows: dict[str, list[Any]] = {"ticker": [], "date": [], "close": [], "adj_close": [], "volume": []}
    for t, drift in (("AAPL", 1.001), ("MSFT", 0.999)):
        price = 100.0
        for i, d in enumerate(days):
            price *= drift * (1.01 if i % 3 else 0.985)
            rows["ticker"].append(t)
            rows["date"].append(d)
            rows["close"].append(price)
            rows["adj_close"].append(price)
            rows["volume"].append(1000 + i)
    return build_market(pa.table(rows))


def test_every_operation_runs_on_a_small_market() -> None:
    market = _market()
    window = {"w": Window("w", D("2020-03-02"), D("2020-04-30"), "spring")}
    for name, (params_type, op) in ops.KINDS.items():
        params = params_type(ticker="aapl") if name == "forecast" else params_type()
        if name in ("growth", "ranked", "extremes", "anomalies", "summary"):
            params = params_type(window="w")
        if name == "recessions":
            params = params_type(period="w")
        result = op(market, params, window)
        assert jsonable(result), name


def test_recessions_need_a_period_or_both_dates() -> None:
    with pytest.raises(BadInput, match="both start and end"):
        ops.recessions(_market(), ops.RecessionParams(start=D("2020-03-02")))


def test_comparison_reports_windows_without_data() -> None:
    market = _market()
    res = ops.recession_compare(market, ops.RecessionCompareParams(tickers="msft"), None)
    assert res.tickers == ["MSFT"] and len(res.windows) == len(BUILTIN_WINDOWS)
    assert all(
        w.error and w.basket is None and w.tickers == {} for w in res.windows if w.end < D("2020-01-01")
    )
    answered = [w for w in res.windows if not w.error]
    assert answered and all(w.best == w.worst == "MSFT" for w in answered)


def test_selection_errors() -> None:
    market = _market()
    with pytest.raises(UnknownTicker):
        ops.movers(market, ops.MoversParams(tickers="ZZZ"))
    with pytest.raises(BadInput, match="exactly one"):
        ops.forecast(market, ops.ForecastParams(ticker="AAPL,MSFT"))
    empty = build_market(pa.table({"ticker": pa.array([], pa.string()), "date": pa.array([], pa.date32())}))
    with pytest.raises(NoData):
        ops.summary(empty, ops.SummaryParams())


def test_lake_meta(tmp_path: Any) -> None:
    meta = lake_meta(_market(), Settings(lake=str(tmp_path)))
    assert meta.tickers == ["AAPL", "MSFT"] and meta.first_date == D("2020-01-01")
    assert {w.name for w in meta.windows} == set(BUILTIN_WINDOWS)
