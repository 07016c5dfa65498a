"""Saved queries and the query history on an s3:// lake (S3Proxy): what a team on a shared
lake sees; a history record never holds up the answer."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tickerlake.lake.runlog import _flush
from tickerlake.service import queries
from tickerlake.services.s3proxy import S3Endpoint

pytestmark = pytest.mark.integration


def test_saved_queries_and_history_on_s3(s3_endpoint: S3Endpoint, tmp_path: Path) -> None:
    alice = s3_endpoint.settings(
        lake=f"s3://{s3_endpoint.bucket}/console-{tmp_path.name}", state_dir=str(tmp_path / "a")
    )
    bob = s3_endpoint.settings(lake=alice.lake, state_dir=str(tmp_path / "b"))
    queries.save_query(alice, "plus_one", "SELECT $n + 1 AS x", "Adds one", [{"name": "n", "type": "int"}])
    # Another user of the same lake (another machine's state folder) sees it and runs it.
    assert [q.name for q in queries.saved_queries(bob)] == ["plus_one"]
    answer = queries.run(bob, queries.QueryRequest(named="plus_one", params={"n": "41"}), user="bob")
    assert answer.result.rows() == [(42,)]
    _flush()  # the record is written in the background on an object store
    runs = queries.history(alice, 5)
    assert [(r.id, r.named, r.user, r.status, r.row_count) for r in runs] == [
        (answer.run_id, "plus_one", "bob", "ok", 1)
    ]
    assert queries.delete_saved(bob, "plus_one").name == "plus_one"
    assert queries.saved_queries(alice) == []


def test_a_history_record_does_not_wait_for_an_unreachable_store(
    s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    from tickerlake.query.history import HistoryEntry, QueryHistory, new_id

    # A store nobody answers on: the write is retried in the background, the caller goes on.
    gone = s3_endpoint.settings(lake="s3://nowhere/lake", state_dir=str(tmp_path))
    gone = gone.model_copy(update={"s3_endpoint": "http://127.0.0.1:9"})
    run_id, started = new_id()
    t0 = time.monotonic()
    assert QueryHistory(gone).record(HistoryEntry(run_id, started, "cli", "me", "SELECT 1", None))
    assert time.monotonic() - t0 < 1.0
