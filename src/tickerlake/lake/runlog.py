"""A bounded log of runs kept in the lake: one small JSON file per run under a ``catalog/`` folder.

Used for the query history and the ``watch`` runs. Every writer (the CLI, each server on a
shared lake) adds its own file through the lake's storage layer, so none waits for a lock
and none loses another's record (no shared file is rewritten); file names start with the
UTC time, so they sort by time. After an append the oldest files beyond ``keep`` are deleted.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import logging
import queue
import threading
import time
import uuid
from typing import Any

from tickerlake.config import Settings
from tickerlake.errors import TickerlakeError
from tickerlake.lake.contract import LakeLayout

__all__ = ["RunLog", "new_run_id"]

log = logging.getLogger(__name__)

# Pruning lists the folder: a process does it on its first append to a log and then on
# every _PRUNE_EVERY-th, so a busy server does not list the folder for every query; the log
# holds at most keep + _PRUNE_EVERY records per writer between prunings.
_PRUNE_EVERY = 20
_APPENDS: dict[str, int] = {}
_APPENDS_LOCK = threading.Lock()
# Records waiting to be written to an object store: one writer thread per process drains
# them in order (a thread per record would pile up during an outage), and the process
# waits for it at exit, a few seconds at most.
_QUEUE: queue.Queue[tuple[RunLog, str, dict[str, Any]]] = queue.Queue()
_WRITER: threading.Thread | None = None
_WRITER_LOCK = threading.Lock()
_EXIT_WAIT_S = 5.0
# A record is best effort: a store that stays away this long costs the record, not a
# minute of retries queued in front of the next ones.
_WRITE_WINDOW_S = 5.0


def _drain() -> None:
    while True:
        runlog, run_id, doc = _QUEUE.get()
        try:
            runlog._append(run_id, doc)
        except Exception:  # this thread writes every later record: one failure must not end it
            log.exception("%s: run not recorded", runlog.name)
        finally:
            _QUEUE.task_done()


def _enqueue(runlog: RunLog, run_id: str, doc: dict[str, Any]) -> None:
    global _WRITER
    with _WRITER_LOCK:
        if _WRITER is None:
            _WRITER = threading.Thread(target=_drain, name="runlog", daemon=True)
            _WRITER.start()
    _QUEUE.put((runlog, run_id, doc))


@atexit.register
def _flush() -> None:
    deadline = time.monotonic() + _EXIT_WAIT_S
    while _QUEUE.unfinished_tasks and time.monotonic() < deadline:
        time.sleep(0.05)


def new_run_id(now: dt.datetime | None = None) -> tuple[str, str]:
    """A run's id (sortable by time, unique) and its start time as ISO text with milliseconds."""
    now = now or dt.datetime.now(dt.UTC)
    stamp = now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond:06d}Z"
    return f"{stamp}-{uuid.uuid4().hex[:8]}", now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RunLog:
    """The runs kept in one ``catalog/<folder>/`` of a lake.

    Args:
        settings: Runtime settings (the lake).
        folder: The folder's name under ``catalog/``.
        keep: How many runs to keep.
    """

    def __init__(self, settings: Settings, folder: str, keep: int) -> None:
        self.settings = settings
        self.layout = LakeLayout.of(settings)
        self.storage = self.layout.storage
        self.name = folder
        self.folder = self.layout.catalog_file(folder)
        self.keep = keep

    def append(self, run_id: str, doc: dict[str, Any]) -> bool:
        """Add one run's record; False if the lake is missing or refused the write (best effort:
        a read-only or full lake still does its work, the log then misses the run).

        On an object store the record is written in the background: the store's retries
        during an outage (up to a minute) must not hold up the answer the run was for. A
        process waits for its pending records at exit, a few seconds at most.
        """
        if self.settings.is_local:
            if not self.storage.exists(self.settings.lake_uri):
                return False  # never create a lake at a mistyped path just to log a run
            return self._append(run_id, doc)
        _enqueue(self, run_id, doc)
        return True

    def _append(self, run_id: str, doc: dict[str, Any]) -> bool:
        try:
            self.storage.write_bytes(
                self.layout.catalog_file(self.name, f"{run_id}.json"),
                json.dumps(doc, default=str).encode(),
                window_s=_WRITE_WINDOW_S,
            )
            with _APPENDS_LOCK:
                n = _APPENDS[self.folder] = _APPENDS.get(self.folder, -1) + 1
            if n % _PRUNE_EVERY == 0 or self.keep < _PRUNE_EVERY:
                files = self.storage.list_files(self.folder)
                for old in files[: max(len(files) - self.keep, 0)]:
                    self.storage.delete(old.uri)
        except (OSError, TickerlakeError) as e:
            log.warning("%s: run not recorded: %s", self.name, e)
            return False
        return True

    def recent(self, limit: int) -> list[dict[str, Any]]:
        """The newest records first, at most ``limit`` (files that are not JSON objects are left out)."""
        out: list[dict[str, Any]] = []
        for entry in reversed(self.storage.list_files(self.folder)):
            if len(out) >= limit:
                break
            try:
                doc = json.loads(self.storage.read_bytes(entry.uri))
            except FileNotFoundError:
                continue  # pruned by another writer meanwhile
            except ValueError:
                continue
            if isinstance(doc, dict):
                out.append(doc)
        return out

    def clear(self) -> int:
        """Delete every record; returns how many there were."""
        files = self.storage.list_files(self.folder)
        for f in files:
            self.storage.delete(f.uri)
        return len(files)
