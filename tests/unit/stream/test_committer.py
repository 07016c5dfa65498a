"""The sink's committer against an in-memory table: no broker, no catalog, no files.

The fake implements the committer's table protocol with optimistic concurrency (a write
fails with ``CommitConflict`` when the table moved since the version was loaded) and lets a
test interpose on each write: a concurrent sink committing first, the object store going
away before or after the catalog took the commit, a crash right after the data file was
written. The real pyiceberg path is covered by ``tests/integration/stream``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping

import numpy as np
import pyarrow as pa
import pytest

from tickerlake import faults
from tickerlake.errors import TickerlakeError, TransientError
from tickerlake.stream.schema import Rules, decode_ticks, encode_ticks
from tickerlake.stream.sink.batch import PartitionBatch
from tickerlake.stream.sink.committer import (
    COMMIT_ATTEMPTS,
    TABLE_PROPERTIES,
    CommitConflict,
    Committer,
)
from tickerlake.stream.sink.offsets import BATCH_PROP, RAW_FILES_PROP, SINK_PROP, TableState

TOPIC = "ticks"
T0 = 1_577_975_400_000_000  # 2020-01-02T14:30:00Z
#: An error text the lake's storage layer classifies as a transient store outage.
OUTAGE = "AWS Error NETWORK_CONNECTION: Connection refused"

Hook = Callable[[str], None]


class FakeTable:
    """The stream table in memory: snapshots (summary + data files), properties, data files."""

    def __init__(self) -> None:
        self.snapshots: list[tuple[int, dict[str, str], tuple[str, ...]]] = []
        self.properties: dict[str, str] = {}
        self.files: dict[str, pa.Table] = {}
        self.version = 0  # bumped by every successful write
        self.hooks: list[Hook] = []  # run (and consumed) one per write attempt, before it
        self.written = 0
        self.lose_next_answer = False  # the next write lands, but its caller gets a store error

    def load(self) -> FakeVersion:
        return FakeVersion(self)

    # -- what a test inspects

    def rows(self) -> pa.Table:
        files = {f for _, _, fs in self.snapshots for f in fs}
        tables = [self.files[f] for f in sorted(files)]
        return pa.concat_tables(tables) if tables else pa.table({"kafka_offset": pa.array([], pa.int64())})

    def offsets_of(self, partition: int) -> list[int]:
        """Kafka offsets of the committed rows of one partition, sorted."""
        rows = self.rows()
        if not rows.num_rows:
            return []
        mask = np.asarray(rows.column("kafka_partition")) == partition
        return sorted(np.asarray(rows.column("kafka_offset"))[mask].tolist())

    def commit_as(self, sink: str, offsets: Mapping[str, int]) -> None:
        """Another sink's commit (no rows needed): only its position matters to fencing."""
        merged = dict(json.loads(self.snapshots[-1][1]["tickerlake.kafka.offsets"])) if self.snapshots else {}
        merged.update(offsets)
        summary = {"tickerlake.kafka.offsets": json.dumps(merged), SINK_PROP: sink}
        self.snapshots.append((len(self.snapshots) + 1, summary, ()))
        self.version += 1


class FakeVersion:
    """One loaded version; writes fail with CommitConflict if the table moved since."""

    def __init__(self, table: FakeTable) -> None:
        self.table = table
        self.base = table.version
        self._snapshots = list(table.snapshots)
        self._properties = dict(table.properties)

    @property
    def snapshot_id(self) -> int | None:
        return self._snapshots[-1][0] if self._snapshots else None

    @property
    def properties(self) -> Mapping[str, str]:
        return self._properties

    def summaries(self) -> Iterator[Mapping[str, str] | None]:
        for _, summary, _ in reversed(self._snapshots):
            yield summary

    def snapshot_count(self) -> int:
        return len(self.table.snapshots)

    def write_data_file(self, rows: pa.Table, owner: str) -> str:
        self.table.written += 1
        uri = f"mem://data/stream-{owner}-{self.table.written:04d}.parquet"
        self.table.files[uri] = rows
        return uri

    def uncommitted_data_files(self, owner: str) -> list[str]:
        committed = {f for _, _, fs in self.table.snapshots for f in fs}
        prefix = f"mem://data/stream-{owner}-"
        return [u for u in self.table.files if u.startswith(prefix) and u not in committed]

    def delete_data_file(self, uri: str) -> None:
        del self.table.files[uri]

    def _write(self, op: str, apply: Callable[[], None]) -> None:
        if self.table.hooks:
            self.table.hooks.pop(0)(op)
        if self.table.version != self.base:
            raise CommitConflict("table moved")
        apply()
        self.table.version += 1
        if self.table.lose_next_answer:
            self.table.lose_next_answer = False
            raise OSError(OUTAGE)

    def append(self, rows: pa.Table, data_file: str | None, summary: Mapping[str, str]) -> None:
        def apply() -> None:
            files: tuple[str, ...] = ()
            if data_file is not None:
                files = (data_file,)
            elif rows.num_rows:
                files = (f"mem://data/inline-{len(self.table.snapshots)}.parquet",)
                self.table.files[files[0]] = rows
            self.table.snapshots.append((len(self.table.snapshots) + 1, dict(summary), files))

        self._write("append", apply)

    def set_properties(self, properties: Mapping[str, str]) -> None:
        self._write("set_properties", lambda: self.table.properties.update(properties))

    def expire_snapshots(self, keep: int) -> None:
        def apply() -> None:
            # Data files stay referenced by the newest snapshot in Iceberg; the fake keeps
            # them by folding the expired snapshots' files into the oldest one it keeps.
            dropped = self.table.snapshots[:-keep]
            kept = self.table.snapshots[-keep:]
            sid, summary, files = kept[0]
            kept[0] = (sid, summary, tuple(f for _, _, fs in dropped for f in fs) + files)
            self.table.snapshots[:] = kept

        self._write("expire", apply)


# ---------------------------------------------------------------------------- helpers


class Crash(BaseException):
    """A stand-in for SIGKILL at a named crash point."""


def part(partition: int, first: int, n: int, start: int | None, bad: tuple[int, ...] = ()) -> PartitionBatch:
    """A decoded batch of ``n`` ticks at offsets ``first..``; positions in ``bad`` are rejected."""
    seq = np.arange(first, first + n)
    values: list[bytes | None] = list(
        encode_ticks(["AAPL"] * n, seq * 1_000_000 + T0, np.full(n, 10.5), np.ones(n, dtype=np.int64), seq)
    )
    for pos in bad:
        values[pos] = b"not json"
    decoded = decode_ticks(values, Rules(), {})
    offsets = np.arange(first, first + n, dtype=np.int64)
    batch = PartitionBatch(partition, offsets, values, decoded, start=start)
    batch.raw_uri = f"/lake/raw/stream_ticks/topic={TOPIC}/partition={partition}/{first}.jsonl"
    return batch


class Harness:
    """A committer on a fake table, recording what it fenced."""

    def __init__(self, table: FakeTable | None = None, sink_id: str = "sink-a", **kw: object) -> None:
        self.table = table or FakeTable()
        self.fenced: list[tuple[PartitionBatch, TableState]] = []
        self.committer = Committer(
            self.table,
            topic=TOPIC,
            table_name="stream.ticks",
            sink_id=sink_id,
            on_fenced=lambda p, s: self.fenced.append((p, s)),
            raw_name=lambda uri: uri.removeprefix("/lake/"),
            sleep=lambda _s: None,
            **kw,  # type: ignore[arg-type]
        )
        self.committer.prepare()

    def position(self) -> dict[int, int]:
        return self.committer.state().for_topic(TOPIC)


def last_summary(table: FakeTable) -> dict[str, str]:
    return table.snapshots[-1][1]


@pytest.fixture
def crash_at(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Make ``faults.point(name)`` raise :class:`Crash` (instead of killing the test process)."""

    def arm(name: str) -> None:
        def point(at: str) -> None:
            if at == name:
                raise Crash(at)

        monkeypatch.setattr(faults, "point", point)

    return arm


def conflict_hook(table: FakeTable, sink: str, offsets: Mapping[str, int]) -> Hook:
    """A concurrent sink commits first, just before this write."""
    return lambda _op: table.commit_as(sink, offsets)


def fail_with(exc: BaseException) -> Hook:
    """This write fails before reaching the catalog."""

    def hook(_op: str) -> None:
        raise exc

    return hook


# ---------------------------------------------------------------------------- prepare


def test_prepare_sets_the_table_properties_once() -> None:
    h = Harness()
    assert {k: h.table.properties[k] for k in TABLE_PROPERTIES} == TABLE_PROPERTIES
    version = h.table.version
    h.committer.prepare()
    assert h.table.version == version  # nothing to change: no write


def test_a_commit_restores_properties_someone_changed() -> None:
    h = Harness()
    h.table.properties["commit.retry.num-retries"] = "4"  # pyiceberg's blind retry would break fencing
    h.committer.commit([part(0, 0, 10, None)])
    assert h.table.properties["commit.retry.num-retries"] == "0"


# ---------------------------------------------------------------------------- commit


def test_a_commit_appends_rows_with_offsets_watermarks_and_the_batch() -> None:
    h = Harness()
    p0, p1 = part(0, 0, 10, None), part(1, 0, 5, None, bad=(2,))
    assert h.committer.commit([p0, p1]) == [p0, p1]
    assert h.position() == {0: 10, 1: 5}
    assert h.table.offsets_of(0) == list(range(10))
    assert h.table.offsets_of(1) == [0, 1, 3, 4]
    summary = last_summary(h.table)
    assert json.loads(summary[BATCH_PROP]) == {f"{TOPIC}/0": [0, 9, 10, 0], f"{TOPIC}/1": [0, 4, 4, 1]}
    assert summary["tickerlake.stream.rejected"] == "1"
    assert summary[SINK_PROP] == "sink-a"
    assert json.loads(summary[RAW_FILES_PROP])[0] == f"raw/stream_ticks/topic={TOPIC}/partition=0/0.jsonl"
    assert h.committer.state().marks_of(TOPIC, 0) == {"AAPL": int(T0 + 9 * 1_000_000)}
    # The next batch continues from there; the offsets of partition 1 stay in the merged map.
    assert h.committer.commit([part(0, 10, 3, 10)])
    assert h.position() == {0: 13, 1: 5}


def test_a_batch_of_only_rejected_records_still_moves_the_offsets() -> None:
    h = Harness()
    assert h.committer.commit([part(0, 0, 2, None, bad=(0, 1))])
    assert h.position() == {0: 2}
    assert h.table.rows().num_rows == 0


def test_a_partition_another_sink_took_over_is_fenced() -> None:
    h = Harness()
    h.committer.commit([part(0, 0, 50, None), part(1, 0, 50, None)])
    h.table.commit_as("sink-b", {f"{TOPIC}/0": 100})  # took partition 0 and moved on
    zombie, ok = part(0, 50, 50, 50), part(1, 50, 10, 50)

    assert h.committer.commit([zombie, ok]) == [ok]

    assert zombie.fenced and not ok.fenced
    [(fenced, state)] = h.fenced
    assert fenced is zombie and state.for_topic(TOPIC)[0] == 100
    assert h.position() == {0: 100, 1: 60}  # the other sink's offset is kept, not overwritten
    assert h.table.offsets_of(0) == list(range(50))  # none of the zombie's rows


def test_a_lost_race_is_retried_on_the_fresh_table_and_reuses_the_data_file() -> None:
    h = Harness()
    h.table.hooks.append(conflict_hook(h.table, "sink-b", {f"{TOPIC}/7": 40}))

    assert len(h.committer.commit([part(0, 0, 20, None)])) == 1

    assert h.committer.retries == 1
    assert h.table.written == 1  # written once, committed on the second attempt
    assert h.position() == {0: 20, 7: 40}  # merged with what the winner committed
    assert h.table.offsets_of(0) == list(range(20))


def test_a_race_lost_to_a_sink_committing_the_same_partition_fences_it() -> None:
    h = Harness()
    h.table.hooks.append(conflict_hook(h.table, "sink-b", {f"{TOPIC}/0": 20}))
    batch = part(0, 0, 20, None)

    assert h.committer.commit([batch]) == []

    assert batch.fenced and h.position() == {0: 20}
    assert h.table.rows().num_rows == 0  # the winner's commit carried no rows in this fake


def test_a_commit_gives_up_after_so_many_lost_races() -> None:
    h = Harness()
    for n in range(COMMIT_ATTEMPTS):
        h.table.hooks.append(conflict_hook(h.table, "sink-b", {f"{TOPIC}/9": n + 1}))

    with pytest.raises(TickerlakeError, match="after 30 attempts"):
        h.committer.commit([part(0, 0, 5, None)])

    assert h.committer.retries == COMMIT_ATTEMPTS
    assert 0 not in h.position()


# ---------------------------------------------------------------------------- store outages


def test_an_outage_before_the_commit_is_ridden_out() -> None:
    h = Harness()
    h.table.hooks += [fail_with(OSError(OUTAGE))] * 2

    batch = part(0, 0, 10, None)
    assert h.committer.commit_durably([batch]) == [batch]

    assert h.committer.retries == 2
    assert h.table.offsets_of(0) == list(range(10))
    assert len(h.table.snapshots) == 1


def test_a_commit_whose_answer_was_lost_is_not_committed_twice() -> None:
    h = Harness()
    h.table.lose_next_answer = True
    batch = part(0, 0, 10, None)

    committed = h.committer.commit_durably([batch])

    assert committed == [batch] and not batch.fenced  # recognised as its own, not fenced
    assert h.fenced == []
    assert h.table.offsets_of(0) == list(range(10))
    assert len(h.table.snapshots) == 1


def test_the_batch_check_ignores_other_sinks_commits_of_the_same_range() -> None:
    h = Harness()
    other = Harness(h.table, sink_id="sink-b")
    other.committer.commit([part(0, 0, 10, None)])
    assert h.committer.batch_in_table([part(0, 0, 10, None)]) is None
    assert other.committer.batch_in_table([part(0, 0, 10, None)]) is not None


def test_an_outage_that_lasts_gives_up_with_nothing_committed() -> None:
    h = Harness(retry_window_s=0.0)
    h.table.hooks.append(fail_with(OSError(OUTAGE)))

    with pytest.raises(TransientError, match="did not answer"):
        h.committer.commit_durably([part(0, 0, 10, None)])

    assert h.position() == {}


def test_a_store_error_that_is_not_an_outage_is_not_retried() -> None:
    h = Harness()
    h.table.hooks.append(fail_with(PermissionError("read-only lake")))

    with pytest.raises(PermissionError):
        h.committer.commit_durably([part(0, 0, 10, None)])

    assert h.committer.retries == 0


# ---------------------------------------------------------------------------- crashes


def test_a_crash_between_the_data_file_and_the_commit_leaves_nothing_a_restart_keeps(
    crash_at: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    table = FakeTable()
    first = Harness(table)
    first.committer.owner = "tickerlake-host-0"
    first.committer.commit([part(0, 0, 10, None)])
    crash_at("sink.data-written")
    with pytest.raises(Crash):
        first.committer.commit([part(0, 10, 10, 10)])
    assert len(table.files) == 2  # the crashed batch's data file, never committed
    monkeypatch.undo()

    # The restart takes the same slot, cleans up, resumes from the table and writes the batch again.
    again = Harness(table, sink_id="sink-a2")
    again.committer.owner = "tickerlake-host-0"
    assert again.committer.remove_orphan_data_files() == 1
    assert again.position() == {0: 10}
    again.committer.commit([part(0, 10, 10, again.position()[0])])
    assert table.offsets_of(0) == list(range(20))
    assert len(table.files) == 2


def test_orphan_removal_spares_other_slots_and_committed_files() -> None:
    table = FakeTable()
    mine, other = Harness(table), Harness(table, sink_id="sink-b")
    mine.committer.owner, other.committer.owner = "slot-0", "slot-1"
    mine.committer.commit([part(0, 0, 5, None)])
    other.committer.commit([part(1, 0, 5, None)])
    table.load().write_data_file(pa.table({"x": [1]}), "slot-1")  # slot 1's live sink, mid-batch

    assert mine.committer.remove_orphan_data_files() == 0
    assert len(table.files) == 3
    mine.committer.owner = None  # dynamic membership: no slot, nothing is known to be orphaned
    assert mine.committer.remove_orphan_data_files() == 0


def test_a_batch_replayed_with_a_stale_start_after_its_commit_is_fenced() -> None:
    h = Harness()
    h.committer.commit([part(0, 0, 10, None)])
    replayed = part(0, 0, 10, None)  # a sink that missed the commit (crash after it) and read again

    assert h.committer.commit([replayed]) == []

    assert h.table.offsets_of(0) == list(range(10))


# ---------------------------------------------------------------------------- expiry


def test_old_snapshots_expire_and_the_position_survives() -> None:
    h = Harness(keep_snapshots=4)
    for n in range(12):
        h.committer.commit([part(0, n * 10, 10, n * 10 or None)])
        h.committer.expire_if_due()
    assert len(h.table.snapshots) <= 4 * 1.1 + 5
    assert h.position() == {0: 120}
    assert h.table.offsets_of(0) == list(range(120))


def test_an_expiry_that_loses_a_race_waits_for_the_next_commit() -> None:
    h = Harness(keep_snapshots=1)
    for n in range(8):
        h.committer.commit([part(0, n * 10, 10, n * 10 or None)])
    count = len(h.table.snapshots)
    h.table.hooks.append(conflict_hook(h.table, "sink-b", {f"{TOPIC}/5": 1}))

    h.committer.expire_if_due()  # lost: no error

    assert len(h.table.snapshots) == count + 1
    h.committer.expire_if_due()
    assert len(h.table.snapshots) == 1
    assert h.position() == {0: 80, 5: 1}
