"""The query console's API on the simulated lake: saved queries (save, list, run, change,
delete; hostile names and SQL), the query history, cancelling a running query and rows
streamed page by page."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tickerlake.config import Settings
from tickerlake.lake.contract import LakeLayout

pytestmark = pytest.mark.integration

# January 2020 on the NYSE: 23 weekdays less New Year's Day and Martin Luther King Day.
JAN_2020_TRADING_DAYS = 21


@pytest.fixture(scope="module")
def console(sim_lake: Settings) -> Iterator[Any]:
    """A client of its own app without the SQL rate limit; saved queries it made are removed after."""
    from fastapi.testclient import TestClient

    from tickerlake.web.app import create_app

    settings = Settings(lake=sim_lake.lake, query_timeout_s=20.0, query_row_limit=5_000, sql_rate_per_s=0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client
        for q in client.get("/api/saved").json():
            if q["name"].startswith("t_"):
                client.delete(f"/api/saved/{q['name']}")


def _saved_dir(settings: Settings) -> Path:
    return Path(LakeLayout.of(settings).catalog_file("saved_queries").removeprefix("file://"))


def test_save_list_run_change_delete(console: Any, sim_lake: Settings) -> None:
    body = {
        "name": "t_days_in_range",
        "sql": "SELECT count(*) AS days FROM market.daily_bars WHERE ticker = $ticker AND date BETWEEN $start AND $end",
        "description": "Trading days of one ticker in a range",
        "params": [{"name": "start", "type": "date"}, {"name": "end", "type": "date", "doc": "last day"}],
    }
    resp = console.post("/api/saved", json=body)
    assert resp.status_code == 200, resp.text
    saved = resp.json()
    # The undeclared $ticker became a required text parameter after the declared ones.
    assert [(p["name"], p["type"], p["optional"]) for p in saved["params"]] == [
        ("start", "date", False),
        ("end", "date", False),
        ("ticker", "text", False),
    ]
    assert (_saved_dir(sim_lake) / "t_days_in_range.json").is_file()
    assert "t_days_in_range" in [q["name"] for q in console.get("/api/saved").json()]

    params = {"ticker": "AAPL", "start": "2020-01-01", "end": "2020-01-31"}
    run = console.post("/api/query", json={"named": "t_days_in_range", "params": params})
    assert run.status_code == 200, run.text
    assert run.json()["rows"] == [[JAN_2020_TRADING_DAYS]]
    run_id = run.json()["run_id"]

    # A missing parameter is the caller's mistake, named in one line.
    missing = console.post("/api/query", json={"named": "t_days_in_range", "params": {"ticker": "AAPL"}})
    assert missing.status_code == 400 and "missing parameter start, end" in missing.json()["detail"]

    # The run is in the lake's history with its row count.
    entry = next(e for e in console.get("/api/history?limit=100").json() if e["id"] == run_id)
    assert (entry["status"], entry["named"], entry["row_count"], entry["source"]) == (
        "ok",
        "t_days_in_range",
        1,
        "web",
    )
    assert entry["params"] == params and "count(*)" in entry["sql"]

    # Saving again under the name is refused unless it replaces; replacing keeps the creation time.
    again = console.post("/api/saved", json=body)
    assert again.status_code == 400 and "exists" in again.json()["detail"]
    time.sleep(1.1)
    changed = console.post(
        "/api/saved", json={**body, "sql": body["sql"].replace("count(*)", "count(*) * 2"), "replace": True}
    ).json()
    assert changed["created_at"] == saved["created_at"] and changed["updated_at"] > saved["updated_at"]
    run2 = console.post("/api/query", json={"named": "t_days_in_range", "params": params})
    assert run2.json()["rows"] == [[2 * JAN_2020_TRADING_DAYS]]

    assert console.delete("/api/saved/t_days_in_range").status_code == 200
    assert console.get("/api/saved/t_days_in_range").status_code == 404
    gone = console.post("/api/query", json={"named": "t_days_in_range", "params": params})
    assert gone.status_code == 404 and "unknown named query" in gone.json()["detail"]
    assert not (_saved_dir(sim_lake) / "t_days_in_range.json").exists()


@pytest.mark.parametrize(
    "name",
    [
        "../../escape",
        "a/b",
        "..",
        "Upper",
        "1starts_with_digit",
        "x" * 64,
        "",
        "semi;colon",
        "name\x00nul",
        "名前",
        "close_by_ticker",  # a built-in's name
    ],
)
def test_hostile_names_are_refused(console: Any, sim_lake: Settings, name: str) -> None:
    before = sorted(p.name for p in _saved_dir(sim_lake).parent.rglob("*"))
    resp = console.post("/api/saved", json={"name": name, "sql": "SELECT 1"})
    assert resp.status_code in (400, 422), resp.text
    assert resp.json()["detail"].strip()
    # Nothing was written anywhere in the lake's catalog folder.
    assert sorted(p.name for p in _saved_dir(sim_lake).parent.rglob("*")) == before


@pytest.mark.parametrize(
    ("sql", "status"),
    [
        ("DROP TABLE market.daily_bars", 403),
        ("SELECT 1; DELETE FROM market.daily_bars", 403),
        ("COPY (SELECT 1) TO '/tmp/x.csv'", 403),
        ("ATTACH '/tmp/other.db' AS other", 403),
        ("INSTALL httpfs", 403),
        ("SELEC 1", 400),
        ("   ", 400),
    ],
)
def test_hostile_sql_is_not_saved(console: Any, sim_lake: Settings, sql: str, status: int) -> None:
    resp = console.post("/api/saved", json={"name": "t_hostile", "sql": sql})
    assert resp.status_code == status, resp.text
    assert not (_saved_dir(sim_lake) / "t_hostile.json").exists()


def test_a_saved_query_passes_the_guard_on_every_run(console: Any, sim_lake: Settings) -> None:
    # Reading a file outside the lake parses as a SELECT: saved, but every run is refused.
    ok = console.post(
        "/api/saved", json={"name": "t_outside", "sql": "SELECT * FROM read_csv('/etc/passwd')"}
    )
    assert ok.status_code == 200, ok.text
    refused = console.post("/api/query", json={"named": "t_outside"})
    assert refused.status_code == 403 and refused.json()["error"] == "QueryRefused"

    # A saved query edited in the lake by hand into a write is refused when run, and the
    # refusal is in the history.
    path = _saved_dir(sim_lake) / "t_outside.json"
    doc = json.loads(path.read_text())
    doc["sql"] = "DELETE FROM market.daily_bars"
    path.write_text(json.dumps(doc))
    resp = console.post("/api/query", json={"named": "t_outside"})
    assert resp.status_code == 403 and "DELETE" in resp.json()["detail"]
    last = console.get("/api/history?limit=1&status=refused").json()[0]
    assert last["named"] == "t_outside" and last["status"] == "refused" and "DELETE" in last["error"]
    assert (
        console.post("/api/query", json={"sql": "SELECT count(*) FROM market.daily_bars"}).json()["rows"][0][
            0
        ]
        > 0
    )

    # A file that is not a saved query is left out of the listing, never run.
    (_saved_dir(sim_lake) / "t_garbage.json").write_text("{not json")
    assert "t_garbage" not in [q["name"] for q in console.get("/api/saved").json()]
    assert console.post("/api/query", json={"named": "t_garbage"}).status_code == 404
    (_saved_dir(sim_lake) / "t_garbage.json").unlink()


def test_failed_queries_are_in_the_history_with_their_error(console: Any) -> None:
    bad = console.post("/api/query", json={"sql": "SELECT no_such_column FROM market.daily_bars"})
    assert bad.status_code == 400
    entry = console.get("/api/history?limit=1").json()[0]
    assert entry["status"] == "error" and entry["row_count"] is None
    assert "no_such_column" in entry["error"] and entry["sql"].startswith("SELECT no_such_column")
    assert console.get("/api/history?limit=0").status_code == 422
    assert console.get("/api/history?status=weird").status_code == 422


def test_a_running_query_can_be_cancelled(console: Any) -> None:
    # About 10^10 row pairs: runs far longer than the test waits.
    slow = "SELECT count(*) FROM range(100000) a, range(100000) b WHERE a.range * b.range % 7 = 3"
    answer: dict[str, Any] = {}

    def run() -> None:
        answer["resp"] = console.post("/api/query", json={"sql": slow, "cancel_key": "t-cancel-1"})

    thread = threading.Thread(target=run)
    started = time.monotonic()
    thread.start()
    cancelled = False
    while not cancelled and time.monotonic() - started < 10:
        time.sleep(0.2)
        cancelled = console.post("/api/query/cancel", json={"cancel_key": "t-cancel-1"}).json()["cancelled"]
    thread.join(timeout=15)
    assert cancelled
    resp = answer["resp"]
    assert resp.status_code == 400 and resp.json()["detail"] == "query cancelled", resp.text
    assert time.monotonic() - started < 12  # long before the 20 s time limit
    assert console.get("/api/history?limit=1").json()[0]["status"] == "cancelled"
    # Nothing runs under that key any more.
    assert console.post("/api/query/cancel", json={"cancel_key": "t-cancel-1"}).json() == {"cancelled": False}
    assert console.post("/api/query/cancel", json={"cancel_key": "../x"}).status_code == 422


def test_rows_stream_page_by_page(console: Any) -> None:
    body = {"sql": "SELECT range AS i FROM range(1234)", "limit": 5000}
    resp = console.post("/api/query/stream", json=body)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in resp.text.splitlines()]
    assert lines[0]["columns"] == ["i"] and lines[0]["types"] == ["BIGINT"] and lines[0]["limit"] == 5000
    pages = [line["rows"] for line in lines[1:-1]]
    assert [len(p) for p in pages] == [500, 500, 234]
    assert [r[0] for p in pages for r in p] == list(range(1234))  # every row once, in order
    assert lines[-1]["done"] is True and (lines[-1]["row_count"], lines[-1]["truncated"]) == (1234, False)
    entry = console.get("/api/history?limit=1").json()[0]
    assert (entry["id"], entry["status"], entry["row_count"]) == (lines[0]["run_id"], "ok", 1234)

    # Past the row limit: the pages stop at the limit and the last line says so.
    cut = [
        json.loads(x)
        for x in console.post("/api/query/stream", json={**body, "limit": 700}).text.splitlines()
    ]
    assert sum(len(x["rows"]) for x in cut[1:-1]) == 700 and cut[-1]["truncated"] is True
    refused = console.post("/api/query/stream", json={"sql": "DROP TABLE market.daily_bars"})
    assert refused.status_code == 403
