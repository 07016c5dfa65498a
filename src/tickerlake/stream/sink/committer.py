"""The committer: a batch into the stream table in one atomic, fenced commit, then snapshot expiry.

Prepare → fenced commit → expire:

* **prepare** sets the table properties the sink relies on, once per table;
* **commit** re-reads the table and checks, for each partition of the batch, that the
  offset recorded there is still the one the batch started from. If another sink took the
  partition over (a rebalance the old owner has not noticed yet), that part is *fenced*:
  dropped from the batch and handed to ``on_fenced`` (which deletes its raw file and
  re-reads the partition from the table's offset). The rest becomes one data file and one
  append whose snapshot summary carries the merged offsets and watermarks of every
  partition, so rows and position are committed together or not at all. A commit that
  loses the race against a concurrent writer is retried on the fresh table, reusing the
  data file;
* **commit_durably** rides out an object store that is briefly away, asking the table
  whether a batch whose answer was lost already landed before trying again;
* **expire** drops old snapshots now and then (every commit carries the complete offsets,
  so old ones are not needed to resume).

The committer talks to the table through :class:`SinkTable` and :class:`TableVersion`, the
few operations it needs, so that its logic is tested against an in-memory table;
:class:`~tickerlake.stream.sink.iceberg.IcebergSinkTable` is the real one on pyiceberg.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

import pyarrow as pa

from tickerlake import faults
from tickerlake.errors import TransientError
from tickerlake.lake.storage import RETRY_WINDOW_S, is_transient
from tickerlake.retry import retry
from tickerlake.stream.sink.batch import PartitionBatch, batch_rows
from tickerlake.stream.sink.offsets import (
    BATCH_PROP,
    OFFSETS_PROP,
    RAW_FILES_PROP,
    REJECTED_PROP,
    SINK_PROP,
    WATERMARKS_PROP,
    TableState,
    state_from_summaries,
)

__all__ = [
    "COMMIT_ATTEMPTS",
    "TABLE_PROPERTIES",
    "CommitConflict",
    "Committer",
    "SinkTable",
    "TableVersion",
]

#: Table properties the sink keeps on its tables. No retries inside pyiceberg: its retry
#: re-applies a failed commit on top of the concurrent one with the snapshot summary
#: computed before it, which would put stale offsets (and a batch that lost the fencing
#: check) in the table; the committer retries itself, re-checking and re-merging on the
#: fresh table. Manifests are merged as they accumulate and old metadata files deleted, so
#: that frequent small commits do not slow later ones down.
TABLE_PROPERTIES = {
    "commit.retry.num-retries": "0",
    "commit.manifest-merge.enabled": "true",
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "50",
}
#: Commits tried against concurrent writers before giving up.
COMMIT_ATTEMPTS = 30
# Snapshot summaries searched for a batch whose commit answer was lost.
_LOST_ANSWER_DEPTH = 50


class CommitConflict(Exception):
    """Another writer committed first (or holds the catalog's lock): re-read the table and retry."""


class TableVersion(Protocol):
    """One version of the stream table, as loaded; writes are checked against it (optimistic)."""

    @property
    def snapshot_id(self) -> int | None:
        """The current snapshot of this version (None: an empty table)."""
        ...

    @property
    def properties(self) -> Mapping[str, str]:
        """Table properties."""
        ...

    def summaries(self) -> Iterable[Mapping[str, str] | None]:
        """Snapshot summaries from the current snapshot back through its ancestors."""
        ...

    def snapshot_count(self) -> int:
        """Snapshots in the metadata."""
        ...

    def write_data_file(self, rows: pa.Table, owner: str) -> str:
        """Write rows as a data file (not yet committed) named after ``owner``; returns its URI."""
        ...

    def uncommitted_data_files(self, owner: str) -> list[str]:
        """Data files named after ``owner`` that no live snapshot references."""
        ...

    def delete_data_file(self, uri: str) -> None:
        """Delete a data file that no snapshot references."""
        ...

    def append(self, rows: pa.Table, data_file: str | None, summary: Mapping[str, str]) -> None:
        """Commit rows (as ``data_file`` when given) with ``summary`` in the new snapshot.

        Raises:
            CommitConflict: The table changed since this version was loaded.
        """
        ...

    def set_properties(self, properties: Mapping[str, str]) -> None:
        """Set table properties. Raises :class:`CommitConflict` like :meth:`append`."""
        ...

    def expire_snapshots(self, keep: int) -> None:
        """Drop all but the newest ``keep`` snapshots. Raises :class:`CommitConflict` like :meth:`append`."""
        ...


class SinkTable(Protocol):
    """The stream table in its catalog."""

    def load(self) -> TableVersion:
        """The table's current version, read afresh."""
        ...


class Committer:
    """Commits a sink's batches into its table: prepare → fenced commit → expire.

    Args:
        table: The stream table.
        topic: Topic the batches come from.
        table_name: The table's identifier (its schema gives the rows' columns).
        sink_id: The sink's name, recorded in every commit (a batch whose commit answer
            was lost is recognised by it).
        on_fenced: Called with each part found fenced and the table state that fenced it.
        raw_name: A raw file URI as recorded in the summary (relative to the lake).
        keep_snapshots: Snapshots kept when expiring (0: never expire).
        retry_window_s: How long :meth:`commit_durably` rides out an unreachable store.
        sleep: Waits between attempts (tests pass a no-op).

    Attributes:
        owner: The static-membership slot this sink holds, if any; data files are named
            after it, so that the slot's next holder finds what a crash left behind.
        retries: Commits retried so far (lost races and store outages).
    """

    def __init__(
        self,
        table: SinkTable,
        topic: str,
        table_name: str,
        sink_id: str,
        on_fenced: Callable[[PartitionBatch, TableState], None],
        raw_name: Callable[[str], str] = lambda uri: uri,
        keep_snapshots: int = 500,
        retry_window_s: float = RETRY_WINDOW_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table = table
        self.topic = topic
        self.table_name = table_name
        self.sink_id = sink_id
        self.on_fenced = on_fenced
        self.raw_name = raw_name
        self.keep_snapshots = keep_snapshots
        self.retry_window_s = retry_window_s
        self.sleep = sleep
        self.owner: str | None = None
        self.retries = 0
        self._snapshots_seen = 0

    # ---------------------------------------------------------------- reads

    def state(self) -> TableState:
        """The Kafka position recorded in the table now."""
        return _state_of(self.table.load())

    # ---------------------------------------------------------------- prepare

    def prepare(self) -> None:
        """Set the table properties the sink relies on (a no-op once they are set)."""
        for _ in range(COMMIT_ATTEMPTS):
            version = self.table.load()
            missing = {k: v for k, v in TABLE_PROPERTIES.items() if version.properties.get(k) != v}
            if not missing or _won(version.set_properties, missing):
                return
            self.sleep(0.05)

    def remove_orphan_data_files(self) -> int:
        """Delete data files a crashed predecessor in this slot wrote but never committed.

        Only files named after this slot are considered: the slot's lock guarantees that no
        live process writes them, and a file in no live snapshot was never committed (or
        was compacted away by ``maintain`` and expired since: garbage either way).

        Returns:
            How many were deleted.
        """
        if self.owner is None:
            return 0
        version = self.table.load()
        orphans = version.uncommitted_data_files(self.owner)
        for uri in orphans:
            version.delete_data_file(uri)
        return len(orphans)

    # ---------------------------------------------------------------- commit

    def commit(self, parts: Sequence[PartitionBatch]) -> list[PartitionBatch]:
        """One atomic append of the batch with the offsets, fenced per partition.

        Returns:
            The parts committed; the others were fenced (see ``on_fenced``).

        Raises:
            TransientError: Still losing to concurrent writers after ``COMMIT_ATTEMPTS``
                (marked exhausted: it is not retried again).
        """
        live = list(parts)
        ingested_at = dt.datetime.now(dt.UTC)
        data_file: str | None = None
        for attempt in range(COMMIT_ATTEMPTS):
            version = self.table.load()
            if any(version.properties.get(k) != v for k, v in TABLE_PROPERTIES.items()):
                # Someone changed them since start-up (the retry setting is what fencing relies on).
                self.prepare()
                version = self.table.load()
            state = _state_of(version)
            offsets = state.for_topic(self.topic)
            lost = [part for part in live if offsets.get(part.partition) != part.start]
            for part in lost:
                part.fenced = True
                self.on_fenced(part, state)
            if lost:
                live = [part for part in live if not part.fenced]
                data_file = None  # it held the fenced parts' rows too
            if not live:
                return []
            rows = batch_rows(live, self.topic, self.table_name, ingested_at)
            if data_file is None and rows.num_rows:
                data_file = version.write_data_file(rows, self.owner or "any")
                faults.point("sink.data-written")
            summary = self._summary(live, state)
            if _won(version.append, rows, data_file, summary):
                self._snapshots_seen = version.snapshot_count()
                return live
            self.retries += 1
            self.sleep(min(0.02 * (attempt + 1), 0.5))
        # Exhausted: these attempts were the retries, so commit_durably does not multiply them.
        raise TransientError(
            f"could not commit to {self.table_name} after {COMMIT_ATTEMPTS} attempts (too many concurrent writers?)",
            exhausted=True,
        )

    def commit_durably(self, parts: Sequence[PartitionBatch]) -> list[PartitionBatch]:
        """:meth:`commit`, riding out an object store that is briefly down or frozen (bounded).

        A transient error can come after the catalog took the commit (only the answer was
        lost), so before each new attempt the table is asked whether this batch is already
        in it: committing it again would double its rows, and taking it for fenced would
        delete its raw files.

        Raises:
            TransientError: The store stayed away for ``retry_window_s``; nothing
                uncommitted is recorded, and a restarted sink resumes from the table.
        """
        live = list(parts)
        tried = False

        def attempt() -> list[PartitionBatch]:
            nonlocal live, tried
            if tried:
                # The last attempt may have committed, only its answer lost: look first.
                done = self.batch_in_table(live)
                if done is not None:
                    return done
                # Parts fenced during the failed attempt were handed to on_fenced already.
                live = [part for part in live if not part.fenced]
                if not live:
                    return []
            tried = True
            return self.commit(live)

        def count(_error: BaseException, _delay: float) -> None:
            self.retries += 1

        return retry(
            attempt,
            what=f"could not commit to {self.table_name}",
            on=is_transient,
            deadline_s=self.retry_window_s,
            base_delay_s=0.5,
            max_delay_s=5.0,
            gave_up=(
                f"the object store did not answer for {self.retry_window_s:g} s; nothing uncommitted "
                "was recorded, restart to resume"
            ),
            on_retry=count,
            sleep=self.sleep,
        )

    def batch_in_table(self, parts: Sequence[PartitionBatch]) -> list[PartitionBatch] | None:
        """The parts of this batch that a commit of this sink already put in the table, if any."""
        version = self.table.load()
        by_key = {f"{self.topic}/{p.partition}": p for p in parts}
        for n, summary in enumerate(version.summaries()):
            if n >= _LOST_ANSWER_DEPTH or summary is None:
                break
            if summary.get(SINK_PROP) != self.sink_id or BATCH_PROP not in summary:
                continue
            batch = json.loads(summary.get(BATCH_PROP) or "{}")
            hits = [
                by_key[k]
                for k, v in batch.items()
                if k in by_key and v[:2] == [by_key[k].first, by_key[k].last]
            ]
            if hits and len(hits) == len(batch):
                return hits
        return None

    def _summary(self, parts: Sequence[PartitionBatch], state: TableState) -> dict[str, str]:
        """The snapshot summary of a commit: the merged position plus what the batch held."""
        offsets = dict(state.offsets)
        marks = dict(state.watermarks)
        for part in parts:
            key = f"{self.topic}/{part.partition}"
            offsets[key] = part.next_offset
            marks[key] = part.decoded.watermarks
        batch = {
            f"{self.topic}/{p.partition}": [p.first, p.last, len(p.decoded), len(p.decoded.rejected)]
            for p in parts
        }
        return {
            OFFSETS_PROP: json.dumps(offsets, sort_keys=True),
            WATERMARKS_PROP: json.dumps(marks, sort_keys=True),
            BATCH_PROP: json.dumps(batch),
            REJECTED_PROP: str(sum(len(p.decoded.rejected) for p in parts)),
            SINK_PROP: self.sink_id,
            RAW_FILES_PROP: json.dumps([self.raw_name(p.raw_uri) for p in parts if p.raw_uri is not None]),
        }

    # ---------------------------------------------------------------- expire

    def expire_if_due(self) -> None:
        """Drop all but the newest ``keep_snapshots`` snapshots once 10 % more have piled up.

        Without expiry each commit would rewrite an ever longer metadata file. The data
        files stay: the sink only appends, so every one is still in the current snapshot.
        """
        keep = self.keep_snapshots
        if not keep or self._snapshots_seen <= keep * 1.1 + 5:
            return
        version = self.table.load()
        self._snapshots_seen = version.snapshot_count()
        if self._snapshots_seen <= keep:
            return
        # Losing the race to a concurrent sink is fine: the next commit tries again.
        if _won(version.expire_snapshots, keep):
            self._snapshots_seen = keep


def _state_of(version: TableVersion) -> TableState:
    return state_from_summaries(version.summaries(), version.snapshot_id)


def _won(write: Callable[..., None], *args: object) -> bool:
    """Run one optimistic table write; False when a concurrent writer got there first."""
    try:
        write(*args)
    except CommitConflict:
        return False
    return True
