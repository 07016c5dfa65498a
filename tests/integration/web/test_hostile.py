"""Regressions found by the ``http-hostile`` reliability scenario (``python -m reliability``).

Each test pins one fix: SQL text with a NUL character, and answers whose size the row
limit alone does not bound.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tickerlake.config import Settings
from tickerlake.query import engine as engine_module
from tickerlake.query.engine import MAX_RESULT_BYTES, QueryTooLarge, get_engine
from tickerlake.query.guard import QueryError, check_sql


@pytest.fixture(scope="module")
def hostile_client(sim_lake: Settings) -> Iterator[Any]:
    """A client of its own app without the SQL rate limit (these tests send SQL quickly)."""
    from fastapi.testclient import TestClient

    from tickerlake.web.app import create_app

    # Unknown keywords are ignored by Settings, so this also works before rate limits exist.
    settings = Settings(
        lake=sim_lake.lake,
        query_timeout_s=sim_lake.query_timeout_s,
        query_row_limit=sim_lake.query_row_limit,
        sql_rate_per_s=0,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def _error(resp: Any, status: int, kind: str) -> str:
    assert resp.status_code == status, resp.text[:300]
    body = resp.json()
    assert body["error"] == kind, body
    assert body["detail"].strip()
    return str(body["detail"])


@pytest.mark.parametrize("sql", ["SELECT 1\x00; DROP TABLE market.daily_bars", "\x00DELETE FROM x"])
def test_sql_with_a_nul_character_is_rejected(hostile_client: Any, sql: str) -> None:
    # DuckDB stops reading at the NUL: the text after it was echoed back but never checked.
    with pytest.raises(QueryError, match="NUL"):
        check_sql(sql)
    detail = _error(hostile_client.post("/api/query", json={"sql": sql}), 400, "QueryError")
    assert "NUL" in detail


@pytest.mark.parametrize(
    "sql",
    [
        # One row, bigger than the cap: the row limit never applies.
        f"SELECT repeat('x', {MAX_RESULT_BYTES + 1_000_000}) AS s",
        # Rows under the row limit (5000), together far bigger than the cap.
        "SELECT repeat('y', 100000) AS s FROM range(4000)",
    ],
)
def test_answers_larger_than_the_cap_are_refused(hostile_client: Any, sql: str) -> None:
    for path in ("/api/query", "/api/query/csv"):
        detail = _error(hostile_client.post(path, json={"sql": sql}), 400, "QueryTooLarge")
        assert "larger than" in detail
    assert hostile_client.get("/api/health").status_code == 200


def test_rows_past_the_row_limit_do_not_count_toward_the_cap(
    sim_lake: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = get_engine(sim_lake)
    # 3 rows of 1 kB fit a 10 kB cap; the 2048-row batch DuckDB hands over would not.
    monkeypatch.setattr(engine_module, "MAX_RESULT_BYTES", 10_000)
    result = engine.query("SELECT repeat('z', 1000) AS s FROM range(100000)", limit=3)
    assert result.row_count == 3 and result.truncated
    with pytest.raises(QueryTooLarge):
        engine.query("SELECT repeat('z', 1000) AS s FROM range(100000)", limit=50)


def test_a_whole_table_under_the_row_limit_still_answers(hostile_client: Any) -> None:
    resp = hostile_client.post("/api/query", json={"sql": "SELECT * FROM market.daily_bars"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["row_count"] == 5000 and body["truncated"]
