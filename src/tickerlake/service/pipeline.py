"""Pipeline health as an operation: the stream (events/s in, lag per partition of the sink
and of the live view, the sink's last commit and its age, dead letters and their latest
reasons) and the batch side (the last crawls and ETL runs with their counts), the local
counterpart of the Glue console's "jobs and runs" view.

Everything is read from where the pipeline itself records it, nothing is kept on the side:

* lag and dead letters: Kafka watermarks and the offsets in ``stream.ticks``'s snapshot
  summaries (:func:`tickerlake.stream.status.stream_status`), the live group's committed
  offsets (or the running live view's own positions), the tail of ``<topic>.dlq``;
* the sink's last commit: the newest snapshot of the stream table whose batch covers the topic;
* crawls: the crawler's reports, ``catalog/crawls/<stamp>.json`` in the lake;
* ETL runs: the snapshot summaries of the curated tables and of ``market.quarantine``,
  grouped by the run id every ETL commit carries (``tickerlake.etl.run``).

A part that cannot be read (no broker, no topic, an empty lake) is reported in that part's
``problem`` and the rest is still answered.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tickerlake.config import Settings
from tickerlake.errors import TickerlakeError

__all__ = [
    "CrawlRun",
    "DeadLetterInfo",
    "EtlRun",
    "EtlTableRun",
    "PartitionHealth",
    "PipelineHealth",
    "StreamHealth",
    "etl_runs",
    "pipeline_health",
    "recent_crawls",
]

#: Iceberg tables an ETL run writes, and the quarantine it sends rejected rows to.
_CURATED = ("market.daily_bars", "market.corporate_actions")
_QUARANTINE = "market.quarantine"
_SAMPLES: dict[tuple[str, str], tuple[float, int]] = {}
_SAMPLES_LOCK = threading.Lock()


@dataclass
class PartitionHealth:
    """One partition of the topic.

    Attributes:
        partition: Partition id.
        low: First offset Kafka holds.
        high: Log end.
        sink_offset: Next offset recorded in the stream table.
        sink_group_offset: Next offset committed by the sink's group.
        sink_lag: Records not yet in the table.
        live_offset: Next offset of the live view (its own position, else its group's commit).
        live_lag: Records the live view has not read.
    """

    partition: int
    low: int
    high: int
    sink_offset: int | None
    sink_group_offset: int | None
    sink_lag: int
    live_offset: int | None
    live_lag: int | None


@dataclass
class DeadLetterInfo:
    """One dead letter.

    Attributes:
        partition: Source partition.
        offset: Source offset.
        reason: Why it was rejected.
        rejected_at: When (ISO).
    """

    partition: int | None
    offset: int | None
    reason: str
    rejected_at: str | None


@dataclass
class StreamHealth:
    """The topic, its sink and its live view.

    Attributes:
        topic: Topic.
        table: Stream table.
        sink_group: The sink's group.
        live_group: The live view's group.
        problem: Why the stream part could not be read (None when it could).
        events_per_s: Records per second arriving in the topic since the previous look (None on the first).
        records: Records the topic holds.
        sink_lag: Records not yet in the table.
        live_lag: Records the live view has not read (None when unknown).
        partitions: Per partition.
        last_commit_at: Time of the sink's last commit of this topic (ISO).
        commit_age_s: Seconds since then.
        last_commit_rows: Rows of that commit.
        dead_letters: Records in ``<topic>.dlq`` (None when it does not exist).
        latest_dead_letters: The newest dead letters with their reasons.
    """

    topic: str
    table: str
    sink_group: str
    live_group: str
    problem: str | None = None
    events_per_s: float | None = None
    records: int = 0
    sink_lag: int = 0
    live_lag: int | None = None
    partitions: list[PartitionHealth] = field(default_factory=list)
    last_commit_at: str | None = None
    commit_age_s: float | None = None
    last_commit_rows: int | None = None
    dead_letters: int | None = None
    latest_dead_letters: list[DeadLetterInfo] = field(default_factory=list)


@dataclass
class CrawlRun:
    """One crawl.

    Attributes:
        started_at: When (ISO).
        files_scanned: Files sniffed (new or changed).
        files_total: Data files in the raw zone.
        tables: Table name -> status (new, updated, unchanged, removed).
        problems: Files that could not be read, with the reason.
    """

    started_at: str
    files_scanned: int
    files_total: int
    tables: dict[str, str]
    problems: list[str]


@dataclass
class EtlTableRun:
    """What one ETL run committed to one table.

    Attributes:
        table: Curated table.
        files: Raw files the run read for it.
        added: Rows the commit added (new and rewritten keys).
        deleted: Rows the commit removed (keys rewritten copy-on-write).
        read: Rows read, when the commit records it.
        duplicates: Duplicate rows, when the commit records it.
        quarantined: Rows sent to the quarantine, when the commit records it.
    """

    table: str
    files: int | None
    added: int
    deleted: int
    read: int | None = None
    duplicates: int | None = None
    quarantined: int | None = None


@dataclass
class EtlRun:
    """One ETL run, as its commits record it.

    Attributes:
        run_id: Run id.
        at: Time of its first commit (ISO).
        tables: Per curated table.
        quarantined: Rows the run added to ``market.quarantine``.
        read: Rows read (sum over tables), when every table records it.
        loaded: Rows loaded: new and changed keys as the watcher recorded them, else the net
            rows the run's commits added (added minus rewritten).
        duplicates: Duplicates, when every table records them.
        reconciles: Whether read = loaded + duplicates + quarantined (None when not recorded:
            every ETL commit carries them in its snapshot summary; runs of older versions lack them).
    """

    run_id: str
    at: str
    tables: list[EtlTableRun]
    quarantined: int
    read: int | None
    loaded: int
    duplicates: int | None
    reconciles: bool | None


@dataclass
class PipelineHealth:
    """The whole pipeline at one moment.

    Attributes:
        at: When it was read (ISO).
        stream: The topic, its sink and its live view.
        crawls: The newest crawls first.
        etl_runs: The newest ETL runs first.
        problem: Why the batch side could not be read (None when it could).
    """

    at: str
    stream: StreamHealth
    crawls: list[CrawlRun]
    etl_runs: list[EtlRun]
    problem: str | None = None


def _iso(ms: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec="seconds")


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _stream_health(
    settings: Settings,
    topic: str,
    mode: str,
    sink_group: str,
    live_group: str,
    bootstrap: str | None,
    live_positions: dict[int, int | None] | None,
    dead_letters_shown: int,
) -> StreamHealth:
    from tickerlake.lake.catalog import load_table_or_none, open_catalog
    from tickerlake.stream import _kafka
    from tickerlake.stream.sink.offsets import BATCH_PROP, MODES
    from tickerlake.stream.status import stream_status

    out = StreamHealth(topic=topic, table=MODES[mode].table, sink_group=sink_group, live_group=live_group)
    try:
        st = stream_status(settings, topic, mode, sink_group, bootstrap)
    except TickerlakeError as e:
        out.problem = str(e)
        return out
    address = st.bootstrap_servers
    parts = [ps.partition for ps in st.partitions]
    consumer = _kafka.plain_consumer(settings, address, **{"group.id": live_group})
    try:
        live = (
            live_positions if live_positions is not None else _kafka.committed_offsets(consumer, topic, parts)
        )
        for ps in st.partitions:
            lo = live.get(ps.partition)
            out.partitions.append(
                PartitionHealth(
                    ps.partition,
                    ps.low,
                    ps.high,
                    ps.table_offset,
                    ps.group_offset,
                    ps.lag,
                    lo,
                    max(ps.high - max(lo, ps.low), 0) if lo is not None else None,
                )
            )
        out.dead_letters = st.dead_letters
        if st.dead_letters:
            out.latest_dead_letters = _latest_dead_letters(
                settings, consumer, f"{topic}.dlq", address, dead_letters_shown
            )
    finally:
        consumer.close()
    out.sink_lag = st.lag
    lags = [p.live_lag for p in out.partitions]
    out.live_lag = sum(x for x in lags if x is not None) if any(x is not None for x in lags) else None
    total_high = sum(p.high for p in out.partitions)
    out.records = sum(p.high - p.low for p in out.partitions)
    now = time.monotonic()
    with _SAMPLES_LOCK:
        before = _SAMPLES.get((address, topic))
        _SAMPLES[(address, topic)] = (now, total_high)
    if before is not None and 0.2 < now - before[0] < 120:
        out.events_per_s = round(max(total_high - before[1], 0) / (now - before[0]), 1)
    # The sink's last commit of this topic: the newest snapshot whose batch covers it.
    table = None if _missing_lake(settings) else load_table_or_none(open_catalog(settings), out.table)
    if table is not None:
        prefix = topic + "/"
        for snap in sorted(table.metadata.snapshots, key=lambda s: s.timestamp_ms, reverse=True)[:500]:
            props = snap.summary.additional_properties if snap.summary else {}
            batch = json.loads(props.get(BATCH_PROP) or "{}")
            if any(k.startswith(prefix) for k in batch):
                out.last_commit_at = _iso(snap.timestamp_ms)
                out.commit_age_s = round(max(time.time() - snap.timestamp_ms / 1000, 0.0), 1)
                out.last_commit_rows = _int(props.get("added-records"))
                break
    return out


def _latest_dead_letters(
    settings: Settings, consumer: Any, dlq: str, address: str, n: int
) -> list[DeadLetterInfo]:
    from tickerlake.stream import _kafka

    admin = _kafka.admin_client(settings, address)
    parts = _kafka.topic_partitions(admin, dlq, address) or []
    marks = _kafka.watermarks(consumer, dlq, parts, address)
    ranges = {p: (max(lo, hi - n), hi) for p, (lo, hi) in marks.items()}
    found: list[DeadLetterInfo] = []
    for m in _kafka.read_range(consumer, dlq, ranges, timeout_s=5.0):
        try:
            body = json.loads(m.value() or b"{}")
        except ValueError:
            body = {"reason": "unreadable dead letter"}
        found.append(
            DeadLetterInfo(
                _int(body.get("source_partition")),
                _int(body.get("source_offset")),
                str(body.get("reason", "")),
                body.get("rejected_at"),
            )
        )
    found.sort(key=lambda d: (d.rejected_at or "", d.partition or 0, d.offset or 0), reverse=True)
    return found[:n]


def recent_crawls(settings: Settings, n: int = 10) -> list[CrawlRun]:
    """The newest crawls first, from the crawler's reports in ``catalog/crawls/``."""
    from tickerlake.lake.contract.layout import CRAWLS_DIR, LakeLayout

    layout = LakeLayout.of(settings)
    entries = layout.storage.list_files(layout.catalog_file(CRAWLS_DIR))
    reports = sorted((e for e in entries if e.uri.endswith(".json")), key=lambda e: posixpath.basename(e.uri))
    out = []
    for entry in reversed(reports[-n:]):
        with contextlib.suppress(ValueError, OSError):
            r = json.loads(layout.storage.read_bytes(entry.uri))
            tables = r.get("tables") or []
            out.append(
                CrawlRun(
                    started_at=str(r.get("started_at", "")),
                    files_scanned=int(r.get("files_scanned") or 0),
                    files_total=int(r.get("files_total") or 0),
                    tables={str(t.get("table")): str(t.get("status")) for t in tables},
                    problems=[p for t in tables for p in t.get("problems") or []][:5],
                )
            )
    return out


def _carry(props: Mapping[str, str], key: str, before: int | None) -> int | None:
    """A count from a snapshot summary; a later commit of the run without it (the
    corporate-actions pass's) keeps the load's."""
    return _int(props[key]) if key in props else before


def etl_runs(settings: Settings, n: int = 10) -> list[EtlRun]:
    """The newest ETL runs first, from the curated tables' and the quarantine's snapshot summaries."""
    from tickerlake.lake.catalog import load_table_or_none, open_catalog

    catalog = open_catalog(settings)
    runs: dict[str, dict[str, Any]] = {}
    for name in (*_CURATED, _QUARANTINE):
        table = load_table_or_none(catalog, name)
        if table is None:
            continue
        for snap in table.metadata.snapshots:
            props = snap.summary.additional_properties if snap.summary else {}
            run_id = props.get("tickerlake.etl.run")
            if not run_id:
                continue
            run = runs.setdefault(
                run_id, {"at": snap.timestamp_ms, "tables": {}, "quarantined": 0, "loaded": 0}
            )
            run["at"] = min(run["at"], snap.timestamp_ms)
            added = _int(props.get("added-records")) or 0
            if name == _QUARANTINE:
                run["quarantined"] += added
                continue
            prev = run["tables"].get(name)
            deleted = _int(props.get("deleted-records")) or 0
            if "tickerlake.etl.pass" not in props:
                # The corporate-actions pass rewrites bars and adds inferred actions: not rows read.
                run["loaded"] += added - deleted

            row = EtlTableRun(
                table=name,
                files=_carry(props, "tickerlake.etl.files", prev.files if prev else None),
                added=added + (prev.added if prev else 0),
                deleted=deleted + (prev.deleted if prev else 0),
                read=_carry(props, "tickerlake.etl.read", prev.read if prev else None),
                duplicates=_carry(props, "tickerlake.etl.duplicates", prev.duplicates if prev else None),
                quarantined=_carry(props, "tickerlake.etl.quarantined", prev.quarantined if prev else None),
            )
            run["tables"][name] = row
    counted = _watch_counts(settings)
    out = []
    for run_id, run in sorted(runs.items(), key=lambda kv: kv[1]["at"], reverse=True)[:n]:
        tables: list[EtlTableRun] = list(run["tables"].values())
        loaded = run["loaded"]
        quarantined = run["quarantined"]
        watched = [counted.get((run_id, t.table)) for t in tables]
        if tables and all(w is not None for w in watched):
            # A run the watcher made has its full counts in the watcher's record.
            for t, w in zip(tables, watched, strict=True):
                assert w is not None
                t.read, t.duplicates, t.quarantined = (
                    _int(w.get("read")),
                    _int(w.get("duplicates")),
                    _int(w.get("quarantined")),
                )
            loaded = sum((_int(w.get("inserted")) or 0) + (_int(w.get("updated")) or 0) for w in watched if w)
            quarantined = sum(t.quarantined or 0 for t in tables)
        # The tables the run loaded files into (not those only its corporate-actions pass wrote).
        loads = [t for t in tables if t.files is not None] or tables
        reads = [t.read for t in loads if t.read is not None]
        dup_counts = [t.duplicates for t in loads if t.duplicates is not None]
        # Only a run whose every loaded table records its counts can be reconciled.
        read = sum(reads) if loads and len(reads) == len(loads) else None
        dups = sum(dup_counts) if loads and len(dup_counts) == len(loads) else None
        out.append(
            EtlRun(
                run_id=run_id,
                at=_iso(run["at"]),
                tables=tables,
                quarantined=quarantined,
                read=read,
                loaded=loaded,
                duplicates=dups,
                reconciles=(read == loaded + dups + quarantined)
                if read is not None and dups is not None
                else None,
            )
        )
    return out


def _watch_counts(settings: Settings) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (ETL run id, table): the counts ``tickerlake watch`` recorded for its runs (empty if none)."""
    try:
        from tickerlake.service.watch import watch_runs
    except ImportError:
        return {}
    out: dict[tuple[str, str], dict[str, Any]] = {}
    with contextlib.suppress(TickerlakeError, OSError, ValueError):
        for w in watch_runs(settings, 200):
            run_id = w.etl_run
            for t in w.tables if run_id else []:
                out[(str(run_id), str(t.get("table")))] = t
    return out


def _missing_lake(settings: Settings) -> str | None:
    """Why a local lake cannot be read: opening its catalog would create one at a mistyped path."""
    from tickerlake.lake.storage import LakeStorage

    if settings.is_local and not LakeStorage(settings).exists(settings.lake_uri):
        return f"no lake at {settings.lake_uri}: ingest data first or pass --lake"
    return None


def pipeline_health(
    settings: Settings,
    topic: str = "ticks",
    mode: str = "ticks",
    sink_group: str = "tickerlake-sink",
    live_group: str = "tickerlake-live",
    bootstrap: str | None = None,
    live_positions: dict[int, int | None] | None = None,
    runs: int = 10,
) -> PipelineHealth:
    """The stream and batch sides of the pipeline (see the module docstring).

    Args:
        settings: Lake and Kafka settings.
        topic: Tick topic.
        mode: ``ticks`` or ``bars`` (which stream table).
        sink_group: The sink's consumer group.
        live_group: The live view's consumer group.
        bootstrap: Kafka address (default: settings, else the dev broker).
        live_positions: The running live view's next offset per partition (else its group's commits).
        runs: Crawls, ETL runs and dead letters shown.
    """
    stream = _stream_health(settings, topic, mode, sink_group, live_group, bootstrap, live_positions, runs)
    problem = _missing_lake(settings)
    crawls: list[CrawlRun] = []
    etl: list[EtlRun] = []
    try:
        if problem is None:
            crawls = recent_crawls(settings, runs)
            etl = etl_runs(settings, runs)
    except TickerlakeError as e:
        problem = str(e)
    return PipelineHealth(
        at=_iso(time.time() * 1000), stream=stream, crawls=crawls, etl_runs=etl, problem=problem
    )
