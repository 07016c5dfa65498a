"""``stream sink``: a consumer-group member that writes a topic into the lake exactly once.

Per micro-batch (``max_records`` records or ``max_interval`` seconds, whichever first):

1. every record is decoded and validated (:mod:`tickerlake.stream.schema`); rejected ones
   go to the dead-letter topic ``<topic>.dlq`` with the reason and their source
   topic/partition/offset (headers and body), and the producer is flushed, so a batch is
   never committed before its dead letters are durable;
2. the accepted records of each partition are written to the raw zone as one JSON-lines
   file, ``raw/<dataset>/topic=<topic>/partition=<p>/<topic>-<p>-<first>-<last>.jsonl``
   (offsets zero-padded to 20 digits), each line the record's JSON object with its
   ``kafka_offset`` added in front;
3. one atomic Iceberg commit appends the rows to ``stream.ticks`` (or ``stream.bars``);
   its snapshot summary carries ``tickerlake.kafka.offsets`` = ``{"topic/partition":
   next offset}`` for every partition ever committed, the per-partition watermarks of
   the out-of-order check, and what the batch held.

Exactly once: the offsets live in the same atomic commit as the rows, and on start and on
every partition assignment the sink seeks to the offsets recorded in the table (not to the
group's committed offsets, which are only written afterwards, for monitoring). A crash at
any point therefore either lost the whole batch (it is read again) or committed it (it is
skipped). Raw files of uncommitted batches are deleted when a partition is assigned
(any file starting at or after the committed offset), so the raw zone ends up holding
every accepted record once too.

Fencing: each commit checks, on the freshly loaded table, that the offset recorded for
each of its partitions is still the one this sink started the batch from. If another sink
took the partition over (a rebalance the old owner has not noticed yet), that partition's
records are dropped from the batch and re-read from the table's offset. A commit that
loses the race against a concurrent sink (``CommitFailedException``) is retried on the
refreshed table; the data file is written once and reused.

Dead letters are at least once: a crash between publishing them and the table commit
publishes them again on restart, with the same key (``topic/partition/offset``), so a
compacted DLQ or any reader can deduplicate. The count of rejected records per batch is
in the snapshot summary, so accepted + rejected always reconciles with the offsets.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import posixpath
import re
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from tickerlake import faults
from tickerlake.config import Settings
from tickerlake.errors import TickerlakeError, TransientError
from tickerlake.lake.schemas import TABLES, arrow_schema
from tickerlake.lake.storage import RETRY_WINDOW_S, LakeStorage, is_transient, retry_transient
from tickerlake.stream import _kafka
from tickerlake.stream.schema import Decoded, Rules, decode_bars, decode_ticks

__all__ = [
    "BATCH_PROP",
    "MODES",
    "OFFSETS_PROP",
    "WATERMARKS_PROP",
    "SinkOptions",
    "SinkReport",
    "StreamSink",
    "TableState",
    "claim_slot",
    "known_tickers_from_lake",
    "raw_file_name",
    "run_sink",
    "table_state",
]

OFFSETS_PROP = "tickerlake.kafka.offsets"
WATERMARKS_PROP = "tickerlake.stream.watermarks"
BATCH_PROP = "tickerlake.stream.batch"
REJECTED_PROP = "tickerlake.stream.rejected"
SINK_PROP = "tickerlake.stream.sink"
RAW_FILES_PROP = "tickerlake.stream.raw-files"


@dataclass(frozen=True)
class _Mode:
    table: str
    dataset: str
    decode: Callable[..., Decoded]


#: What each mode writes: Iceberg table, raw dataset, decoder.
MODES: dict[str, _Mode] = {
    "ticks": _Mode("stream.ticks", "stream_ticks", decode_ticks),
    "bars": _Mode("stream.bars", "stream_bars", decode_bars),
}

# Table properties the sink keeps on its tables. No retries inside pyiceberg: its retry
# re-applies a failed commit on top of the concurrent one with the snapshot summary computed
# before it, which would put stale offsets (and a batch that lost the fencing check) in the
# table; the sink retries itself, re-checking and re-merging on the fresh table. Manifests are
# merged as they accumulate and old metadata files deleted, so that frequent small commits do
# not slow later ones down.
_TABLE_PROPERTIES = {
    "commit.retry.num-retries": "0",
    "commit.manifest-merge.enabled": "true",
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "50",
}
_COMMIT_ATTEMPTS = 30
_RAW_NAME = re.compile(r"^(?P<topic>.+)-(?P<p>\d+)-(?P<first>\d{20})-(?P<last>\d{20})\.jsonl$")


@dataclass
class SinkOptions:
    """How a sink runs.

    Attributes:
        topic: Topic to read.
        mode: ``ticks`` or ``bars``.
        group: Consumer group id.
        bootstrap: Kafka address (None: settings or the dev broker).
        max_records: Records per micro-batch at most.
        max_interval_s: Seconds a micro-batch may stay open.
        dlq_topic: Dead-letter topic (None: ``<topic>.dlq``).
        once: Drain the topic and exit: every partition read up to the end offsets seen at
            start (by this sink or by others of its group), or give up after ``once_timeout_s``
            with ``complete`` False and the lag per partition in the report.
        once_timeout_s: With ``once``: seconds to wait for partitions (held by crashed members
            until their session expires) and to drain them, before giving up.
        known_tickers: Reference tickers; None reads them from ``market.daily_bars`` (any
            ticker-shaped symbol when that table is empty); an empty set accepts any symbol.
        max_lateness_s: Out-of-order tolerance for ticks.
        instance_id: Static group membership id (a restarted sink gets its partitions back at
            once). None: a per-host slot id (``<host>-<n>``, ``n`` the lowest slot no live sink
            of this group and topic on this host holds), so a sink restarted after a crash
            takes its predecessor's place instead of waiting for its session to expire.
            Empty string: dynamic membership.
        session_timeout_ms: Group session timeout.
        keep_snapshots: Snapshots kept when expiring old ones (0: never expire).
        sink_id: Name recorded in snapshot summaries (default host-pid).
    """

    topic: str
    mode: str = "ticks"
    group: str = "tickerlake-sink"
    bootstrap: str | None = None
    max_records: int = 100_000
    max_interval_s: float = 1.0
    dlq_topic: str | None = None
    once: bool = False
    once_timeout_s: float = 300.0
    known_tickers: frozenset[str] | None = None
    max_lateness_s: float = 1.0
    instance_id: str | None = None
    session_timeout_ms: int = 10_000
    keep_snapshots: int = 500
    sink_id: str | None = None


@dataclass
class SinkReport:
    """What a sink run did.

    Attributes:
        topic: Topic read.
        table: Iceberg table written.
        group: Consumer group.
        sink_id: This sink's name in snapshot summaries.
        partitions: Partitions this sink committed records of.
        batches: Micro-batches committed.
        records: Records read and committed (accepted + rejected).
        accepted: Rows appended to the table.
        rejected: Records sent to the dead-letter topic.
        raw_files: Raw JSON-lines files written.
        commit_retries: Commits retried after a concurrent commit.
        fenced: Records dropped because another sink had taken their partition.
        duplicates_skipped: Records below the table's offset (already committed).
        offset_gaps: Offsets between the table's position and the next record Kafka returned
            (records deleted by retention before the sink read them).
        orphans_removed: Raw files of uncommitted batches deleted on assignment, and data
            files a crashed predecessor in this sink's slot wrote but never committed.
        rejections: Rejections per reason code.
        offsets: Table offsets of the topic at exit (partition -> next offset).
        elapsed_s: Run time.
        events_per_s: Committed records per second of run time.
        first_commit_at: Wall-clock time (epoch s) of the first commit.
        last_commit_at: Wall-clock time (epoch s) of the last commit.
        stopped_by: ``once``, ``timeout`` (``once`` gave up), ``signal`` or ``stop``.
        instance_id: The static membership id used (None: dynamic membership).
        targets: With ``once``: end offset per partition seen at start.
        lag: With ``once``: records of each partition below its target still missing from the table at exit.
        complete: With ``once``: whether every partition reached its target.
    """

    topic: str
    table: str
    group: str
    sink_id: str
    partitions: list[int] = field(default_factory=list)
    batches: int = 0
    records: int = 0
    accepted: int = 0
    rejected: int = 0
    raw_files: int = 0
    commit_retries: int = 0
    fenced: int = 0
    duplicates_skipped: int = 0
    offset_gaps: int = 0
    orphans_removed: int = 0
    rejections: dict[str, int] = field(default_factory=dict)
    offsets: dict[int, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    events_per_s: float = 0.0
    first_commit_at: float | None = None
    last_commit_at: float | None = None
    stopped_by: str = "stop"
    instance_id: str | None = None
    targets: dict[int, int] = field(default_factory=dict)
    lag: dict[int, int] = field(default_factory=dict)
    complete: bool | None = None


@dataclass(frozen=True)
class TableState:
    """The Kafka position recorded in a stream table.

    Attributes:
        offsets: ``"topic/partition"`` -> next offset, every partition ever committed.
        watermarks: ``"topic/partition"`` -> {ticker: watermark} of the order check.
        snapshot_id: The snapshot read (None for an empty table).
    """

    offsets: dict[str, int]
    watermarks: dict[str, dict[str, int]]
    snapshot_id: int | None

    def for_topic(self, topic: str) -> dict[int, int]:
        """Next offset per partition of one topic."""
        prefix = topic + "/"
        return {int(k[len(prefix) :]): v for k, v in self.offsets.items() if k.startswith(prefix)}


def table_state(table: Any) -> TableState:
    """Read the committed offsets and watermarks from a table's snapshot summaries.

    Walks back from the current snapshot: every sink commit carries the complete merged
    map, so the newest snapshot that has one suffices; snapshots without it (written by
    other tools) are skipped. Per partition the newest value wins.
    """
    from pyiceberg.table.snapshots import ancestors_of

    metadata = table.metadata
    current = table.current_snapshot()
    offsets: dict[str, int] = {}
    marks: dict[str, dict[str, int]] = {}
    for snap in ancestors_of(current, metadata):
        summary = snap.summary
        text = summary.get(OFFSETS_PROP) if summary is not None else None
        if text is None:
            continue
        for key, value in json.loads(text).items():
            offsets.setdefault(key, int(value))
        for key, value in json.loads(summary.get(WATERMARKS_PROP) or "{}").items():
            marks.setdefault(key, {str(t): int(v) for t, v in value.items()})
        break
    return TableState(offsets, marks, current.snapshot_id if current is not None else None)


def claim_slot(settings: Settings, group: str) -> tuple[str, int]:
    """The lowest free static-membership slot of ``group`` on this host.

    A slot is an exclusive ``flock`` on a file in the local state folder; the kernel
    releases it when the process dies, however it dies, so a sink restarted after a crash
    gets its predecessor's id (and partitions) while two live sinks never share one.

    Returns:
        The instance id and the open file descriptor holding the lock (close it to release).
    """
    import fcntl
    import hashlib

    folder = settings.local_state_dir / "sink-slots"
    folder.mkdir(parents=True, exist_ok=True)
    tag = hashlib.sha256(group.encode()).hexdigest()[:12]
    host = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname())
    for n in range(1024):
        fd = os.open(folder / f"{tag}-{n}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return f"tickerlake-{host}-{n}", fd
    raise TickerlakeError(f"more than 1024 sinks of group {group!r} on this host")


def raw_file_name(topic: str, partition: int, first: int, last: int) -> str:
    """The deterministic raw file name of a batch of one partition."""
    return f"{topic}-{partition}-{first:020d}-{last:020d}.jsonl"


def known_tickers_from_lake(settings: Settings) -> frozenset[str] | None:
    """Tickers in ``market.daily_bars`` (None when the table is missing or empty)."""
    from tickerlake.lake.tables import read_table

    tickers = read_table(settings, "market.daily_bars", columns=["ticker"]).column("ticker")
    names = frozenset(str(t) for t in tickers.unique().to_pylist() if t)
    return names or None


@dataclass
class _Part:
    """One partition's share of a batch."""

    partition: int
    messages: list[Any]
    offsets: np.ndarray
    values: list[bytes | None]
    decoded: Decoded
    first: int
    last: int
    raw_uri: str | None = None

    @property
    def next_offset(self) -> int:
        return self.last + 1


class StreamSink:
    """The sink loop. Use :func:`run_sink` unless you need to stop it from another thread.

    Args:
        settings: Runtime settings (lake, catalog, Kafka security).
        options: What to read and how.
        stop: Set it to stop (the current batch is flushed first).
        on_commit: Called after each commit with the report so far (with ``once`` also while
            waiting, with ``report.lag`` updated).
    """

    def __init__(
        self,
        settings: Settings,
        options: SinkOptions,
        stop: threading.Event | None = None,
        on_commit: Callable[[SinkReport], None] | None = None,
    ) -> None:
        if options.mode not in MODES:
            raise TickerlakeError(f"mode must be one of {', '.join(MODES)}, got {options.mode!r}")
        if options.max_records < 1:
            raise TickerlakeError(f"max records must be at least 1, got {options.max_records}")
        if options.max_interval_s <= 0:
            raise TickerlakeError(f"max interval must be positive, got {options.max_interval_s}")
        self.settings = settings
        self.options = options
        self.mode = MODES[options.mode]
        self.stop = stop or threading.Event()
        self.on_commit = on_commit
        self.storage = LakeStorage(settings)
        self.topic = options.topic
        self.dlq_topic = options.dlq_topic or f"{options.topic}.dlq"
        self.sink_id = options.sink_id or options.instance_id or f"{socket.gethostname()}-{os.getpid()}"
        self._instance_id = options.instance_id or None
        self._slot_fd: int | None = None
        self._targets: dict[int, tuple[int, int]] = {}
        self._next_check = 0.0
        self.report = SinkReport(
            topic=self.topic, table=self.mode.table, group=options.group, sink_id=self.sink_id
        )
        known = options.known_tickers
        if known is None:
            known = known_tickers_from_lake(settings)
        elif not known:
            known = None
        lateness = int(options.max_lateness_s * 1_000_000)
        self.rules = Rules(known_tickers=known, max_lateness_us=lateness)
        # Partition state, for assigned partitions only.
        self.expected: dict[int, int | None] = {}
        self.marks: dict[int, dict[str, int]] = {}
        self.eof: dict[int, bool] = {}
        self.pending: dict[int, list[Any]] = {}
        self.pending_count = 0
        self.batch_started: float | None = None
        self.last_activity = time.monotonic()
        self._callback_error: BaseException | None = None
        self._written: set[int] = set()
        self._consumer: Any = None
        self._producer: Any = None
        self._catalog: Any = None
        self._bootstrap = ""
        self._snapshots_seen = 0

    # ---------------------------------------------------------------- set-up

    def _catalog_table(self) -> Any:
        from tickerlake.lake.catalog import ensure_table, open_catalog

        if self._catalog is None:
            self._catalog = open_catalog(self.settings)
            ensure_table(self._catalog, self.mode.table)
        # A read: safe to retry while the object store holding the metadata is briefly away.
        return retry_transient(
            lambda: self._catalog.load_table(self.mode.table), f"loading {self.mode.table}"
        )

    def _prepare_table(self) -> None:
        """Set the table properties the sink relies on (once per table)."""
        import sqlalchemy.exc
        from pyiceberg.exceptions import CommitFailedException

        for _ in range(_COMMIT_ATTEMPTS):
            table = self._catalog_table()
            missing = {k: v for k, v in _TABLE_PROPERTIES.items() if table.properties.get(k) != v}
            if not missing:
                return
            try:
                with table.transaction() as tx:
                    tx.set_properties(**missing)
                return
            except (CommitFailedException, sqlalchemy.exc.OperationalError):
                time.sleep(0.05)

    def _consumer_config(self) -> dict[str, Any]:
        conf = _kafka.base_config(self.settings, self._bootstrap)
        conf.update(
            {
                "group.id": self.options.group,
                "client.id": f"tickerlake-sink-{self.sink_id}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": True,
                "partition.assignment.strategy": "cooperative-sticky",
                "session.timeout.ms": self.options.session_timeout_ms,
                # Frequent heartbeats: members learn of a rebalance (a sink joining or leaving) sooner.
                "heartbeat.interval.ms": max(300, min(1000, self.options.session_timeout_ms // 4)),
                "max.poll.interval.ms": 600_000,
                "fetch.wait.max.ms": 100,
                "fetch.max.bytes": 64 * 1024 * 1024,
                "max.partition.fetch.bytes": 8 * 1024 * 1024,
                "queued.min.messages": 200_000,
            }
        )
        if self._instance_id:
            conf["group.instance.id"] = self._instance_id
        return conf

    def _producer_config(self) -> dict[str, Any]:
        conf = _kafka.base_config(self.settings, self._bootstrap)
        conf.update(
            {
                "enable.idempotence": True,
                "acks": "all",
                "compression.type": "lz4",
                "linger.ms": 5,
                "client.id": f"tickerlake-sink-dlq-{self.sink_id}",
            }
        )
        return conf

    # ---------------------------------------------------------------- rebalance callbacks

    def _guard(self, fn: Callable[..., None]) -> Callable[..., None]:
        """Rebalance callbacks run inside consume(): keep their exceptions for the loop to raise."""

        def wrapped(consumer: Any, partitions: list[Any]) -> None:
            try:
                fn(consumer, partitions)
            except BaseException as e:
                self._callback_error = e
                # Without a seek to the table's offsets the partitions must not be read.
                with contextlib.suppress(Exception):
                    consumer.incremental_unassign(partitions)

        return wrapped

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        from confluent_kafka import OFFSET_BEGINNING

        state = table_state(self._catalog_table())
        offsets = state.for_topic(self.topic)
        for tp in partitions:
            p = tp.partition
            nxt = offsets.get(p)
            self.expected[p] = nxt
            self.marks[p] = dict(state.watermarks.get(f"{self.topic}/{p}", {}))
            self.eof[p] = False
            self._drop_pending(p)
            tp.offset = nxt if nxt is not None else OFFSET_BEGINNING
            self._remove_orphans(consumer, p, nxt)
        consumer.incremental_assign(partitions)
        self.last_activity = time.monotonic()

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        # Still the owner until this returns: commit what was read, then let go.
        self._flush()
        self._forget([tp.partition for tp in partitions])
        consumer.incremental_unassign(partitions)

    def _on_lost(self, consumer: Any, partitions: list[Any]) -> None:
        # Someone else may own these already: committing them could double records.
        self._forget([tp.partition for tp in partitions])
        consumer.incremental_unassign(partitions)

    def _drop_pending(self, p: int) -> None:
        dropped = self.pending.pop(p, None)
        if dropped:
            self.pending_count -= len(dropped)

    def _forget(self, partitions: list[int]) -> None:
        for p in partitions:
            self._drop_pending(p)
            self.expected.pop(p, None)
            self.marks.pop(p, None)
            self.eof.pop(p, None)
        self.last_activity = time.monotonic()

    def _partition_dir(self, p: int) -> str:
        return self.storage.uri("raw", self.mode.dataset, f"topic={self.topic}", f"partition={p}")

    def _remove_orphans(self, consumer: Any, p: int, nxt: int | None) -> None:
        """Delete raw files of batches that never reached the table."""
        from confluent_kafka import TopicPartition

        files = self.storage.list_files(self._partition_dir(p))
        if not files:
            return
        if nxt is None:
            # Nothing committed: what Kafka still holds will be written again.
            nxt, _ = consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10, cached=False)
        for entry in files:
            m = _RAW_NAME.match(posixpath.basename(entry.uri))
            if m and m.group("topic") == self.topic and int(m.group("first")) >= nxt:
                self.storage.delete(entry.uri)
                self.report.orphans_removed += 1

    # ---------------------------------------------------------------- batches

    def _decode(self, p: int, messages: list[Any]) -> _Part | None:
        exp = self.expected.get(p)
        if exp is not None and messages and messages[0].offset() < exp:
            before = len(messages)
            messages = [m for m in messages if m.offset() >= exp]
            self.report.duplicates_skipped += before - len(messages)
        if not messages:
            return None
        offsets = np.fromiter((m.offset() for m in messages), dtype=np.int64, count=len(messages))
        # Offsets Kafka no longer holds (retention ran before they were sunk) or never had.
        self.report.offset_gaps += int(offsets[-1] - offsets[0] + 1 - len(offsets))
        if exp is not None:
            self.report.offset_gaps += max(int(offsets[0]) - exp, 0)
        values = [m.value() for m in messages]
        decoded = self.mode.decode(values, self.rules, self.marks.get(p, {}))
        return _Part(p, messages, offsets, values, decoded, int(offsets[0]), int(offsets[-1]))

    def _dead_letters(self, parts: list[_Part]) -> None:
        rejected = [(part, pos, reason) for part in parts for pos, reason in part.decoded.rejected]
        if not rejected:
            return
        from confluent_kafka import Producer

        if self._producer is None:
            self._producer = Producer(self._producer_config())
        failures: list[str] = []

        def on_delivery(err: Any, _msg: Any) -> None:
            if err is not None:
                failures.append(str(err))

        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        for part, pos, reason in rejected:
            m = part.messages[pos]
            value = part.values[pos]
            key = m.key()
            try:
                text, encoding = (value.decode("utf-8"), "utf-8") if value is not None else (None, "none")
            except UnicodeDecodeError:
                text, encoding = base64.b64encode(value).decode(), "base64"
            ts_type, ts_ms = m.timestamp()
            body = {
                "reason": reason,
                "source_topic": self.topic,
                "source_partition": part.partition,
                "source_offset": m.offset(),
                "source_timestamp_ms": ts_ms if ts_type else None,
                "key": key.decode("utf-8", "replace") if key is not None else None,
                "value": text,
                "value_encoding": encoding,
                "sink": self.sink_id,
                "rejected_at": now,
            }
            headers = [
                ("tickerlake.reason", reason.encode()),
                ("tickerlake.source.topic", self.topic.encode()),
                ("tickerlake.source.partition", str(part.partition).encode()),
                ("tickerlake.source.offset", str(m.offset()).encode()),
            ]
            dlq_key = f"{self.topic}/{part.partition}/{m.offset()}".encode()
            while True:
                try:
                    self._producer.produce(
                        self.dlq_topic,
                        json.dumps(body).encode(),
                        dlq_key,
                        headers=headers,
                        on_delivery=on_delivery,
                    )
                    break
                except BufferError:
                    self._producer.poll(0.1)
        left = self._producer.flush(60)
        if left or failures:
            why = failures[0] if failures else f"{left} not acknowledged"
            raise TickerlakeError(
                f"dead-letter topic {self.dlq_topic!r} did not take {len(failures) + left} record(s) ({why}); "
                "nothing was committed, restart to retry"
            )

    @staticmethod
    def _raw_lines(part: _Part) -> bytes:
        """Accepted values as JSON lines, each with its offset spliced in as the first member."""
        accepted = part.decoded.accepted
        if len(accepted) == len(part.values):
            offsets, values = part.offsets, part.values
        else:
            offsets, values = part.offsets[accepted], [part.values[i] for i in accepted.tolist()]
        # One string join makes every line's prefix; a decoded event is a JSON object, so
        # after optional whitespace its first byte is "{", which the prefix replaces.
        prefixes = (
            '{"kafka_offset":' + ',\n{"kafka_offset":'.join(map(str, offsets.tolist())) + ","
        ).encode()
        lines = [
            p + (v[1:] if v[:1] == b"{" else v.strip()[1:])  # type: ignore[index]
            for p, v in zip(prefixes.split(b"\n"), values, strict=True)
        ]
        lines.append(b"")
        return b"\n".join(lines)

    def _write_raw(self, part: _Part) -> None:
        if not len(part.decoded):
            return
        name = raw_file_name(self.topic, part.partition, part.first, part.last)
        uri = posixpath.join(self._partition_dir(part.partition), name)
        self.storage.write_bytes(uri, self._raw_lines(part))
        part.raw_uri = uri

    def _rows(self, parts: list[_Part], ingested_at: dt.datetime) -> pa.Table:
        schema = arrow_schema(TABLES[self.mode.table])
        stamp = int(ingested_at.timestamp() * 1_000_000)
        tables = []
        for part in parts:
            d = part.decoded
            n = len(d)
            if not n:
                continue
            offsets = part.offsets if n == len(part.offsets) else part.offsets[d.accepted]
            cols = dict(d.columns)
            cols["kafka_topic"] = pa.array([self.topic], pa.string()).take(
                pa.array(np.zeros(n, dtype=np.int64))
            )
            cols["kafka_partition"] = pa.array(np.full(n, part.partition, dtype=np.int32))
            cols["kafka_offset"] = pa.array(offsets, pa.int64())
            cols["ingested_at"] = pa.array(np.full(n, stamp, dtype=np.int64)).cast(
                pa.timestamp("us", tz="UTC")
            )
            tables.append(pa.table([cols[f.name].cast(f.type) for f in schema], schema=schema))
        return pa.concat_tables(tables) if tables else schema.empty_table()

    def _data_prefix(self, table: Any) -> str:
        """Data files carry the slot that wrote them, so the slot's next holder can find its orphans."""
        owner = self._instance_id if self._slot_fd is not None else "any"
        return f"{table.location().rstrip('/')}/data/stream-{owner}-"

    def _remove_orphan_data_files(self) -> None:
        """Delete data files a crashed predecessor in this slot wrote but never committed.

        Only files named after this slot are considered: the slot's lock guarantees that no
        live process writes them, and a file not in the current snapshot was never committed
        (the sink only appends, so a committed file stays in every later snapshot).
        """
        table = self._catalog_table()
        prefix = self._data_prefix(table)
        folder = posixpath.dirname(prefix)
        if self._slot_fd is None or not self.storage.exists(folder):
            return
        candidates = [e.uri for e in self.storage.list_files(folder) if e.uri.startswith(prefix)]
        if not candidates:
            return
        referenced = set()
        if table.current_snapshot() is not None:
            referenced = {t.file.file_path for t in table.scan().plan_files()}
        for uri in candidates:
            if uri not in referenced:
                self.storage.delete(uri)
                self.report.orphans_removed += 1

    def _write_data_file(self, table: Any, rows: pa.Table) -> str:
        import pyarrow.parquet as pq

        uri = f"{self._data_prefix(table)}{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex}.parquet"
        path = self.storage.path(uri)
        self.storage.fs.create_dir(posixpath.dirname(path), recursive=True)
        pq.write_table(rows, path, filesystem=self.storage.fs, compression="zstd", row_group_size=1_000_000)
        return uri

    def _flush(self) -> None:
        """Commit the pending batch: dead letters, raw files, one Iceberg commit, group offsets."""
        if not self.pending_count:
            self.pending, self.pending_count, self.batch_started = {}, 0, None
            return
        batch, self.pending, self.pending_count, self.batch_started = self.pending, {}, 0, None
        parts = [part for p in sorted(batch) if (part := self._decode(p, batch[p])) is not None]
        if not parts:
            return
        self._dead_letters(parts)
        faults.point("sink.dead-letters-sent")
        for part in parts:
            self._write_raw(part)
        faults.point("sink.raw-written")
        committed = self._commit_durably(parts)
        if not committed:
            return
        faults.point("sink.committed")
        self.report.batches += 1
        for part in committed:
            self.expected[part.partition] = part.next_offset
            self.marks[part.partition] = part.decoded.watermarks
            self._written.add(part.partition)
            self.report.records += len(part.messages)
            self.report.accepted += len(part.decoded)
            self.report.rejected += len(part.decoded.rejected)
            self.report.raw_files += part.raw_uri is not None
            for _, reason in part.decoded.rejected:
                code = reason.split(":", 1)[0]
                self.report.rejections[code] = self.report.rejections.get(code, 0) + 1
        now = time.time()
        self.report.first_commit_at = self.report.first_commit_at or now
        self.report.last_commit_at = now
        from confluent_kafka import TopicPartition

        with contextlib.suppress(Exception):
            # Monitoring only (lag in the group tools); the table is the source of truth.
            self._consumer.commit(
                offsets=[TopicPartition(self.topic, p.partition, p.next_offset) for p in committed],
                asynchronous=True,
            )
        if self.on_commit is not None:
            self.on_commit(self.report)
        if self.options.keep_snapshots and self._snapshots_seen > self.options.keep_snapshots * 1.1 + 5:
            self._expire_snapshots()

    def _batch_in_table(self, parts: list[_Part]) -> list[_Part] | None:
        """The parts of this batch that a commit of this sink already put in the table, if any."""
        from pyiceberg.table.snapshots import ancestors_of

        table = self._catalog_table()
        by_key = {f"{self.topic}/{p.partition}": p for p in parts}
        for n, snap in enumerate(ancestors_of(table.current_snapshot(), table.metadata)):
            summary = snap.summary
            if n >= 50 or summary is None:
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

    def _commit_durably(self, parts: list[_Part]) -> list[_Part]:
        """:meth:`_commit`, riding out an object store that is briefly down or frozen (bounded).

        A transient error can come after the catalog took the commit (only the answer was
        lost), so before each new attempt the table is asked whether this batch is already
        in it: committing it again would double its rows, and taking it for fenced would
        delete its raw files. Gives up with :class:`TransientError` after ``RETRY_WINDOW_S``;
        nothing uncommitted is then recorded, and a restarted sink resumes from the table.
        """
        started = {p.partition: self.expected.get(p.partition) for p in parts}
        deadline = time.monotonic() + RETRY_WINDOW_S
        delay = 0.5
        while True:
            try:
                return self._commit(parts)
            except OSError as e:
                if not is_transient(e):
                    raise
                if time.monotonic() + delay > deadline:
                    first = (str(e).strip().splitlines() or [""])[0][:200]
                    raise TransientError(
                        f"could not commit to {self.mode.table}: the object store did not answer for "
                        f"{RETRY_WINDOW_S:g} s ({first}); nothing uncommitted was recorded, restart to resume"
                    ) from None
            self.report.commit_retries += 1
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
            done = self._batch_in_table(parts)
            if done is not None:
                return done
            # Parts fenced during the failed attempt were re-synced (and their raw files deleted).
            parts = [p for p in parts if self.expected.get(p.partition) == started[p.partition]]
            if not parts:
                return []

    def _resync(self, p: int, state: TableState) -> None:
        """Another sink committed this partition: continue from the table's offset and watermarks."""
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        table_offset = state.for_topic(self.topic).get(p)
        self.expected[p] = table_offset
        self.marks[p] = dict(state.watermarks.get(f"{self.topic}/{p}", {}))
        self._drop_pending(p)
        with contextlib.suppress(Exception):
            self._consumer.seek(
                TopicPartition(self.topic, p, table_offset if table_offset is not None else OFFSET_BEGINNING)
            )

    def _commit(self, parts: list[_Part]) -> list[_Part]:
        """One atomic append with the offsets; returns the parts committed (others were fenced)."""
        import sqlalchemy.exc
        from pyiceberg.exceptions import CommitFailedException

        ingested_at = dt.datetime.now(dt.UTC)
        data_uri: str | None = None
        for attempt in range(_COMMIT_ATTEMPTS):
            table = self._catalog_table()
            if any(table.properties.get(k) != v for k, v in _TABLE_PROPERTIES.items()):
                # Someone changed them since start-up (the retry setting is what fencing relies on).
                self._prepare_table()
                table = self._catalog_table()
            state = table_state(table)
            offsets = state.for_topic(self.topic)
            lost = [
                part for part in parts if offsets.get(part.partition) != self.expected.get(part.partition)
            ]
            if lost:
                for part in lost:
                    self.report.fenced += len(part.messages)
                    if part.raw_uri is not None:
                        self.storage.delete(part.raw_uri)
                    if part.partition in self.expected:
                        self._resync(part.partition, state)
                parts = [part for part in parts if part not in lost]
                data_uri = None
            if not parts:
                return []
            rows = self._rows(parts, ingested_at)
            if data_uri is None and rows.num_rows:
                data_uri = self._write_data_file(table, rows)
                faults.point("sink.data-written")
            merged_offsets = dict(state.offsets)
            merged_marks = dict(state.watermarks)
            for part in parts:
                key = f"{self.topic}/{part.partition}"
                merged_offsets[key] = part.next_offset
                merged_marks[key] = part.decoded.watermarks
            props = {
                OFFSETS_PROP: json.dumps(merged_offsets, sort_keys=True),
                WATERMARKS_PROP: json.dumps(merged_marks, sort_keys=True),
                BATCH_PROP: json.dumps(
                    {
                        f"{self.topic}/{p.partition}": [
                            p.first,
                            p.last,
                            len(p.decoded),
                            len(p.decoded.rejected),
                        ]
                        for p in parts
                    }
                ),
                REJECTED_PROP: str(sum(len(p.decoded.rejected) for p in parts)),
                SINK_PROP: self.sink_id,
                RAW_FILES_PROP: json.dumps(
                    [p.raw_uri[len(self.storage.root) + 1 :] for p in parts if p.raw_uri is not None]
                ),
            }
            try:
                with table.transaction() as tx:
                    if data_uri is not None:
                        tx.add_files([data_uri], snapshot_properties=props, check_duplicate_files=False)
                    else:
                        tx.append(rows, snapshot_properties=props)
                self._snapshots_seen = len(table.metadata.snapshots)
                return parts
            except (CommitFailedException, sqlalchemy.exc.OperationalError):
                # A concurrent sink committed first (or holds the catalog lock): reload and retry.
                self.report.commit_retries += 1
                time.sleep(min(0.02 * (attempt + 1), 0.5))
        raise TickerlakeError(
            f"could not commit to {self.mode.table} after {_COMMIT_ATTEMPTS} attempts (too many concurrent writers?)"
        )

    def _expire_snapshots(self) -> None:
        """Drop all but the newest snapshots from the metadata (the data files stay).

        Every commit carries the complete offsets, so older snapshots are not needed to
        resume; without expiry each commit would rewrite an ever longer metadata file.
        """
        import sqlalchemy.exc
        from pyiceberg.exceptions import CommitFailedException

        keep = self.options.keep_snapshots
        table = self._catalog_table()
        snaps = sorted(table.metadata.snapshots, key=lambda s: s.timestamp_ms)
        self._snapshots_seen = len(snaps)
        if len(snaps) <= keep:
            return
        ids = [s.snapshot_id for s in snaps[:-keep]]
        # Losing the race to a concurrent sink is fine: the next commit tries again.
        with contextlib.suppress(CommitFailedException, sqlalchemy.exc.OperationalError):
            table.maintenance.expire_snapshots().by_ids(ids).commit()
            self._snapshots_seen = keep

    # ---------------------------------------------------------------- loop

    def _release_slot(self) -> None:
        if self._slot_fd is not None:
            os.close(self._slot_fd)
            self._slot_fd = None

    def _once_lag(self) -> dict[int, int]:
        """Records below the start-time end offsets that the table does not hold yet, per partition."""
        offsets = table_state(self._catalog_table()).for_topic(self.topic)
        lag = {}
        for p, (low, high) in self._targets.items():
            position = max(offsets.get(p, low), low)  # below low: retention removed them
            lag[p] = max(high - position, 0)
        return lag

    def _once_done(self, now: float) -> bool:
        """Whether every partition is in the table up to its target (checked at most twice a second)."""
        if self.pending_count or now < self._next_check:
            return False
        self._next_check = now + 0.5
        self.report.lag = self._once_lag()
        if self.on_commit is not None:
            self.on_commit(self.report)  # progress while waiting for partitions held by crashed members
        return not any(self.report.lag.values())

    def _handle_error(self, msg: Any) -> None:
        from confluent_kafka import KafkaError

        err = msg.error()
        if err.code() == KafkaError._PARTITION_EOF:
            self.eof[msg.partition()] = True
            return
        if err.fatal() or err.code() in (
            KafkaError.UNKNOWN_TOPIC_OR_PART,
            KafkaError.TOPIC_AUTHORIZATION_FAILED,
            KafkaError.GROUP_AUTHORIZATION_FAILED,
        ):
            raise TickerlakeError(f"Kafka: {err.str()}")

    @contextlib.contextmanager
    def _signals(self, enabled: bool) -> Iterator[None]:
        if not enabled or threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, _frame: Any) -> None:
            self.report.stopped_by = "signal"
            self.stop.set()

        old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def run(self, handle_signals: bool = True) -> SinkReport:
        """Consume until stopped (or drained, with ``once``); returns what was done.

        Raises:
            TickerlakeError: Missing topic, unreachable dead-letter topic, commit failures.
            TransientError: Kafka does not answer.
        """
        from confluent_kafka import Consumer

        started = time.monotonic()
        self._bootstrap = _kafka.resolve_bootstrap(self.settings, self.options.bootstrap)
        admin = _kafka.admin_client(self.settings, self._bootstrap)
        partitions = _kafka.topic_partitions(admin, self.topic, self._bootstrap)
        if partitions is not None:
            _kafka.ensure_topic(admin, self.dlq_topic, 1, self._bootstrap)
        # Not kept alive by the traceback of the error below (it would go on reconnecting).
        del admin
        if partitions is None:
            raise TickerlakeError(
                f"topic {self.topic!r} does not exist on {self._bootstrap} (create it with `tickerlake stream replay`"
                " or `tickerlake stream topics --create`)"
            )
        self._catalog_table()
        self._prepare_table()
        if self.options.once:
            # The end of the topic as of now: `once` is done when the table holds everything below it.
            probe = _kafka.plain_consumer(self.settings, self._bootstrap)
            try:
                self._targets = _kafka.watermarks(probe, self.topic, partitions, self._bootstrap)
            finally:
                probe.close()
            self.report.targets = {p: high for p, (_, high) in self._targets.items()}
        if self.options.instance_id is None:
            self._instance_id, self._slot_fd = claim_slot(self.settings, self.options.group)
            try:
                self._remove_orphan_data_files()
            except BaseException:
                self._release_slot()
                raise
        self.report.instance_id = self._instance_id
        try:
            consumer = Consumer(self._consumer_config())
        except BaseException:
            self._release_slot()
            raise
        self._consumer = consumer
        consumer.subscribe(
            [self.topic],
            on_assign=self._guard(self._on_assign),
            on_revoke=self._guard(self._on_revoke),
            on_lost=self._guard(self._on_lost),
        )
        opts = self.options
        try:
            with self._signals(handle_signals):
                while not self.stop.is_set():
                    room = max(1, min(10_000, opts.max_records - self.pending_count))
                    wait = 0.1
                    if self.batch_started is not None:
                        wait = max(
                            0.0, min(wait, self.batch_started + opts.max_interval_s - time.monotonic())
                        )
                    msgs = consumer.consume(num_messages=room, timeout=wait)
                    if self._callback_error is not None:
                        raise self._callback_error
                    now = time.monotonic()
                    got = 0
                    for m in msgs:
                        if m.error() is not None:
                            self._handle_error(m)
                            continue
                        p = m.partition()
                        bucket = self.pending.get(p)
                        if bucket is None:
                            if p not in self.expected:
                                continue  # arrived after the partition was revoked
                            bucket = self.pending[p] = []
                        bucket.append(m)
                        self.eof[p] = False
                        got += 1
                    if got:
                        self.pending_count += got
                        self.last_activity = now
                        if self.batch_started is None:
                            self.batch_started = now
                    if self.pending_count >= opts.max_records or (
                        self.batch_started is not None and now - self.batch_started >= opts.max_interval_s
                    ):
                        self._flush()
                    if opts.once and self._once_done(now):
                        self.report.stopped_by = "once"
                        break
                    if opts.once and now - started > opts.once_timeout_s:
                        self.report.stopped_by = "timeout"
                        break
                self._flush()
        finally:
            with contextlib.suppress(Exception):
                consumer.close()
            if self._producer is not None:
                self._producer.flush(10)
            self._release_slot()
        if opts.once:
            self.report.lag = self._once_lag()
            self.report.complete = not any(self.report.lag.values())
        self.report.elapsed_s = round(time.monotonic() - started, 3)
        self.report.events_per_s = (
            round(self.report.records / self.report.elapsed_s, 1) if self.report.elapsed_s > 0 else 0.0
        )
        self.report.partitions = sorted(self._written)
        self.report.offsets = table_state(self._catalog_table()).for_topic(self.topic)
        return self.report


def run_sink(
    settings: Settings,
    options: SinkOptions,
    stop: threading.Event | None = None,
    on_commit: Callable[[SinkReport], None] | None = None,
    handle_signals: bool = True,
) -> SinkReport:
    """Run a sink until stopped, a signal arrives, or (with ``once``) the topic is drained."""
    return StreamSink(settings, options, stop=stop, on_commit=on_commit).run(handle_signals=handle_signals)
