"""The crawler (Glue crawler's job): raw zone → raw tables in the registry, with a change report.

Each first-level folder of ``raw/`` is a dataset. New or changed files are sniffed with
DuckDB (format by suffix, types from a sample, Hive ``key=value`` folders as partitions),
merged into the dataset's schema with widening (:mod:`tickerlake.lake.inference`) and the
registry is updated. Unchanged files are not read again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from tickerlake.config import Settings
from tickerlake.errors import NotFoundError
from tickerlake.lake.catalog import RawTable, list_raw_tables, save_raw_tables
from tickerlake.lake.contract import LakeLayout, duck_path, file_key, sql_ident, sql_literal
from tickerlake.lake.duck import connect
from tickerlake.lake.inference import (
    FileSchema,
    TableChange,
    classify_format,
    diff_tables,
    merge_schemas,
    normalize_type,
    parse_partitions,
)
from tickerlake.lake.storage import FileEntry

__all__ = ["CrawlReport", "crawl", "crawled_files", "last_crawl_report", "raw_changed", "scan_raw_zone"]

_SAMPLE_ROWS = 20_000


@dataclass
class CrawlReport:
    """Outcome of one crawl.

    Attributes:
        started_at: ISO timestamp.
        tables: Per-table changes.
        files_scanned: Files sniffed in this crawl (new or changed).
        files_total: Data files in the raw zone.
    """

    started_at: str
    tables: list[TableChange] = field(default_factory=list)
    files_scanned: int = 0
    files_total: int = 0

    @property
    def changed(self) -> bool:
        """Whether any table changed."""
        return any(t.status != "unchanged" for t in self.tables)


def scan_raw_zone(settings: Settings) -> dict[str, list[FileEntry]]:
    """Data files of each raw dataset, by dataset name.

    Raises:
        NotFoundError: The lake has no raw zone yet (nothing was ever ingested).
    """
    layout = LakeLayout.of(settings)
    raw = layout.raw_zone
    if not layout.storage.exists(raw):
        raise NotFoundError(f"no raw zone at {raw}: ingest data first (tickerlake ingest sim|csv|yahoo)")
    out: dict[str, list[FileEntry]] = {}
    for entry in layout.storage.list_files(raw):
        dataset = layout.dataset_of(entry.uri)
        if dataset is not None:  # files directly under raw/ belong to no dataset
            out.setdefault(dataset, []).append(entry)
    return out


def _fingerprint(entries: list[FileEntry]) -> str:
    h = hashlib.sha256()
    for e in entries:
        h.update(f"{e.uri}|{file_key(e)}\n".encode())
    return h.hexdigest()[:32]


def raw_changed(settings: Settings) -> bool:
    """Whether the raw zone differs from what the last crawl registered."""
    registered = list_raw_tables(settings)
    current = scan_raw_zone(settings)
    if set(registered) != set(current):
        return True
    return any(_fingerprint(current[n]) != registered[n].fingerprint for n in current)


def _read_state(layout: LakeLayout) -> dict[str, dict[str, str]]:
    """The crawler's record: per raw table, each crawled file's URI and :func:`file_key`."""
    uri = layout.crawl_state
    return json.loads(layout.storage.read_bytes(uri)) if layout.storage.exists(uri) else {}


def crawled_files(settings: Settings) -> dict[str, frozenset[str]] | None:
    """The files each raw table was registered from by the last crawl, by table name.

    Other files in a dataset's folder (ones the crawl rejected, or that landed since)
    are not part of the table; readers of raw tables read exactly these.

    Returns:
        URIs per raw table; None when the record cannot be read (then a reader can only
        take every file in the folder).
    """
    try:
        state = _read_state(LakeLayout.of(settings))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict):
        return None
    return {
        str(name): frozenset(str(u) for u in files)
        for name, files in state.items()
        if isinstance(files, dict)
    }


def _sniff(con, uri: str, fmt: str, path: str) -> FileSchema:
    """Column names, types and null presence of one file, from a sample."""
    source = sql_literal(path)
    reader = {
        "csv": f"read_csv({source}, sample_size={_SAMPLE_ROWS}, hive_partitioning=false)",
        "jsonl": (
            f"read_json({source}, format='newline_delimited', sample_size={_SAMPLE_ROWS}, hive_partitioning=false)"
        ),
        "parquet": f"read_parquet({source}, hive_partitioning=false)",
    }[fmt]
    described = con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()
    names = [r[0] for r in described]
    if not names:
        raise ValueError("no columns")
    nulls = ", ".join(f"count(*) - count({sql_ident(n)})" for n in names)
    counts = con.execute(f"SELECT {nulls} FROM (SELECT * FROM {reader} LIMIT {_SAMPLE_ROWS})").fetchone()
    return FileSchema(
        uri, tuple((n, normalize_type(t), bool(c)) for (n, t, *_), c in zip(described, counts, strict=True))
    )


def crawl(settings: Settings, on_file: Callable[[int, int], None] | None = None) -> CrawlReport:
    """Crawl the raw zone and update the raw-table registry.

    Args:
        settings: Runtime settings.
        on_file: Progress callback ``(files done, files to sniff)``.

    Returns:
        The crawl report, also saved as ``catalog/last_crawl.json``.
    """
    layout = LakeLayout.of(settings)
    storage = layout.storage
    started = dt.datetime.now(dt.UTC)
    report = CrawlReport(started_at=started.isoformat(timespec="seconds"))
    registry = list_raw_tables(settings)
    state = _read_state(layout)
    datasets = scan_raw_zone(settings)
    report.files_total = sum(len(v) for v in datasets.values())

    todo: list[tuple[str, FileEntry]] = []
    for name, entries in datasets.items():
        known = state.get(name, {})
        todo += [(name, e) for e in entries if known.get(e.uri) != file_key(e)]
    sniffed: dict[str, list[FileSchema]] = {}
    problems: dict[str, list[str]] = {}
    con = connect(settings, extensions=()) if todo else None
    for i, (name, entry) in enumerate(todo):
        fmt = classify_format(entry.uri)
        if fmt is None:
            problems.setdefault(name, []).append(f"{entry.uri}: not a csv, jsonl or parquet file")
        elif entry.size == 0:
            problems.setdefault(name, []).append(f"{entry.uri}: empty file")
        else:
            try:
                sniffed.setdefault(name, []).append(
                    _sniff(con, entry.uri, fmt, duck_path(settings, entry.uri))
                )
            except Exception as e:  # a bad file is reported, the crawl goes on
                problems.setdefault(name, []).append(f"{entry.uri}: {str(e).splitlines()[0]}")
        if on_file:
            on_file(i + 1, len(todo))
    report.files_scanned = len(todo)

    new_registry: dict[str, RawTable] = {}
    new_state: dict[str, dict[str, str]] = {}
    now = started.isoformat(timespec="seconds")
    for name, entries in sorted(datasets.items()):
        old = registry.get(name)
        bad = {p.split(": ", 1)[0] for p in problems.get(name, [])}
        good = [e for e in entries if e.uri not in bad]
        formats = Counter(f for e in good if (f := classify_format(e.uri)))
        if not formats:
            report.tables.append(TableChange(name, "unreadable", problems=problems.get(name, [])))
            continue
        fmt = formats.most_common(1)[0][0]
        mixed = [e.uri for e in good if classify_format(e.uri) != fmt]
        extra_problems = [f"{u}: {classify_format(u)} file in a {fmt} dataset, not registered" for u in mixed]
        files = [s for s in sniffed.get(name, []) if classify_format(s.uri) == fmt]
        base = old.columns if old and old.format == fmt else []
        columns = merge_schemas(base, files)
        ds_uri = layout.dataset(name)
        part_maps = [parse_partitions(e.uri[len(ds_uri) :].lstrip("/")) for e in good]
        keys: list[str] = []
        for m in part_maps:
            keys += [k for k in m if k not in keys]
        partitions = sorted({"/".join(f"{k}={m[k]}" for k in keys if k in m) for m in part_maps if m})
        old_keys = set(state.get(name, {}))
        current_keys = {e.uri for e in good}
        added = sum(1 for e in good if state.get(name, {}).get(e.uri) != file_key(e))
        removed = len(old_keys - current_keys)
        table = RawTable(
            name=name,
            location=ds_uri,
            format=fmt,
            columns=columns,
            partition_keys=keys,
            partitions=partitions,
            files=len(good),
            size_bytes=sum(e.size for e in good),
            fingerprint=_fingerprint(entries),
            updated_at=old.updated_at if old else now,
        )
        change = diff_tables(old, table, added, removed)
        change.problems = problems.get(name, []) + extra_problems
        if change.status != "unchanged":
            table.updated_at = now
        new_registry[name] = table
        new_state[name] = {e.uri: file_key(e) for e in good if classify_format(e.uri) == fmt}
        report.tables.append(change)
    for name in sorted(set(registry) - set(datasets)):
        report.tables.append(TableChange(name, "removed"))

    save_raw_tables(settings, new_registry)
    storage.write_bytes(layout.crawl_state, json.dumps(new_state).encode())
    payload = json.dumps(asdict(report) | {"changed": report.changed}, indent=1).encode()
    storage.write_bytes(layout.last_crawl, payload)
    storage.write_bytes(layout.crawl_report(started.strftime("%Y%m%dT%H%M%S%fZ")), payload)
    return report


def last_crawl_report(settings: Settings) -> dict | None:
    """The last crawl's report as saved, or None before the first crawl."""
    layout = LakeLayout.of(settings)
    uri = layout.last_crawl
    return json.loads(layout.storage.read_bytes(uri)) if layout.storage.exists(uri) else None
