"""The sink loop: consume, rebalance, and flush micro-batches through dead letters, raw files and the committer.

Shaped like a batching sink: records are *added* to per-partition buffers as they arrive,
and a *flush* (as soon as Kafka has no more records waiting, else at ``max_records`` records
or ``max_interval`` seconds, whichever first, and before partitions are revoked) decodes
the batch and hands it to the commit thread, which runs dead letters → raw files → commit.

Batch N is committed while batch N+1 is consumed and decoded, with at most one commit in
flight: a flush first waits for the commit before it, so commits land strictly in order.
Batch N+1 is decoded as if N were committed (its expected start offsets and watermarks are
N's ends), and each commit is still fenced by the start offsets it expects, so a batch
built on one that was fenced can never land; parts of partitions that N lost are dropped
before N+1 is handed over. A failed commit raises in the loop at the next flush, before
anything after it is handed over, so no Kafka offset moves past what the table holds; the
loop waits for the commit in flight before partitions are revoked or lost, and on exit.
The group's offsets are only committed after the table commit, for monitoring. On start
and on every assignment the loop seeks to the offsets recorded in the table, not to the
group's.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import FrameType

import numpy as np

from tickerlake import faults
from tickerlake.config import Settings
from tickerlake.errors import NotFoundError, TickerlakeError, UserError
from tickerlake.lake.storage import LakeStorage
from tickerlake.stream import _kafka
from tickerlake.stream.schema import Rules
from tickerlake.stream.sink.batch import PartitionBatch
from tickerlake.stream.sink.committer import Committer
from tickerlake.stream.sink.deadletters import DeadLetters
from tickerlake.stream.sink.iceberg import IcebergSinkTable
from tickerlake.stream.sink.offsets import MODES, TableState
from tickerlake.stream.sink.rawfiles import RawZone
from tickerlake.stream.sink.slots import claim_slot

_log = logging.getLogger(__name__)

__all__ = ["SinkOptions", "SinkReport", "StreamSink", "known_tickers_from_lake", "run_sink"]

#: A rebalance callback of confluent-kafka: the consumer and the partitions concerned.
_Callback = Callable[[_kafka.Consumer, list[_kafka.TopicPartition]], None]


@dataclass
class SinkOptions:
    """How a sink runs.

    Attributes:
        topic: Topic to read.
        mode: ``ticks`` or ``bars``.
        group: Consumer group id.
        bootstrap: Kafka address (None: settings or the dev broker).
        max_records: Records per micro-batch at most.
        max_interval_s: Seconds a micro-batch may stay open at most (it is committed sooner
            when the sink has caught up with the topic, later if the commit before it is
            still in flight).
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
        maintain_every_s: Run ``maintain`` on the table this often, in a background thread
            (compaction, expiry, orphan removal; 0: never). Its commits race this sink's
            like another writer's: whichever loses re-plans.
        fields: This topic's keys for event fields (``{"close": "px_last"}``), over the
            decoder's built-in spellings (``stream sink --fields``).
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
    maintain_every_s: float = 0.0
    fields: dict[str, str] = field(default_factory=dict)


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
        first_record_at: Wall-clock time (epoch s) the first record arrived (drain time starts).
        first_commit_at: Wall-clock time (epoch s) of the first commit.
        last_commit_at: Wall-clock time (epoch s) of the last commit.
        stopped_by: ``once``, ``timeout`` (``once`` gave up), ``signal`` or ``stop``.
        instance_id: The static membership id used (None: dynamic membership).
        targets: With ``once``: end offset per partition seen at start.
        lag: With ``once``: records of each partition below its target still missing from the table at exit.
        complete: With ``once``: whether every partition reached its target.
        maintain_runs: Periodic ``maintain`` runs that finished.
        files_compacted: Small data files they replaced.
        maintain_errors: Periodic runs that failed (the last error is logged; the sink goes on).
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
    first_record_at: float | None = None
    first_commit_at: float | None = None
    last_commit_at: float | None = None
    stopped_by: str = "stop"
    instance_id: str | None = None
    targets: dict[int, int] = field(default_factory=dict)
    lag: dict[int, int] = field(default_factory=dict)
    complete: bool | None = None
    maintain_runs: int = 0
    files_compacted: int = 0
    maintain_errors: int = 0


def known_tickers_from_lake(settings: Settings) -> frozenset[str] | None:
    """Tickers in ``market.daily_bars`` (None when the table is missing or empty)."""
    from tickerlake.lake.contract import read_tickers

    return frozenset(read_tickers(settings)) or None


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
            raise UserError(f"mode must be one of {', '.join(MODES)}, got {options.mode!r}")
        if options.max_records < 1:
            raise UserError(f"max records must be at least 1, got {options.max_records}")
        if options.max_interval_s <= 0:
            raise UserError(f"max interval must be positive, got {options.max_interval_s}")
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
        self.rules = Rules(known_tickers=known, max_lateness_us=lateness, fields=dict(options.fields))
        # Partition state, for assigned partitions only.
        self.expected: dict[int, int | None] = {}
        self.marks: dict[int, dict[str, int]] = {}
        self.eof: dict[int, bool] = {}
        self.pending: dict[int, list[_kafka.Message]] = {}
        self.pending_count = 0
        self.batch_started: float | None = None
        self.last_activity = time.monotonic()
        self._callback_error: BaseException | None = None
        self._written: set[int] = set()
        self._consumer: _kafka.Consumer | None = None
        self._maintain_stop = threading.Event()
        # The commit thread and the batch it is committing (at most one in flight), and
        # the parts it found fenced, for the loop to act on (it owns the consumer and state).
        self._committing: ThreadPoolExecutor | None = None
        self._inflight: Future[list[PartitionBatch]] | None = None
        self._fenced: list[tuple[PartitionBatch, TableState]] = []
        self._bootstrap = ""
        self.raw = RawZone(self.storage, self.mode.dataset, self.topic)
        self.dead_letters = DeadLetters(self.topic, self.dlq_topic, self.sink_id, self._new_dlq_producer)
        self.committer = Committer(
            IcebergSinkTable(settings, self.mode.table, self.storage),
            topic=self.topic,
            table_name=self.mode.table,
            sink_id=self.sink_id,
            on_fenced=lambda part, state: self._fenced.append((part, state)),
            raw_name=self.raw.relative,
            keep_snapshots=options.keep_snapshots,
        )

    # ---------------------------------------------------------------- Kafka clients

    def _new_consumer(self) -> _kafka.Consumer:
        conf: dict[str, str | int | bool] = {
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
            # Room to prefetch while a batch is being committed (librdkafka's 64 MB default
            # fills in a fraction of a commit, and the sink then waits for fetches).
            "queued.max.messages.kbytes": 512 * 1024,
        }
        if self._instance_id:
            conf["group.instance.id"] = self._instance_id
        return _kafka.new_consumer(self.settings, self._bootstrap, conf)

    def _new_dlq_producer(self) -> _kafka.Producer:
        conf = {
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": "lz4",
            "linger.ms": 5,
            "client.id": f"tickerlake-sink-dlq-{self.sink_id}",
        }
        return _kafka.new_producer(self.settings, self._bootstrap, conf)

    # ---------------------------------------------------------------- rebalance callbacks

    def _guard(self, fn: _Callback) -> _Callback:
        """Rebalance callbacks run inside consume(): keep their exceptions for the loop to raise."""

        def wrapped(consumer: _kafka.Consumer, partitions: list[_kafka.TopicPartition]) -> None:
            try:
                fn(consumer, partitions)
            except BaseException as e:
                self._callback_error = e
                # Without a seek to the table's offsets the partitions must not be read.
                with contextlib.suppress(Exception):
                    consumer.incremental_unassign(partitions)

        return wrapped

    def _on_assign(self, consumer: _kafka.Consumer, partitions: list[_kafka.TopicPartition]) -> None:
        # Partition state is kept per partition number of this sink's one topic: a partition
        # of another topic (a group shared with sinks of other topics) is never read.
        partitions = [tp for tp in partitions if tp.topic == self.topic]
        self._settle()  # the table's offsets below include this sink's last commit
        state = self.committer.state()
        offsets = state.for_topic(self.topic)
        for tp in partitions:
            p = tp.partition
            nxt = offsets.get(p)
            self.expected[p] = nxt
            self.marks[p] = state.marks_of(self.topic, p)
            self.eof[p] = False
            self._drop_pending(p)
            tp.offset = _kafka.start_position(nxt)
            # Raw files of batches that never reached the table.
            self.report.orphans_removed += self.raw.remove_uncommitted(
                p, nxt, functools.partial(_kafka.log_start, consumer, self.topic, p)
            )
        consumer.incremental_assign(partitions)
        self.last_activity = time.monotonic()

    def _on_revoke(self, consumer: _kafka.Consumer, partitions: list[_kafka.TopicPartition]) -> None:
        # Still the owner until this returns: commit what was read, then let go.
        self._flush(wait=True)
        self._forget([tp.partition for tp in partitions])
        consumer.incremental_unassign(partitions)

    def _on_lost(self, consumer: _kafka.Consumer, partitions: list[_kafka.TopicPartition]) -> None:
        # Someone else may own these already: committing them could double records (the
        # commit in flight is fenced if so).
        self._settle()
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

    def _on_fenced(self, part: PartitionBatch, state: TableState) -> None:
        """Another sink committed this partition: drop the batch's raw file, continue from the table."""
        self.report.fenced += part.records
        self.raw.discard(part)
        p = part.partition
        if p not in self.expected:
            return  # revoked meanwhile: nothing to follow
        table_offset = state.for_topic(self.topic).get(p)
        self.expected[p] = table_offset
        self.marks[p] = state.marks_of(self.topic, p)
        self._drop_pending(p)
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                _kafka.seek(self._consumer, self.topic, p, table_offset)

    # ---------------------------------------------------------------- batches

    def _decode(self, p: int, messages: list[_kafka.Message]) -> PartitionBatch | None:
        exp = self.expected.get(p)
        if exp is not None and messages and _kafka.offset_of(messages[0]) < exp:
            before = len(messages)
            messages = [m for m in messages if _kafka.offset_of(m) >= exp]
            self.report.duplicates_skipped += before - len(messages)
        if not messages:
            return None
        offsets = np.fromiter(map(_kafka.Message.offset, messages), dtype=np.int64, count=len(messages))
        # Offsets Kafka no longer holds (retention ran before they were sunk) or never had.
        self.report.offset_gaps += int(offsets[-1] - offsets[0] + 1 - len(offsets))
        if exp is not None:
            self.report.offset_gaps += max(int(offsets[0]) - exp, 0)
        values = list(map(_kafka.Message.value, messages))
        decoded = self.mode.decode(values, self.rules, self.marks.get(p, {}))
        return PartitionBatch(p, offsets, values, decoded, start=exp, messages=messages)

    def _write_raw(self, part: PartitionBatch) -> None:
        self.raw.write(part)

    def _commit(self, parts: list[PartitionBatch]) -> list[PartitionBatch]:
        """One fenced commit of the batch in this thread (see :meth:`Committer.commit`)."""
        try:
            return self.committer.commit(parts)
        finally:
            self.report.commit_retries = self.committer.retries
            self._apply_fenced()

    def _apply_fenced(self) -> None:
        """Act on the parts the committer found fenced (in the loop's thread: it owns the consumer)."""
        fenced, self._fenced = self._fenced, []
        for part, state in fenced:
            self._on_fenced(part, state)

    def _flush(self, wait: bool = False) -> None:
        """Decode the pending batch and hand it to the commit thread once the commit before it is done.

        Args:
            wait: Also wait for this batch's commit (before a revocation, and at the end).
        """
        batch, self.pending, self.pending_count, self.batch_started = self.pending, {}, 0, None
        # Decoded while the batch before it is still being committed, as if it were in.
        parts = [part for p in sorted(batch) if (part := self._decode(p, batch[p])) is not None]
        self._settle()
        # Partitions the batch before lost (fenced, revoked): the consumer was sent back to
        # the table's offset, so their records come again.
        parts = [p for p in parts if p.partition in self.expected and self.expected[p.partition] == p.start]
        if parts:
            for part in parts:
                # The next batch of this partition starts where this one ends.
                self.expected[part.partition] = part.next_offset
                self.marks[part.partition] = part.decoded.watermarks
            if self._committing is None:
                self._committing = ThreadPoolExecutor(1, thread_name_prefix="sink-commit")
            self._inflight = self._committing.submit(self._commit_batch, parts)
        if wait:
            self._settle()

    def _commit_batch(self, parts: list[PartitionBatch]) -> list[PartitionBatch]:
        """In the commit thread: dead letters, raw files, one Iceberg commit, expiry when due."""
        self.dead_letters.publish(parts)
        faults.point("sink.dead-letters-sent")
        for part in parts:
            self._write_raw(part)
        faults.point("sink.raw-written")
        try:
            committed = self.committer.commit_durably(parts)
        finally:
            self.report.commit_retries = self.committer.retries
        if committed:
            faults.point("sink.committed")
            self.committer.expire_if_due()
        return committed

    def _settle(self) -> None:
        """Wait for the commit in flight; account for it, or raise its error (nothing after it is committed)."""
        if self._inflight is None:
            return
        future, self._inflight = self._inflight, None
        try:
            committed = future.result()
        finally:
            self._apply_fenced()
        if not committed:
            return
        self._account(committed)
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                # Monitoring only (lag in the group tools); the table is the source of truth.
                _kafka.commit_offsets(
                    self._consumer, self.topic, {p.partition: p.next_offset for p in committed}
                )
        if self.on_commit is not None:
            self.on_commit(self.report)

    def _account(self, committed: list[PartitionBatch]) -> None:
        """Move the partitions past a committed batch and count it in the report."""
        self.report.batches += 1
        for part in committed:
            # expected and marks moved on when the batch was handed over.
            self._written.add(part.partition)
            self.report.records += part.records
            self.report.accepted += len(part.decoded)
            self.report.rejected += len(part.decoded.rejected)
            self.report.raw_files += part.raw_uri is not None
            for _, reason in part.decoded.rejected:
                code = reason.split(":", 1)[0]
                self.report.rejections[code] = self.report.rejections.get(code, 0) + 1
        now = time.time()
        self.report.first_commit_at = self.report.first_commit_at or now
        self.report.last_commit_at = now

    # ---------------------------------------------------------------- periodic maintenance

    def _start_maintainer(self) -> threading.Thread | None:
        """Start the background thread of ``maintain_every_s`` (None when it is off)."""
        if self.options.maintain_every_s <= 0:
            return None
        thread = threading.Thread(target=self._maintain_loop, name="sink-maintain", daemon=True)
        thread.start()
        return thread

    def _maintain_loop(self) -> None:
        from tickerlake.lake.maintain import maintain

        while not self._maintain_stop.wait(self.options.maintain_every_s):
            try:
                (done,) = maintain(self.settings, [self.mode.table])
            except Exception as e:  # the sink goes on; the next period tries again
                self.report.maintain_errors += 1
                _log.warning("periodic maintain of %s failed: %s", self.mode.table, e)
                continue
            self.report.maintain_runs += 1
            self.report.files_compacted += done.files_rewritten

    # ---------------------------------------------------------------- loop

    def _release_slot(self) -> None:
        if self._slot_fd is not None:
            os.close(self._slot_fd)
            self._slot_fd = None
            self.committer.owner = None

    def _once_lag(self) -> dict[int, int]:
        """Records below the start-time end offsets that the table does not hold yet, per partition."""
        offsets = self.committer.state().for_topic(self.topic)
        lag = {}
        for p, (low, high) in self._targets.items():
            position = max(offsets.get(p, low), low)  # below low: retention removed them
            lag[p] = max(high - position, 0)
        return lag

    def _once_done(self, now: float) -> bool:
        """Whether every partition is in the table up to its target (checked at most twice a second)."""
        if self.pending_count or self._inflight is not None or now < self._next_check:
            return False
        self._next_check = now + 0.5
        self.report.lag = self._once_lag()
        if self.on_commit is not None:
            self.on_commit(self.report)  # progress while waiting for partitions held by crashed members
        return not any(self.report.lag.values())

    def _handle_error(self, msg: _kafka.Message) -> None:
        err = msg.error()
        if err is None:
            return
        if _kafka.is_partition_eof(err):
            p = msg.partition()
            if p is not None:
                self.eof[p] = True
            return
        if _kafka.fatal_consumer_error(err):
            raise TickerlakeError(f"Kafka: {err.str()}")

    @contextlib.contextmanager
    def _signals(self, enabled: bool) -> Iterator[None]:
        if not enabled or threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, _frame: FrameType | None) -> None:
            self.report.stopped_by = "signal"
            self.stop.set()

        old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def _start(self) -> None:
        """Check the topics, prepare the table, note the targets of ``once``, claim a slot."""
        self._bootstrap = _kafka.resolve_bootstrap(self.settings, self.options.bootstrap)
        admin = _kafka.admin_client(self.settings, self._bootstrap)
        partitions = _kafka.topic_partitions(admin, self.topic, self._bootstrap)
        if partitions is not None:
            _kafka.ensure_topic(admin, self.dlq_topic, 1, self._bootstrap)
        # Not kept alive by the traceback of the error below (it would go on reconnecting).
        del admin
        if partitions is None:
            raise NotFoundError(
                f"topic {self.topic!r} does not exist on {self._bootstrap} (create it with `tickerlake stream replay`"
                " or `tickerlake stream topics --create`)"
            )
        self.committer.prepare()
        if self.options.once:
            # The end of the topic as of now: `once` is done when the table holds everything below it.
            probe = _kafka.plain_consumer(self.settings, self._bootstrap)
            try:
                self._targets = _kafka.watermarks(probe, self.topic, partitions, self._bootstrap)
            finally:
                probe.close()
            self.report.targets = {p: high for p, (_, high) in self._targets.items()}
        if self.options.instance_id is None:
            self._instance_id, self._slot_fd = claim_slot(self.settings, self.options.group, self.topic)
            self.committer.owner = self._instance_id
            try:
                self.report.orphans_removed += self.committer.remove_orphan_data_files()
            except BaseException:
                self._release_slot()
                raise
        self.report.instance_id = self._instance_id

    def _add(self, msgs: list[_kafka.Message], now: float) -> None:
        """Buffer the records of assigned partitions; errors and end-of-partition events are handled."""
        got = 0
        # Per record only what cannot be done in bulk: records of one partition arrive in
        # runs, so the bucket lookup is skipped while the partition stays the same.
        pending, expected = self.pending, self.expected
        last: int | None = None
        append: Callable[[_kafka.Message], None] | None = None
        for m in msgs:
            if m.error() is not None:
                self._handle_error(m)
                last = None  # an end-of-partition event may have marked it
                continue
            p = m.partition()
            if p != last or append is None:
                last, append = p, None
                if p is None:
                    continue
                bucket = pending.get(p)
                if bucket is None:
                    if p not in expected:
                        continue  # arrived after the partition was revoked
                    bucket = pending[p] = []
                append = bucket.append
                self.eof[p] = False
            append(m)
            got += 1
        if got:
            self.pending_count += got
            self.last_activity = now
            if self.batch_started is None:
                self.batch_started = now
            if self.report.first_record_at is None:
                self.report.first_record_at = time.time()

    def run(self, handle_signals: bool = True) -> SinkReport:
        """Consume until stopped (or drained, with ``once``); returns what was done.

        Raises:
            NotFoundError: The topic does not exist.
            TickerlakeError: Unreachable dead-letter topic, commit failures.
            TransientError: Kafka does not answer.
        """
        started = time.monotonic()
        self._start()
        try:
            consumer = self._new_consumer()
        except BaseException:
            self._release_slot()
            raise
        self._consumer = consumer
        maintainer = self._start_maintainer()
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
                    inflight = self._inflight
                    busy = inflight is not None and not inflight.done()
                    wait = 0.1
                    if self.batch_started is not None:
                        wait = max(
                            0.0, min(wait, self.batch_started + opts.max_interval_s - time.monotonic())
                        )
                    # While a commit is in flight, take what has arrived without waiting for more...
                    msgs = consumer.consume(num_messages=room, timeout=0.0 if busy else wait)
                    if self._callback_error is not None:
                        raise self._callback_error
                    self._add(msgs, time.monotonic())
                    if busy and inflight is not None and len(msgs) < room:
                        # ...and, caught up, wait for the commit's end rather than for records
                        # (the next batch then starts with all that arrived meanwhile).
                        futures.wait([inflight], timeout=0.1)
                        busy = not inflight.done()
                    now = time.monotonic()
                    # Caught up (Kafka had fewer records than asked for): commit what waits as
                    # soon as the commit in flight is done rather than at the size or time
                    # bound, so a record is visible one commit after it arrives; while records
                    # stream in faster than commits, batches grow on their own. The time bound
                    # waits for the commit in flight too: flushing during it would leave what
                    # arrives until its end for one more commit.
                    late = self.batch_started is not None and now - self.batch_started >= opts.max_interval_s
                    if self.pending_count >= opts.max_records or (not busy and (len(msgs) < room or late)):
                        self._flush()
                    if opts.once and self._once_done(now):
                        self.report.stopped_by = "once"
                        break
                    if opts.once and now - started > opts.once_timeout_s:
                        self.report.stopped_by = "timeout"
                        break
                self._flush(wait=True)
        finally:
            if self._inflight is not None:  # an error elsewhere: let the commit in flight end
                with contextlib.suppress(Exception):
                    self._inflight.result()
                self._inflight = None
            if self._committing is not None:
                self._committing.shutdown()
            self._maintain_stop.set()
            if maintainer is not None:
                maintainer.join(timeout=60)
            with contextlib.suppress(Exception):
                consumer.close()
            self.dead_letters.close()
            self._release_slot()
        if opts.once:
            self.report.lag = self._once_lag()
            self.report.complete = not any(self.report.lag.values())
        self.report.elapsed_s = round(time.monotonic() - started, 3)
        self.report.events_per_s = (
            round(self.report.records / self.report.elapsed_s, 1) if self.report.elapsed_s > 0 else 0.0
        )
        self.report.partitions = sorted(self._written)
        self.report.offsets = self.committer.state().for_topic(self.topic)
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
