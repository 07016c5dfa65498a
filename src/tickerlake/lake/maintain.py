"""Table maintenance: compaction, snapshot expiry and orphan-file removal (``tickerlake maintain``).

Every stream-sink commit adds a small Parquet file and a snapshot; the ETL adds a few per
run. Left alone, a table's queries open thousands of files and its metadata grows. Each
step here is safe while sinks commit and readers query:

* **compact** reads the table's small data files and rewrites them as few files of about
  the target size, sorted by ``(ticker, ts)`` (or ``(ticker, date)``), in one Iceberg
  commit that deletes exactly those files and adds the new ones. A writer that committed
  in between only added files, so the commit is re-applied on top of it; a concurrent
  compaction that already removed one of the files makes it fail cleanly (nothing changes,
  the new files are deleted) and it plans again. Rows are never lost nor doubled: the
  input files are named one by one, not by a filter.
* **expire** drops snapshots older than a retention window (the current one always
  stays); files they alone referenced become orphans, removed by the next step once old
  enough.
* **remove orphans** deletes files under the table's folder that no live snapshot or
  metadata file references and that are older than a grace period (so a writer's file
  not yet committed is never taken), and ``.tmp-*`` leftovers of crashed writers.

A maintenance commit repeats the table's position (:data:`POSITION_KEYS`: the stream
sink's Kafka offsets and watermarks) in its snapshot summary, so the newest snapshot
still says where the stream stands even after older ones expire.
"""

from __future__ import annotations

import posixpath
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tickerlake.config import Settings
from tickerlake.errors import NotFoundError, TransientError
from tickerlake.lake.contract import TABLES
from tickerlake.lake.storage import FileEntry, LakeStorage

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.manifest import DataFile
    from pyiceberg.table import FileScanTask, Table

__all__ = [
    "DEFAULT_ORPHAN_AGE_S",
    "DEFAULT_RETAIN_S",
    "DEFAULT_TARGET_BYTES",
    "MAINTAIN_PROP",
    "POSITION_KEYS",
    "MaintainOptions",
    "MaintainReport",
    "compact_table",
    "expire_snapshots",
    "lost_expiry_race",
    "maintain",
    "plan_bins",
    "referenced_files",
    "remove_orphans",
    "sort_columns",
]

#: Snapshot-summary keys that say where a table stands rather than what one commit did
#: (the stream sink's Kafka offsets and order-check watermarks): repeated by every
#: maintenance commit from the snapshot it builds on.
POSITION_KEYS: tuple[str, ...] = ("tickerlake.kafka.offsets", "tickerlake.stream.watermarks")
#: Marks a maintenance commit's snapshot summary (value: the step, ``compact``).
MAINTAIN_PROP = "tickerlake.maintain"
#: Size a compacted data file aims at (compressed).
DEFAULT_TARGET_BYTES = 64 * 2**20
#: Snapshots younger than this are kept (time travel, and readers still on them).
DEFAULT_RETAIN_S = 3600.0
#: Unreferenced files younger than this are left alone (a writer may be about to commit them).
DEFAULT_ORPHAN_AGE_S = 3600.0

_ATTEMPTS = 10


@dataclass(frozen=True)
class MaintainOptions:
    """What ``maintain`` does.

    Attributes:
        compact: Rewrite small files.
        expire: Expire old snapshots.
        remove_orphans: Delete unreferenced files and ``.tmp-*`` leftovers.
        target_bytes: Size of a compacted file; files under 3/4 of it count as small.
        retain_s: Snapshots younger than this are kept.
        orphan_age_s: Unreferenced files younger than this are kept.
    """

    compact: bool = True
    expire: bool = True
    remove_orphans: bool = True
    target_bytes: int = DEFAULT_TARGET_BYTES
    retain_s: float = DEFAULT_RETAIN_S
    orphan_age_s: float = DEFAULT_ORPHAN_AGE_S


@dataclass
class MaintainReport:
    """What ``maintain`` did to one table.

    Attributes:
        table: Catalog identifier.
        files_before: Data files in the current snapshot before.
        files_after: Data files in the current snapshot after.
        files_rewritten: Small files replaced by compaction.
        files_written: Files compaction wrote.
        rows_rewritten: Rows in the rewritten files (the same rows are in the new ones).
        snapshots_expired: Snapshots removed.
        orphans_removed: Unreferenced files deleted (data, metadata, ``.tmp-*``).
        bytes_removed: Their total size.
        commit_retries: Compaction or expiry commits that lost to a concurrent writer and planned again.
        seconds: Wall time.
        steps: The steps that changed something (``compact``, ``expire``, ``remove-orphans``).
    """

    table: str
    files_before: int = 0
    files_after: int = 0
    files_rewritten: int = 0
    files_written: int = 0
    rows_rewritten: int = 0
    snapshots_expired: int = 0
    orphans_removed: int = 0
    bytes_removed: int = 0
    commit_retries: int = 0
    seconds: float = 0.0
    steps: list[str] = field(default_factory=list)


def sort_columns(column_names: Sequence[str]) -> list[str]:
    """The compaction sort key: ``ticker`` then the first time column (``ts``, else ``date``) present."""
    key = [c for c in ("ticker",) if c in column_names]
    time_col = next((c for c in ("ts", "date") if c in column_names), None)
    return key + ([time_col] if time_col else [])


def plan_bins(sizes: Sequence[int], target_bytes: int) -> list[list[int]]:
    """Group small files (indices into ``sizes``) into bins of about ``target_bytes`` each.

    Files of at least 3/4 of the target are left alone. Files are taken in order, so a bin
    holds neighbours (similar age); a bin of a single file is dropped (rewriting one file
    into one file gains nothing), except that the last bin's leftovers join the previous bin.
    """
    small = [i for i, s in enumerate(sizes) if s < target_bytes * 3 // 4]
    bins: list[list[int]] = []
    current: list[int] = []
    total = 0
    for i in small:
        current.append(i)
        total += sizes[i]
        if total >= target_bytes:
            bins.append(current)
            current, total = [], 0
    if len(current) >= 2:
        bins.append(current)
    elif current and bins:
        bins[-1].extend(current)
    return [b for b in bins if len(b) >= 2]


def _position(table: Table) -> dict[str, str]:
    """The :data:`POSITION_KEYS` of the newest summary (walking back) that holds each."""
    from pyiceberg.table.snapshots import ancestors_of

    found: dict[str, str] = {}
    for snap in ancestors_of(table.current_snapshot(), table.metadata):
        summary = snap.summary
        for key in POSITION_KEYS:
            if key not in found and summary is not None and summary.get(key) is not None:
                found[key] = str(summary.get(key))
        if len(found) == len(POSITION_KEYS):
            break
    return found


def _read_bin(table: Table, tasks: Sequence[FileScanTask]) -> pa.Table:
    """The rows of some data files in the table's current schema (older files gain new columns as nulls)."""
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.io.pyarrow import ArrowScan

    return ArrowScan(table.metadata, table.io, table.schema(), AlwaysTrue()).to_table(tasks)


def _write_sorted(table: Table, storage: LakeStorage, rows: pa.Table) -> DataFile:
    """Write rows sorted by :func:`sort_columns` as one Parquet file with field ids; its DataFile."""
    import pyarrow.parquet as pq
    from pyiceberg.io.pyarrow import parquet_file_to_data_file, schema_to_pyarrow

    keys = sort_columns(rows.column_names)
    if keys:
        rows = rows.sort_by([(k, "ascending") for k in keys])
    target = schema_to_pyarrow(table.schema())  # carries the field ids
    rows = rows.select(target.names).cast(target)
    uri = f"{table.location().rstrip('/')}/data/compact-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex}.parquet"
    path = storage.path(uri)
    storage.fs.create_dir(posixpath.dirname(path), recursive=True)
    pq.write_table(rows, path, filesystem=storage.fs, compression="zstd", row_group_size=1_000_000)
    return parquet_file_to_data_file(table.io, table.metadata, uri)


def _rewrite(table: Table, storage: LakeStorage, target_bytes: int) -> tuple[list[DataFile], list[DataFile]]:
    """Write the current snapshot's small files, bin by bin, as sorted files: (inputs, outputs)."""
    tasks = [t for t in table.scan().plan_files() if not t.delete_files]
    bins = plan_bins([t.file.file_size_in_bytes for t in tasks], target_bytes)
    written: list[DataFile] = []
    try:
        for b in bins:
            written.append(_write_sorted(table, storage, _read_bin(table, [tasks[i] for i in b])))
    except BaseException:
        _delete(storage, written)
        raise
    return [tasks[i].file for b in bins for i in b], written


def _delete(storage: LakeStorage, files: Iterable[DataFile]) -> None:
    for f in files:
        storage.delete(f.file_path)


def compact_table(
    load: Callable[[], Table], storage: LakeStorage, target_bytes: int, report: MaintainReport
) -> None:
    """Rewrite the small data files of the current snapshot into sorted files of about ``target_bytes``.

    The commit deletes the input files by name and adds the new ones. When it loses to a
    concurrent writer, the fresh table is checked: if every input file is still there
    (others only appended), the same new files are committed again on top; if one is gone
    (another compaction, an ETL rewrite), the new files are deleted and it plans again.

    Raises:
        TransientError: Still losing to concurrent writers after 10 attempts (nothing changed).
    """
    from pyiceberg.exceptions import CommitFailedException, ValidationException

    table = load()
    old, written = _rewrite(table, storage, target_bytes)
    for attempt in range(_ATTEMPTS):
        if not old:
            return
        props = {**_position(table), MAINTAIN_PROP: "compact"}
        try:
            with table.transaction() as tx, tx.update_snapshot(snapshot_properties=props).overwrite() as ow:
                for f in old:
                    ow.delete_data_file(f)
                for f in written:
                    ow.append_data_file(f)
        except (CommitFailedException, ValidationException):
            report.commit_retries += 1
            time.sleep(min(0.02 * 2**attempt, 1.0))
            table = load()
            live = {t.file.file_path for t in table.scan().plan_files()}
            if not all(f.file_path in live for f in old):
                _delete(storage, written)
                old, written = _rewrite(table, storage, target_bytes)
            continue
        report.files_rewritten += len(old)
        report.files_written += len(written)
        report.rows_rewritten += sum(f.record_count for f in old)
        report.steps.append("compact")
        return
    _delete(storage, written)
    raise TransientError(
        f"compacting {report.table}: still conflicting after {_ATTEMPTS} attempts; try again"
    )


def expire_snapshots(load: Callable[[], Table], retain_s: float, report: MaintainReport) -> None:
    """Expire the snapshots older than ``retain_s`` (never the current one); retried on conflicts
    and when a concurrent expiry removed some of them first (:func:`lost_expiry_race`).

    Raises:
        TransientError: Still losing to concurrent writers after 10 attempts.
    """
    from pyiceberg.exceptions import CommitFailedException

    cutoff_ms = int((time.time() - retain_s) * 1000)
    for attempt in range(_ATTEMPTS):
        table = load()
        current = table.current_snapshot()
        ids = [
            s.snapshot_id
            for s in table.metadata.snapshots
            if s.timestamp_ms < cutoff_ms and (current is None or s.snapshot_id != current.snapshot_id)
        ]
        if not ids:
            return
        try:
            table.maintenance.expire_snapshots().by_ids(ids).commit()
        except (CommitFailedException, ValueError) as e:
            if isinstance(e, ValueError) and not lost_expiry_race(e):
                raise
            report.commit_retries += 1
            time.sleep(min(0.05 * 2**attempt, 2.0))
            continue
        report.snapshots_expired += len(ids)
        report.steps.append("expire")
        return
    raise TransientError(
        f"expiring snapshots of {report.table}: still conflicting after {_ATTEMPTS} attempts"
    )


def lost_expiry_race(error: ValueError) -> bool:
    """Whether pyiceberg's ``ValueError`` means a snapshot to expire was already removed.

    Expiry commits carry no requirement, so the catalog applies them to its current
    metadata: when a concurrent expiry (another ``maintain``, a sink's) removed one of the
    snapshots since this table was loaded, pyiceberg raises ``ValueError: Snapshot with
    snapshot id … does not exist`` instead of a commit conflict. Like a lost commit, it
    only means: reload and plan again.
    """
    text = str(error)
    return text.startswith("Snapshot with") and "does not exist" in text


def referenced_files(table: Table) -> set[str]:
    """Every file a live snapshot or the metadata references: data files, manifests, manifest
    lists, statistics and the metadata files of the log."""
    refs: set[str] = {table.metadata_location}
    refs.update(entry.metadata_file for entry in table.metadata.metadata_log)
    refs.update(s.statistics_path for s in table.metadata.statistics)
    seen_manifests: set[str] = set()
    for snap in table.metadata.snapshots:
        refs.add(snap.manifest_list)
        for manifest in snap.manifests(table.io):
            if manifest.manifest_path in seen_manifests:
                continue
            seen_manifests.add(manifest.manifest_path)
            refs.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                refs.add(entry.data_file.file_path)
    return refs


def remove_orphans(table: Table, storage: LakeStorage, orphan_age_s: float, report: MaintainReport) -> None:
    """Delete files under the table's folder that nothing references and that are older than
    ``orphan_age_s``, and ``.tmp-*`` leftovers as old.

    The table is loaded *after* the file listing: a file committed between the two is then
    referenced, and one written after the listing is not considered at all.
    """
    listed = _list_all(storage, table.location().rstrip("/"))
    fresh = table.refresh()
    refs = referenced_files(fresh)
    cutoff_ns = int((time.time() - orphan_age_s) * 1e9)
    for entry in listed:
        if entry.uri in refs or not entry.mtime_ns or entry.mtime_ns > cutoff_ns:
            continue
        storage.delete(entry.uri)
        report.orphans_removed += 1
        report.bytes_removed += entry.size
    if report.orphans_removed:
        report.steps.append("remove-orphans")


def _list_all(storage: LakeStorage, root: str) -> list[FileEntry]:
    """Every file below ``root``, hidden ones included (``.tmp-*``), unlike :meth:`LakeStorage.list_files`."""
    import pyarrow.fs as pafs

    base = storage.path(root)
    if storage.fs.get_file_info(base).type == pafs.FileType.NotFound:
        return []
    infos = storage.fs.get_file_info(pafs.FileSelector(base, recursive=True))
    return [
        FileEntry(storage.to_uri(i.path), i.size or 0, i.mtime_ns or 0)
        for i in infos
        if i.type == pafs.FileType.File
    ]


def _sweep_tmp(storage: LakeStorage, root: str, orphan_age_s: float) -> tuple[int, int]:
    """Delete ``.tmp-*`` files (atomic writes a crash interrupted) under ``root`` older than the grace period."""
    cutoff_ns = int((time.time() - orphan_age_s) * 1e9)
    count = size = 0
    for entry in _list_all(storage, root):
        if posixpath.basename(entry.uri).startswith(".tmp-") and 0 < entry.mtime_ns <= cutoff_ns:
            storage.delete(entry.uri)
            count += 1
            size += entry.size
    return count, size


def maintain(
    settings: Settings,
    tables: Iterable[str] | None = None,
    options: MaintainOptions | None = None,
    on_table: Callable[[str], None] | None = None,
) -> list[MaintainReport]:
    """Compact, expire and clean the given tables (every curated table that exists by default).

    Also sweeps ``.tmp-*`` leftovers from the raw zone when every table is maintained.

    Raises:
        NotFoundError: A named table does not exist.
        TransientError: A commit kept losing to concurrent writers (nothing is half done).
    """
    from pyiceberg.exceptions import NoSuchTableError

    from tickerlake.lake.catalog import load_table, open_catalog
    from tickerlake.lake.contract import LakeLayout

    options = options or MaintainOptions()
    catalog = open_catalog(settings)
    storage = LakeStorage(settings)
    names = list(tables) if tables is not None else list(TABLES)
    reports: list[MaintainReport] = []
    for name in names:
        try:
            table = load_table(catalog, name)
        except NoSuchTableError:
            if tables is not None:
                raise NotFoundError(f"no table {name!r}: run `tickerlake tables` to list them") from None
            continue
        if on_table:
            on_table(name)
        t0 = time.monotonic()
        report = MaintainReport(table=name)
        report.files_before = len(list(table.scan().plan_files()))

        def load(name: str = name) -> Table:
            return load_table(catalog, name)

        if options.compact:
            compact_table(load, storage, options.target_bytes, report)
        if options.expire:
            expire_snapshots(load, options.retain_s, report)
        if options.remove_orphans:
            remove_orphans(load(), storage, options.orphan_age_s, report)
        report.files_after = len(list(load().scan().plan_files()))
        report.seconds = round(time.monotonic() - t0, 3)
        reports.append(report)
    if tables is None and options.remove_orphans and reports:
        # The lake's own atomic writes (raw files, the crawler's registry) leave .tmp-* files
        # when a process dies mid-write; the state folder (services' data) is not swept.
        layout = LakeLayout.of(settings)
        for root in (layout.raw_zone, layout.catalog_file()):
            count, size = _sweep_tmp(storage, root, options.orphan_age_s)
            reports[0].orphans_removed += count
            reports[0].bytes_removed += size
    return reports
