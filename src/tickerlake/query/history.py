"""Query history: every query run on a lake, kept in the lake (bounded), newest first.

One small JSON file per run, ``catalog/query_history/<UTC time>-<random>.json``, written
through the lake's storage layer: the CLI and every server on a shared lake add runs at
the same time without a lock and without losing one (no shared file is rewritten), and
the names sort by time. After each run the oldest files beyond :data:`KEEP` are deleted.

Recording is best effort: a lake that cannot be written (read-only, full) still answers
its queries; the history then misses those runs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from tickerlake.config import Settings
from tickerlake.lake.contract import LakeLayout

__all__ = ["HISTORY_DIR", "KEEP", "HistoryEntry", "QueryHistory", "new_id"]

log = logging.getLogger(__name__)

#: The folder of ``catalog/`` that holds one file per recorded run.
HISTORY_DIR = "query_history"
#: How many runs a lake keeps.
KEEP = 500
# Pruning lists the folder: done only every few runs once the history is full.
_PRUNE_SLACK = 20
_MAX_SQL_KEPT = 20_000


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One query run.

    Attributes:
        id: Unique id of the run (its file name without ``.json``; sorts by time).
        started_at: When it started (UTC, ISO 8601 with milliseconds).
        source: ``cli`` or ``web``.
        user: The web token's name, or the OS user for the CLI (empty if unknown).
        sql: The statement (of a named or saved query: its text).
        named: The named or saved query run, if one was.
        params: The parameters as given.
        status: ``ok``, ``error``, ``refused``, ``timeout`` or ``cancelled``.
        duration_ms: Wall-clock time of the run.
        row_count: Rows returned (None when it failed).
        truncated: Whether the rows were cut at the row limit.
        error: The one-line error of a failed run.
    """

    id: str
    started_at: str
    source: str
    user: str
    sql: str
    named: str | None
    params: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"
    duration_ms: float = 0.0
    row_count: int | None = None
    truncated: bool = False
    error: str | None = None


def new_id(now: dt.datetime | None = None) -> tuple[str, str]:
    """A run's id (sortable by time, unique) and its start time as text."""
    now = now or dt.datetime.now(dt.UTC)
    stamp = now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond:06d}Z"
    return f"{stamp}-{uuid.uuid4().hex[:8]}", now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class QueryHistory:
    """The query history of one lake.

    Args:
        settings: Runtime settings (the lake).
        keep: How many runs to keep.
    """

    def __init__(self, settings: Settings, keep: int = KEEP) -> None:
        self.settings = settings
        self.layout = LakeLayout.of(settings)
        self.storage = self.layout.storage
        self.keep = keep
        self.folder = self.layout.catalog_file(HISTORY_DIR)

    def record(self, entry: HistoryEntry) -> bool:
        """Add a run (and prune the oldest beyond :attr:`keep`); False if the lake refused the write."""
        doc = asdict(entry)
        if len(doc["sql"]) > _MAX_SQL_KEPT:
            doc["sql"] = doc["sql"][:_MAX_SQL_KEPT] + " …"
        if self.settings.is_local and not self.storage.exists(self.settings.lake_uri):
            return False  # never create a lake at a mistyped path just to record a failed query
        try:
            self.storage.write_bytes(self.layout.catalog_file(HISTORY_DIR, f"{entry.id}.json"),
                                     json.dumps(doc, default=str).encode())  # fmt: skip
            self._prune()
        except OSError as e:
            log.warning("query history not recorded: %s", e)
            return False
        return True

    def _prune(self) -> None:
        files = self.storage.list_files(self.folder)
        if len(files) <= self.keep + (_PRUNE_SLACK if self.keep >= 100 else 0):
            return
        for old in files[: len(files) - self.keep]:
            self.storage.delete(old.uri)

    def entries(self, limit: int = 50, status: str | None = None) -> list[HistoryEntry]:
        """The most recent runs, newest first.

        Args:
            limit: At most this many.
            status: Only runs with this status (``ok``, ``error``...).
        """
        out: list[HistoryEntry] = []
        for entry in reversed(self.storage.list_files(self.folder)):
            if len(out) >= limit:
                break
            try:
                doc = json.loads(self.storage.read_bytes(entry.uri))
                item = HistoryEntry(**_known(doc))
            except FileNotFoundError:
                continue  # pruned by another run meanwhile
            except (ValueError, TypeError):
                continue  # not a history file of this version
            if status is None or item.status == status:
                out.append(item)
        return out

    def clear(self) -> int:
        """Delete the whole history; returns how many runs were deleted."""
        files = self.storage.list_files(self.folder)
        for f in files:
            self.storage.delete(f.uri)
        return len(files)


def _known(doc: Mapping[str, Any]) -> dict[str, Any]:
    names = set(HistoryEntry.__dataclass_fields__)
    return {k: v for k, v in doc.items() if k in names}
