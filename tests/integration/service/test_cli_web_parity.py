"""The CLI's ``--json`` and the web API answer alike, field by field, for the same parameters.

Both shells call the same operation of :mod:`tickerlake.service`; this is the check that
neither adds, drops or recomputes anything on its way out. Every insight kind is covered,
and the named queries (their list and a run), the windows and the catalog's table detail.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from tickerlake.cli._app import app
from tickerlake.config import Settings
from tickerlake.query.results import unique_names

pytestmark = pytest.mark.integration

# (CLI arguments after `insights`, API path, API query parameters): the same question twice.
INSIGHTS: list[tuple[list[str], str, dict[str, Any]]] = [
    (["movers", "--date", "2020-03-16", "--bottom", "--n", "4"], "movers",
     {"date": "2020-03-16", "bottom": True, "n": 4}),
    (["movers", "--measure", "volume", "--rank-by", "change", "-t", "aapl,MSFT"], "movers",
     {"measure": "volume", "rank_by": "change", "tickers": "aapl,MSFT"}),
    (["period", "--date", "2020-03-16", "--grain", "month", "--measure", "volume"], "period",
     {"date": "2020-03-16", "grain": "month", "measure": "volume"}),
    (["period-to-date", "--date", "2020-03-16", "--grain", "quarter"], "period-to-date",
     {"date": "2020-03-16", "grain": "quarter"}),
    (["growth", "--start", "2019-01-01", "--end", "2020-12-31", "--grain", "year"], "growth",
     {"start": "2019-01-01", "end": "2020-12-31", "grain": "year"}),
    (["growth", "--window", "nber-2008", "-t", "AAPL,NVDA"], "growth",
     {"window": "nber-2008", "tickers": "AAPL,NVDA"}),
    (["ranked", "--start", "2020-02-01", "--end", "2020-04-30", "--bottom"], "ranked",
     {"start": "2020-02-01", "end": "2020-04-30", "bottom": True}),
    (["extremes", "--window", "study-2022"], "extremes", {"window": "study-2022"}),
    (["anomalies", "--window", "nber-2020", "--sensitivity", "0.7", "--top-n", "2"], "anomalies",
     {"window": "nber-2020", "sensitivity": 0.7, "top_n": 2}),
    (["forecast", "--ticker", "msft", "--horizon", "10"], "forecast", {"ticker": "msft", "horizon": 10}),
    (["recessions"], "recessions", {}),
    (["recessions", "--period", "nber-2020", "--measure", "adj_close"], "recessions",
     {"period": "nber-2020", "measure": "adj_close"}),
    (["recessions", "--start", "2020-02-19", "--end", "2020-03-23", "-t", "TSLA,AAPL"], "recessions",
     {"start": "2020-02-19", "end": "2020-03-23", "tickers": "TSLA,AAPL"}),
    (["recessions", "--compare"], "recessions/compare", {}),
    (["recessions", "--compare", "-t", "META,GOOGL"], "recessions/compare", {"tickers": "META,GOOGL"}),
    (["summary", "--start", "2020-01-01", "--end", "2020-06-30", "--n", "4"], "summary",
     {"start": "2020-01-01", "end": "2020-06-30", "n": 4}),
]  # fmt: skip

KINDS = {"movers", "period", "period-to-date", "growth", "ranked", "extremes", "anomalies", "forecast",
         "recessions", "summary"}  # fmt: skip


def cli_json(settings: Settings, *args: str) -> Any:
    """The parsed ``--json`` output of ``tickerlake --lake LAKE ARGS --json``."""
    result = CliRunner().invoke(app, ["--lake", settings.lake_uri, *args, "--json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def differences(cli: Any, api: Any, where: str = "$") -> list[str]:
    """Every path at which two JSON documents differ (empty: identical)."""
    if isinstance(cli, dict) and isinstance(api, dict):
        out = [
            f"{where}.{k}: only in {'the CLI' if k in cli else 'the API'}" for k in cli.keys() ^ api.keys()
        ]
        for k in cli.keys() & api.keys():
            out += differences(cli[k], api[k], f"{where}.{k}")
        return out
    if isinstance(cli, list) and isinstance(api, list):
        if len(cli) != len(api):
            return [f"{where}: {len(cli)} items in the CLI, {len(api)} in the API"]
        return [
            d
            for i, (a, b) in enumerate(zip(cli, api, strict=True))
            for d in differences(a, b, f"{where}[{i}]")
        ]
    return [] if cli == api and type(cli) is type(api) else [f"{where}: CLI {cli!r} != API {api!r}"]


def test_every_insight_kind_is_covered() -> None:
    assert {args[0] for args, _, _ in INSIGHTS} == KINDS


@pytest.mark.parametrize(("args", "path", "params"), INSIGHTS, ids=[" ".join(c[0]) for c in INSIGHTS])
def test_insight_json_is_the_same(
    sim_lake: Settings, client: Any, args: list[str], path: str, params: dict[str, Any]
) -> None:
    resp = client.get(f"/api/insights/{path}", params=params)
    assert resp.status_code == 200, resp.text
    api = resp.json()
    cli = cli_json(sim_lake, "insights", *args)
    assert differences(cli, api) == []
    assert api.get("narrative") or api.get("windows")  # a real answer, not two empty ones


def test_windows_are_the_same(sim_lake: Settings, client: Any) -> None:
    api = client.get("/api/windows").json()
    assert differences(cli_json(sim_lake, "insights", "recessions", "--list"), api) == []
    assert len(api) >= 7


def test_named_query_list_is_the_same(sim_lake: Settings, client: Any) -> None:
    api = client.get("/api/named").json()
    assert differences(cli_json(sim_lake, "query", "--named", "list"), api) == []
    assert {"daily_total_close", "close_by_ticker"} <= {q["name"] for q in api}


@pytest.mark.parametrize(
    ("named", "params"),
    [
        ("daily_total_close", {"start": "2009-01-26", "end": "2009-01-30", "tickers": "AAPL,msft"}),
        ("close_by_ticker", {"tickers": "NVDA", "start": "2020-03-02", "end": "2020-03-13"}),
        ("monthly_returns", {"tickers": "AAPL", "start": "2019-01-01", "end": "2019-12-31"}),
    ],
)
def test_named_query_rows_are_the_same(
    sim_lake: Settings, client: Any, named: str, params: dict[str, str]
) -> None:
    resp = client.post("/api/query", json={"named": named, "params": params})
    assert resp.status_code == 200, resp.text
    api = resp.json()
    # The CLI prints records; the API columns and rows: the same values either way.
    records = [dict(zip(unique_names(api["columns"]), row, strict=True)) for row in api["rows"]]
    flags = [a for k, v in params.items() for a in ("--param", f"{k}={v}")]
    cli = cli_json(sim_lake, "query", "--named", named, *flags)
    assert records and differences(cli, records) == []


def test_named_query_csv_is_the_same(sim_lake: Settings, client: Any) -> None:
    params = {"tickers": "AAPL,MSFT", "start": "2020-03-02", "end": "2020-03-06"}
    api = client.post("/api/query/csv", json={"named": "close_by_ticker", "params": params})
    assert api.status_code == 200
    flags = [a for k, v in params.items() for a in ("--param", f"{k}={v}")]
    cli = CliRunner().invoke(
        app, ["--lake", sim_lake.lake_uri, "query", "--named", "close_by_ticker", *flags, "--format", "csv"]
    )
    assert cli.exit_code == 0 and cli.stdout == api.text
    assert api.text.startswith("ticker,date,close\n")


def test_table_detail_is_the_same(sim_lake: Settings, client: Any) -> None:
    api = client.get("/api/catalog/tables/market.daily_bars").json()
    cli = cli_json(sim_lake, "tables", "market.daily_bars")
    assert differences(cli, api) == []
    assert api["snapshots"]
