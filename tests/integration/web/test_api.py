"""The JSON API on the simulated lake: answers agree with the lake and with the insight
functions the CLI calls, and bad parameters get a 4xx with a one-line message."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from typing import Any

import pyarrow.compute as pc
import pytest

from tickerlake.config import DEFAULT_TICKERS, Settings
from tickerlake.insights import anomalies, movers, period_over_period, recession
from tickerlake.insights.narrative import fmt_date
from tickerlake.lake.contract import read_table

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bars(sim_lake: Settings) -> Any:
    return read_table(sim_lake, "market.daily_bars")


@pytest.fixture(scope="module")
def actions(sim_lake: Settings) -> Any:
    return read_table(sim_lake, "market.corporate_actions")


def close_of(bars: Any, ticker: str, day: str) -> float:
    rows = bars.filter(
        pc.and_(pc.equal(bars["ticker"], ticker), pc.equal(bars["date"], dt.date.fromisoformat(day)))
    )
    return rows["close"][0].as_py()


def error_of(resp: Any, status: int, kind: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == kind
    assert "\n" not in body["detail"] and body["detail"]
    return body["detail"]


# --------------------------------------------------------------------------- meta and bars


def test_meta_lists_the_eight_tickers_in_customary_order(client: Any, bars: Any) -> None:
    meta = client.get("/api/meta").json()
    assert meta["tickers"] == list(DEFAULT_TICKERS)
    assert meta["rows"] == bars.num_rows
    assert meta["first_date"] == "1997-06-02"
    assert meta["last_date"] == "2023-12-12"
    names = {w["name"] for w in meta["windows"]}
    assert {"nber-2001", "nber-2008", "nber-2020", "study-2008", "study-2008-focus", "study-2022"} <= names


def test_health(client: Any, sim_lake: Settings) -> None:
    assert client.get("/api/health").json()["lake"] == sim_lake.lake_uri


def test_bars_of_a_window_match_the_lake(client: Any, bars: Any) -> None:
    resp = client.get("/api/bars", params={"tickers": "msft,AAPL", "window": "study-2022"})
    assert resp.status_code == 200
    data = resp.json()
    # Display order, not request order; ticker identity from the rows.
    assert [s["ticker"] for s in data["series"]] == ["AAPL", "MSFT"]
    assert data["start"] == "2022-04-01" and data["end"] == "2022-06-30"
    assert data["dates"][0] == "2022-04-01" and data["dates"][-1] == "2022-06-30"
    i = data["dates"].index("2022-06-30")
    for series in data["series"]:
        expected = close_of(bars, series["ticker"], "2022-06-30")
        assert series["values"][i] == pytest.approx(expected, abs=1e-4)
        assert series["last"] == pytest.approx(expected)
        assert series["change_pct"] == pytest.approx((series["last"] / series["first"] - 1) * 100)


def test_bars_explicit_dates_override_the_window(client: Any) -> None:
    data = client.get("/api/bars", params={"window": "study-2022", "start": "2022-06-01"}).json()
    assert data["start"] == "2022-06-01" and data["end"] == "2022-06-30"


def test_normalised_starts_at_100_and_total_sums_the_tickers(client: Any, bars: Any) -> None:
    norm = client.get("/api/bars", params={"window": "study-2008", "measure": "normalised"}).json()
    listed = [s for s in norm["series"] if s["first"] is not None]
    assert len(listed) == 6  # META and TSLA were not listed yet in 2008
    for series in listed:
        first = next(v for v in series["values"] if v is not None)
        assert first == pytest.approx(100.0)
    total = client.get(
        "/api/bars",
        params={"tickers": "AAPL,MSFT", "start": "2009-01-28", "end": "2009-01-28", "total": True},
    ).json()
    expected = close_of(bars, "AAPL", "2009-01-28") + close_of(bars, "MSFT", "2009-01-28")
    assert total["total"]["values"] == [pytest.approx(expected, abs=1e-3)]
    assert total["total"]["tickers"] == [2]


def test_a_ticker_before_its_first_bar_has_nulls(client: Any) -> None:
    # META lists on 2012-05-18 in the simulated market.
    data = client.get(
        "/api/bars", params={"tickers": "META", "start": "2012-05-16", "end": "2012-05-21"}
    ).json()
    assert data["dates"] == ["2012-05-16", "2012-05-17", "2012-05-18", "2012-05-21"]
    values = data["series"][0]["values"]
    assert values[:2] == [None, None] and None not in values[2:]
    assert data["series"][0]["first_date"] == "2012-05-18"


def test_volume_values_are_integers(client: Any) -> None:
    data = client.get(
        "/api/bars", params={"tickers": "AAPL", "window": "study-2022", "measure": "volume"}
    ).json()
    assert all(isinstance(v, int) for v in data["series"][0]["values"])


def test_ohlc_of_one_ticker(client: Any, bars: Any) -> None:
    data = client.get("/api/ohlc", params={"ticker": "aapl", "window": "study-2022"}).json()
    assert data["ticker"] == "AAPL"
    assert len(data["dates"]) == len(data["open"]) == len(data["volume"]) == 62
    assert data["close"][-1] == pytest.approx(close_of(bars, "AAPL", "2022-06-30"), abs=1e-4)
    for o, h, low, c in zip(data["open"], data["high"], data["low"], data["close"], strict=True):
        assert low <= min(o, c) + 1e-9 and h >= max(o, c) - 1e-9
    norm = client.get(
        "/api/ohlc", params={"ticker": "AAPL", "window": "study-2022", "measure": "normalised"}
    ).json()
    assert norm["close"][0] == pytest.approx(100.0)


@pytest.mark.parametrize(
    ("path", "params", "status", "kind", "words"),
    [
        ("/api/bars", {"tickers": "AAPL,ZZZ"}, 404, "UnknownTicker", "unknown ticker ZZZ"),
        ("/api/bars", {"tickers": "AA PL"}, 400, "BadInput", "bad ticker"),
        ("/api/bars", {"window": "dotcom"}, 404, "UnknownPeriod", "unknown period 'dotcom'"),
        ("/api/bars", {"start": "2020-01-10", "end": "2020-01-01"}, 400, "BadInput", "starts"),
        ("/api/bars", {"start": "2030-01-01"}, 400, "DateOutsideData", "outside the data"),
        ("/api/bars", {"start": "2022-06-04", "end": "2022-06-05"}, 400, "EmptyWindow", "no trading day"),
        ("/api/bars", {"start": "2022-13-01"}, 422, "ValidationError", "start"),
        ("/api/bars", {"measure": "price"}, 422, "ValidationError", "measure"),
        ("/api/ohlc", {"ticker": "AAPL,MSFT"}, 400, "BadInput", "exactly one ticker"),
        ("/api/ohlc", {}, 422, "ValidationError", "ticker"),
        (
            "/api/insights/movers",
            {"date": "2022-06-04"},
            400,
            "NotATradingDay",
            "Jun 4, 2022 is not a trading day",
        ),
        ("/api/insights/movers", {"date": "1990-01-02"}, 400, "DateOutsideData", "outside the data"),
        ("/api/insights/movers", {"n": 0}, 422, "ValidationError", "n"),
        ("/api/insights/forecast", {"ticker": "ZZZ"}, 404, "UnknownTicker", "ZZZ"),
        ("/api/insights/forecast", {"ticker": " "}, 400, "BadInput", "exactly one ticker"),
        ("/api/insights/recessions", {"period": "dotcom"}, 404, "UnknownPeriod", "dotcom"),
        ("/api/insights/recessions", {"start": "2020-01-01"}, 400, "BadInput", "both start and end"),
        ("/api/insights/anomalies", {"sensitivity": 2}, 422, "ValidationError", "sensitivity"),
        ("/api/catalog/tables/market.nothing", {}, 404, "NotFoundError", "no table 'market.nothing'"),
        ("/api/nothing", {}, 404, "HTTPError", "Not Found"),
    ],
)
def test_bad_parameters_get_a_4xx_with_a_message(
    client: Any, path: str, params: dict[str, Any], status: int, kind: str, words: str
) -> None:
    assert words in error_of(client.get(path, params=params), status, kind)


# --------------------------------------------------------------------------- insights


def test_movers_are_the_insight_functions_answer(client: Any, bars: Any, actions: Any) -> None:
    top = client.get("/api/insights/movers", params={"date": "2009-01-28"}).json()
    direct = movers(bars, "2009-01-28", 3, corporate_actions=actions)
    assert top["narrative"] == direct.narrative
    assert top["narrative"].startswith("Top total close movers for Jan 28, 2009 are: ")
    assert [r["ticker"] for r in top["rows"]] == [m.ticker for m in direct.rows]
    for row in top["rows"]:
        assert row["previous"] == pytest.approx(close_of(bars, row["ticker"], "2009-01-27"))
        assert row["current"] == pytest.approx(close_of(bars, row["ticker"], "2009-01-28"))
        assert row["pct_change"] == pytest.approx((row["current"] / row["previous"] - 1) * 100)
    bottom = client.get("/api/insights/movers", params={"date": "2009-01-28", "bottom": True}).json()
    assert bottom["direction"] == "bottom"
    assert bottom["narrative"].startswith("Bottom total close movers for Jan 28, 2009 are: ")
    # Tickers not listed yet on that day are reported, not silently dropped.
    assert {e["ticker"] for e in top["excluded"]} == {"META", "TSLA"}


def test_movers_default_to_the_last_trading_day(client: Any) -> None:
    assert client.get("/api/insights/movers").json()["date"] == "2023-12-12"


def test_movers_of_chosen_tickers(client: Any) -> None:
    res = client.get(
        "/api/insights/movers", params={"date": "2009-01-28", "tickers": "AAPL,MSFT", "n": 5}
    ).json()
    assert {r["ticker"] for r in res["ranked"]} == {"AAPL", "MSFT"}


def test_period_over_period_kpi(client: Any, bars: Any, actions: Any) -> None:
    res = client.get("/api/insights/period", params={"date": "2022-06-30"}).json()
    direct = period_over_period(bars, "2022-06-30", "day", "close", actions)
    assert res["narrative"] == direct.narrative
    assert res["narrative"].startswith("Total close for Jun 30, 2022 ")
    expected = sum(close_of(bars, t, "2022-06-30") for t in DEFAULT_TICKERS)
    assert res["current"] == pytest.approx(expected)
    month = client.get("/api/insights/period", params={"date": "2022-06-30", "grain": "month"}).json()
    assert month["period_start"] == "2022-06-01" and month["previous_start"] == "2022-05-01"
    ptd = client.get("/api/insights/period-to-date", params={"date": "2022-06-15", "grain": "month"}).json()
    assert ptd["kind"] == "period_to_date"


def test_anomalies_name_their_contributors(client: Any, bars: Any, actions: Any) -> None:
    res = client.get("/api/insights/anomalies").json()
    direct = anomalies(bars, corporate_actions=actions)
    assert [a["date"] for a in res["anomalies"]] == [a.date.isoformat() for a in direct.anomalies]
    assert res["anomalies"], "the simulated market has injected anomalies"
    for a in res["anomalies"]:
        day = fmt_date(dt.date.fromisoformat(a["date"]))
        assert a["narrative"].startswith(f"An anomaly was detected on {day}")
        assert a["view"] in ("market-wide", "single-ticker") and a["market_wide"] == (
            a["view"] == "market-wide"
        )
        assert f"{a['score']:.1f} robust sigmas" in a["narrative"]  # the score shown is the one scored
        assert sum(c["contribution"] for c in a["contributions"]) == pytest.approx(a["deviation"], abs=1e-6)
        named = {c["ticker"] for c in a["contributions"]}
        assert a["top"] and {c["ticker"] for c in a["top"]} <= named


def test_forecast_bands_are_nested(client: Any) -> None:
    res = client.get("/api/insights/forecast", params={"ticker": "NVDA", "horizon": 10}).json()
    assert res["ticker"] == "NVDA" and len(res["points"]) == 10
    for p in res["points"]:
        assert p["lo95"] <= p["lo80"] <= p["point"] <= p["hi80"] <= p["hi95"]
    assert "80% prediction interval" in res["narrative"] and "95% interval" in res["narrative"]


def test_recessions_default_to_the_study_focus_window(client: Any, bars: Any, actions: Any) -> None:
    res = client.get("/api/insights/recessions").json()
    assert res["window"]["name"] == "study-2008-focus"
    assert res["narrative"] == recession(bars, "study-2008-focus", corporate_actions=actions).narrative
    assert [r["rank"] for r in res["tickers"]] == list(range(1, len(res["tickers"]) + 1))
    returns = [r["return_pct"] for r in res["tickers"]]
    assert returns == sorted(returns, reverse=True)


def test_recession_comparison_covers_every_window(client: Any) -> None:
    res = client.get("/api/insights/recessions/compare").json()
    assert len(res["windows"]) == 7
    gfc = next(w for w in res["windows"] if w["name"] == "nber-2008")
    assert gfc["basket"]["max_drawdown_pct"] < 0
    # META was not listed during the Great Recession.
    assert "META" not in gfc["tickers"] and "AAPL" in gfc["tickers"]


def test_summary_ranks_insights(client: Any) -> None:
    res = client.get("/api/insights/summary", params={"window": "study-2008-focus", "n": 4}).json()
    assert [i["rank"] for i in res["insights"]] == [1, 2, 3, 4]
    importance = [i["importance"] for i in res["insights"]]
    assert importance == sorted(importance, reverse=True)


def test_ranked_extremes_growth(client: Any) -> None:
    window = {"window": "study-2022"}
    ranked = client.get("/api/insights/ranked", params={**window, "bottom": True, "n": 2}).json()
    assert ranked["direction"] == "bottom" and len(ranked["rows"]) == 2
    ext = client.get("/api/insights/extremes", params=window).json()
    assert ext["max_value"] >= ext["min_value"]
    growth = client.get("/api/insights/growth", params={**window, "grain": "month"}).json()
    assert growth["narrative"].startswith("The compounded monthly growth rate of total close")


# --------------------------------------------------------------------------- SQL


def test_query_returns_rows_with_types(client: Any, bars: Any) -> None:
    resp = client.post(
        "/api/query",
        json={"sql": "SELECT ticker, count(*) AS n FROM market.daily_bars GROUP BY ticker ORDER BY ticker"},
    )
    assert resp.status_code == 200
    data = resp.json()
    assert data["columns"] == ["ticker", "n"] and data["types"] == ["VARCHAR", "BIGINT"]
    counts = dict(data["rows"])
    assert sum(counts.values()) == bars.num_rows
    assert sorted(counts) == sorted(DEFAULT_TICKERS)


def test_query_row_limit_truncates(client: Any) -> None:
    data = client.post("/api/query", json={"sql": "SELECT * FROM market.daily_bars", "limit": 7}).json()
    assert data["row_count"] == 7 and data["truncated"] is True and len(data["rows"]) == 7
    # The server's own limit (5,000 in these settings) caps what a client asks for.
    capped = client.post("/api/query", json={"sql": "SELECT * FROM market.daily_bars", "limit": 10**9}).json()
    assert capped["limit"] == 5000 and capped["row_count"] == 5000


@pytest.mark.parametrize(
    ("sql", "status", "kind", "words"),
    [
        ("DROP TABLE market.daily_bars", 403, "QueryRefused", "refused"),
        ("INSTALL httpfs", 403, "QueryRefused", "refused"),
        ("COPY market.daily_bars TO '/tmp/out.csv'", 403, "QueryRefused", "refused"),
        ("SELECT * FROM read_csv('/etc/passwd')", 403, "QueryRefused", "cannot read '/etc/passwd'"),
        ("SELEC 1", 400, "QueryError", "syntax error"),
        ("SELECT * FROM market.nothing", 400, "QueryError", "nothing does not exist"),
    ],
)
def test_bad_or_forbidden_sql(client: Any, sql: str, status: int, kind: str, words: str) -> None:
    detail = error_of(client.post("/api/query", json={"sql": sql}), status, kind)
    assert words in detail


def test_query_timeout(client: Any) -> None:
    resp = client.post("/api/query", json={"sql": "SELECT count(*) FROM range(5000000000)", "timeout_s": 0.2})
    assert "time limit" in error_of(resp, 400, "QueryTimeout")


def test_named_query_with_params(client: Any, bars: Any) -> None:
    body = {
        "named": "daily_total_close",
        "params": {"start": "2009-01-27", "end": "2009-01-28", "tickers": ["AAPL", "MSFT"]},
    }
    data = client.post("/api/query", json=body).json()
    assert [r[0] for r in data["rows"]] == ["2009-01-27", "2009-01-28"]
    expected = close_of(bars, "AAPL", "2009-01-28") + close_of(bars, "MSFT", "2009-01-28")
    assert data["rows"][1][1] == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        ({"named": "nothing"}, 404, "UnknownNamedQuery"),
        ({"named": "daily_total_close"}, 400, "NamedQueryError"),
        (
            {"named": "daily_total_close", "params": {"start": "soon", "end": "2009-01-01"}},
            400,
            "NamedQueryError",
        ),
        ({"sql": "SELECT 1", "named": "daily_total_close"}, 400, "BadInput"),
        ({}, 400, "BadInput"),
        ({"sql": "SELECT 1", "drop": True}, 422, "ValidationError"),
        ({"sql": "SELECT 1", "limit": 0}, 422, "ValidationError"),
    ],
)
def test_bad_query_requests(client: Any, body: dict[str, Any], status: int, kind: str) -> None:
    error_of(client.post("/api/query", json=body), status, kind)


def test_query_csv_export(client: Any) -> None:
    resp = client.post(
        "/api/query/csv", json={"sql": "SELECT 'A,B' AS name, 1.5 AS x, NULL AS y UNION ALL SELECT 'C', 2, 3"}
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    assert "attachment" in resp.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(resp.text)))
    assert rows == [["name", "x", "y"], ["A,B", "1.5", ""], ["C", "2", "3"]]
    refused = client.post("/api/query/csv", json={"sql": "DELETE FROM market.daily_bars"})
    error_of(refused, 403, "QueryRefused")


def test_named_queries_listed(client: Any) -> None:
    names = {q["name"] for q in client.get("/api/named").json()}
    assert {"daily_total_close", "close_by_ticker"} <= names


# --------------------------------------------------------------------------- catalog


def test_catalog_lists_curated_and_raw_tables(client: Any, bars: Any) -> None:
    data = client.get("/api/catalog").json()
    tables = {t["name"]: t for t in data["tables"]}
    assert tables["market.daily_bars"]["row_count"] == bars.num_rows
    assert tables["market.daily_bars"]["kind"] == "iceberg"
    raw = tables["raw.daily_bars"]
    assert raw["kind"] == "raw" and raw["format"] == "csv"
    assert "source" in raw["partition_keys"] and "source=sim" in raw["partitions"]
    assert raw["row_count"] == bars.num_rows
    assert data["crawl"]["tables"] and data["crawl"]["files_total"] >= 1


def test_catalog_table_has_snapshots(client: Any, bars: Any) -> None:
    data = client.get("/api/catalog/tables/market.daily_bars").json()
    assert [c["name"] for c in data["table"]["columns"]][:3] == ["ticker", "date", "open"]
    snaps = data["snapshots"]
    assert snaps and snaps[0]["current"] is True
    assert int(snaps[0]["summary"]["total-records"]) == bars.num_rows
    raw = client.get("/api/catalog/tables/raw.daily_bars").json()
    assert raw["snapshots"] == []


def test_crawl_report(client: Any) -> None:
    report = client.get("/api/catalog/crawl").json()
    assert {t["table"] for t in report["tables"]} >= {"daily_bars", "corporate_actions"}


# --------------------------------------------------------------------------- pages and schema


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/", "Measure"),
        ("/insights", "Recession analysis"),
        ("/sql", "daily_total_close"),
        ("/catalog", "Last crawl report"),
        ("/docs", "/api/insights/movers"),
    ],
)
def test_pages_render(client: Any, path: str, words: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    assert words in resp.text
    for ticker in DEFAULT_TICKERS:
        assert ticker in resp.text


def test_unknown_page_is_an_html_404(client: Any) -> None:
    resp = client.get("/nowhere")
    assert resp.status_code == 404 and "Page not found" in resp.text


def test_plotly_is_served_from_the_package(client: Any) -> None:
    resp = client.get("/vendor/plotly.min.js")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/javascript")
    assert len(resp.content) > 1_000_000


def test_pages_load_nothing_from_elsewhere(client: Any) -> None:
    for path in ("/", "/insights", "/sql", "/catalog", "/docs"):
        html = client.get(path).text
        assert 'src="http' not in html and 'href="http' not in html


def test_openapi_schema_documents_every_endpoint(client: Any) -> None:
    schema = client.get("/openapi.json").json()
    paths = set(schema["paths"])
    expected = {
        "/api/bars", "/api/ohlc", "/api/meta", "/api/insights/movers", "/api/insights/period",
        "/api/insights/anomalies", "/api/insights/forecast", "/api/insights/recessions",
        "/api/insights/summary", "/api/query", "/api/query/csv", "/api/catalog", "/api/catalog/tables/{name}",
    }  # fmt: skip
    assert expected <= paths
    assert "/" not in paths  # pages are not API
    assert "MoversResult" in schema["components"]["schemas"]


def test_nan_never_reaches_json(client: Any) -> None:
    # A one-day window: returns, volatility and beta are undefined; JSON has null, not NaN.
    resp = client.get("/api/insights/recessions", params={"start": "2020-03-02", "end": "2020-03-03"})
    assert resp.status_code == 200
    assert "NaN" not in resp.text
    assert not any(
        isinstance(v, float) and math.isnan(v) for v in resp.json()["basket"].values() if isinstance(v, float)
    )
