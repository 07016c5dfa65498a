"""The object-store history writer: one thread writes every record in order, and a record
whose write fails in an unexpected way is logged, never the end of the writer."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from tickerlake.lake import runlog


class _Log:
    """A stand-in for a RunLog's write step (the queue and thread are what is under test)."""

    name = "test_history"

    def __init__(self) -> None:
        self.written: list[str] = []

    def _append(self, run_id: str, doc: dict[str, Any]) -> bool:
        if doc.get("fail"):
            raise RuntimeError("an unexpected failure")
        self.written.append(run_id)
        return True


def test_the_writer_keeps_order_and_survives_an_unexpected_failure(caplog: pytest.LogCaptureFixture) -> None:
    log = _Log()
    with caplog.at_level(logging.ERROR, logger=runlog.__name__):
        runlog._enqueue(log, "a", {})  # type: ignore[arg-type]
        runlog._enqueue(log, "b", {"fail": True})  # type: ignore[arg-type]
        runlog._enqueue(log, "c", {})  # type: ignore[arg-type]
        deadline = time.monotonic() + 150  # behind a record retrying a dead store (60 s)
        while runlog._QUEUE.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
    assert log.written == ["a", "c"]
    assert [r.getMessage() for r in caplog.records] == ["test_history: run not recorded"]
