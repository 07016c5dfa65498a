"""Query history: every query run on a lake, kept in the lake (bounded), newest first.

One small JSON file per run, ``catalog/query_history/<UTC time>-<random>.json``, kept by
:class:`~tickerlake.lake.runlog.RunLog`: the CLI and every server on a shared lake add runs
at the same time without a lock and without losing one, and the oldest beyond :data:`KEEP`
are deleted.

Recording is best effort: a lake that cannot be written (read-only, full) still answers
its queries; the history then misses those runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tickerlake.config import Settings
from tickerlake.lake.runlog import RunLog, new_run_id

__all__ = ["HISTORY_DIR", "KEEP", "HistoryEntry", "QueryHistory", "new_id"]

#: The folder of ``catalog/`` that holds one file per recorded run.
HISTORY_DIR = "query_history"
#: How many runs a lake keeps.
KEEP = 500
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


def new_id() -> tuple[str, str]:
    """A run's id (sortable by time, unique) and its start time as text."""
    return new_run_id()


class QueryHistory:
    """The query history of one lake.

    Args:
        settings: Runtime settings (the lake).
        keep: How many runs to keep.
    """

    def __init__(self, settings: Settings, keep: int = KEEP) -> None:
        self.log = RunLog(settings, HISTORY_DIR, keep)

    def record(self, entry: HistoryEntry) -> bool:
        """Add a run (and prune the oldest beyond ``keep``); False if the lake refused the write."""
        doc = asdict(entry)
        if len(doc["sql"]) > _MAX_SQL_KEPT:
            doc["sql"] = doc["sql"][:_MAX_SQL_KEPT] + " …"
        return self.log.append(entry.id, doc)

    def entries(self, limit: int = 50, status: str | None = None) -> list[HistoryEntry]:
        """The most recent runs, newest first.

        Args:
            limit: At most this many.
            status: Only runs with this status (``ok``, ``error``...).
        """
        names = set(HistoryEntry.__dataclass_fields__)
        out = []
        for doc in self.log.recent(limit if status is None else self.log.keep + 100):
            try:
                entry = HistoryEntry(**{k: v for k, v in doc.items() if k in names})
            except TypeError:
                continue  # not a history record of this version
            if status is None or entry.status == status:
                out.append(entry)
        return out[:limit]

    def clear(self) -> int:
        """Delete the whole history; returns how many runs were deleted."""
        return self.log.clear()
