"""The read-only SQL engine (the Athena of tickerlake): DuckDB over the lake's catalog.

One in-memory DuckDB database per lake holds a view for every table, with the names of
the catalog as schemas, like Athena: ``market.daily_bars`` (Iceberg, through
``iceberg_scan`` of the table's current metadata file), ``stream.ticks`` and
``raw.<dataset>`` (the crawler's raw tables, over the files with the crawled column types).

Read-only by construction, in two independent walls:

1. :func:`tickerlake.query.guard.check_sql` lets through one read statement at a time and
   no function that changes state or runs hidden SQL;
2. the connection itself is locked after set-up: external access off except for the
   lake's folder (and any table location outside it), no extension auto-loading, no Python object
   scans, configuration locked so no statement can undo any of it.

Extensions (iceberg, avro, httpfs for S3 lakes) are loaded from the pinned
``duckdb-extension-*`` packages; nothing is downloaded. Engines are cached per settings and
refresh their views only when the catalog changed, so creating one per web request is cheap.
Every query has a wall-clock timeout and a row limit.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import getpass
import hashlib
import json
import math
import posixpath
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from pyiceberg import types as ice
from pyiceberg.table import Table as IcebergTable

from tickerlake.config import Settings
from tickerlake.errors import QueryRefused, TickerlakeError
from tickerlake.lake.catalog import RawTable, catalog_fingerprint, list_raw_tables, open_catalog
from tickerlake.lake.duck import extension_path
from tickerlake.lake.storage import LakeStorage, duckdb_s3_statements
from tickerlake.query.guard import QueryError, check_sql, one_line
from tickerlake.query.named import bind_params, get_named

__all__ = [
    "MAX_RESULT_BYTES",
    "ColumnInfo",
    "QueryEngine",
    "QueryError",
    "QueryResult",
    "QueryTimeout",
    "QueryTooLarge",
    "SnapshotInfo",
    "TableInfo",
    "clear_engines",
    "extension_path",
    "get_engine",
    "jsonable",
    "list_tables",
    "run_named",
    "run_query",
    "table_history",
    "unique_names",
]

#: Schemas that always exist, so that a missing table is reported as such.
BASE_SCHEMAS: tuple[str, ...] = ("market", "stream", "raw")

# Catalogs that cannot be checked by a cheap local file signature are re-listed at most
# this often; a web request in between sees views at most this old.
_REMOTE_REFRESH_S = 2.0
_BATCH_ROWS = 2048
#: Most bytes of Arrow data a query may return. The row limit alone does not bound an
#: answer (one row of ``repeat('x', 10**9)`` is a gigabyte, and the web API then builds a
#: JSON copy of it), so a few such queries at once could exhaust the server's memory.
MAX_RESULT_BYTES = 64 * 1024 * 1024
# The crawler's registry of raw tables, and its record of the files each was crawled from.
_RAW_REGISTRY = ("catalog", "raw_tables.json")
_CRAWL_STATE = ("catalog", "crawl_state.json")
_SAFE_TYPE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_ ,()[]")
_RAW_EXTENSIONS = {
    "csv": ("csv", "csv.gz", "csv.zst", "tsv", "txt"),
    "jsonl": ("jsonl", "json", "ndjson", "jsonl.gz", "json.gz", "ndjson.gz"),
    "parquet": ("parquet",),
}


class QueryTimeout(QueryError):
    """A query that ran longer than the time limit and was interrupted."""


class QueryTooLarge(QueryError):
    """A query whose answer is larger than :data:`MAX_RESULT_BYTES`."""


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class QueryResult:
    """The result of one query.

    Attributes:
        columns: Column names in order (DuckDB may repeat a name).
        types: DuckDB type of each column (``VARCHAR``, ``DATE``, ``DOUBLE``...).
        table: The rows as an Arrow table (at most the row limit).
        row_count: Rows returned (after truncation).
        truncated: Whether the query had more rows than the limit.
        elapsed_ms: Wall-clock time of execution and fetch.
        sql: The statement that ran.
    """

    columns: list[str]
    types: list[str]
    table: pa.Table
    row_count: int
    truncated: bool
    elapsed_ms: float
    sql: str = ""

    def rows(self) -> list[tuple[Any, ...]]:
        """Rows as tuples of Python values (dates, datetimes, Decimals as DuckDB gives them)."""
        columns = [c.to_pylist() for c in self.table.columns]
        return list(zip(*columns, strict=True)) if columns else []

    def records(self) -> list[dict[str, Any]]:
        """Rows as JSON-ready dicts keyed by unique column names (``a``, ``a_2`` for repeats)."""
        names = unique_names(self.columns)
        return [{n: jsonable(v) for n, v in zip(names, row, strict=True)} for row in self.rows()]

    def summary(self) -> dict[str, Any]:
        """Metadata without the rows (for APIs and logs)."""
        return {
            "columns": self.columns,
            "types": self.types,
            "row_count": self.row_count,
            "truncated": self.truncated,
            "elapsed_ms": round(self.elapsed_ms, 3),
        }


def unique_names(columns: Sequence[str]) -> list[str]:
    """Column names made unique by suffixing repeats with ``_2``, ``_3``..."""
    seen: dict[str, int] = {}
    taken = set(columns)
    out = []
    for name in columns:
        if name not in seen:
            seen[name] = 1
            out.append(name)
            continue
        n = seen[name]
        candidate = name
        while candidate in taken:
            n += 1
            candidate = f"{name}_{n}"
        seen[name] = n
        taken.add(candidate)
        out.append(candidate)
    return out


def jsonable(value: Any) -> Any:
    """A query value as a JSON-ready value (ISO dates, floats for decimals, None for NaN)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, decimal.Decimal):
        # Whole decimals (sums of BIGINT are HUGEINT, which Arrow carries as decimal) stay exact.
        if value.is_finite() and value == value.to_integral_value():
            return int(value)
        return float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, pa.MonthDayNano):
        # DuckDB INTERVAL: months and days do not have a fixed length, so keep all three.
        seconds = value.nanoseconds / 1e9
        return f"P{value.months}M{value.days}DT{seconds:g}S"

    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)


# --------------------------------------------------------------------------- catalog info


@dataclass
class ColumnInfo:
    """A column of a table.

    Attributes:
        name: Column name.
        type: DuckDB type as seen in SQL.
        nullable: Whether the column may hold NULL.
        partition: Whether it is a Hive partition key of a raw table.
    """

    name: str
    type: str
    nullable: bool = True
    partition: bool = False


@dataclass
class TableInfo:
    """A table queryable in SQL, as the ``tables`` command and the catalog page show it.

    Attributes:
        name: Qualified SQL name (``market.daily_bars``, ``raw.daily_bars``).
        kind: ``iceberg`` (curated or stream) or ``raw`` (crawled files).
        format: ``iceberg``, ``csv``, ``jsonl`` or ``parquet``.
        location: Table or dataset folder URI.
        columns: Columns in order.
        row_count: Rows (Iceberg: from the current snapshot summary; raw: ``count(*)``);
            None when not computed or not readable.
        snapshot_count: Iceberg snapshots (0 for raw tables).
        current_snapshot_id: Iceberg current snapshot (None when empty or raw).
        last_updated: ISO timestamp of the last change (commit or crawl).
        partition_keys: Partition fields (Iceberg transforms or Hive keys).
        partitions: Raw partition values seen by the crawler (``key=value/...``).
        files: Data files.
        size_bytes: Total size of the data files.
        error: Why the table could not be read, if it could not.
    """

    name: str
    kind: str
    format: str
    location: str
    columns: list[ColumnInfo]
    row_count: int | None = None
    snapshot_count: int = 0
    current_snapshot_id: int | None = None
    last_updated: str = ""
    partition_keys: list[str] = field(default_factory=list)
    partitions: list[str] = field(default_factory=list)
    files: int = 0
    size_bytes: int = 0
    error: str | None = None


@dataclass
class SnapshotInfo:
    """One Iceberg snapshot (a commit) of a table.

    Attributes:
        snapshot_id: Snapshot id.
        parent_id: Parent snapshot id.
        timestamp: Commit time, ISO UTC.
        operation: ``append``, ``overwrite``, ``delete``...
        summary: The snapshot summary (added/total records and files...).
        current: Whether it is the table's current snapshot.
    """

    snapshot_id: int
    parent_id: int | None
    timestamp: str
    operation: str
    summary: dict[str, str]
    current: bool


# --------------------------------------------------------------------------- helpers


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _duck_path(settings: Settings, uri: str) -> str:
    """A lake URI as DuckDB reads it (plain paths for local lakes)."""
    if settings.is_local and uri.startswith("file://"):
        return uri.removeprefix("file://")
    return uri


def _safe_type(type_name: str) -> str:
    """A registry type name, or VARCHAR when it is not a plain type expression."""
    cleaned = type_name.strip()
    if cleaned and set(cleaned) <= _SAFE_TYPE and cleaned.count("(") == cleaned.count(")"):
        return cleaned.upper()
    return "VARCHAR"


def iceberg_to_duckdb_type(kind: ice.IcebergType) -> str:
    """The DuckDB type name that ``iceberg_scan`` gives an Iceberg type."""
    simple: list[tuple[type, str]] = [
        (ice.StringType, "VARCHAR"),
        (ice.DateType, "DATE"),
        (ice.DoubleType, "DOUBLE"),
        (ice.FloatType, "FLOAT"),
        (ice.LongType, "BIGINT"),
        (ice.IntegerType, "INTEGER"),
        (ice.BooleanType, "BOOLEAN"),
        (ice.TimestamptzType, "TIMESTAMP WITH TIME ZONE"),
        (ice.TimestampType, "TIMESTAMP"),
        (ice.TimeType, "TIME"),
        (ice.UUIDType, "UUID"),
        (ice.BinaryType, "BLOB"),
        (ice.FixedType, "BLOB"),
    ]
    for cls, name in simple:
        if isinstance(kind, cls):
            return name
    if isinstance(kind, ice.DecimalType):
        return f"DECIMAL({kind.precision},{kind.scale})"
    if isinstance(kind, ice.ListType):
        return f"{iceberg_to_duckdb_type(kind.element_type)}[]"
    if isinstance(kind, ice.MapType):
        return f"MAP({iceberg_to_duckdb_type(kind.key_type)}, {iceberg_to_duckdb_type(kind.value_type)})"
    if isinstance(kind, ice.StructType):
        inner = ", ".join(f"{_ident(f.name)} {iceberg_to_duckdb_type(f.field_type)}" for f in kind.fields)
        return f"STRUCT({inner})"
    return "VARCHAR"


def _outside_message(message: str, allowed: Sequence[str]) -> str:
    """The refusal for a file access that the locked connection stopped."""
    match = re.search(r'Cannot access (?:file|directory) "([^"]*)"', message)
    what = f"cannot read {match.group(1)!r}" if match else "cannot access that file"
    return f"refused: {what}: queries may only read files inside the lake ({', '.join(allowed)})"


def _iso_ms(ms: int | None) -> str:
    if not ms:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- catalog state


@dataclass(frozen=True)
class _Entry:
    """One view to create: its SQL and what the catalog says about the table."""

    schema: str
    name: str
    view_sql: str
    allowed_prefix: str
    info: TableInfo = dataclasses.field(compare=False, hash=False)
    iceberg: IcebergTable | None = dataclasses.field(default=None, compare=False, hash=False)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


def _empty_view(columns: Sequence[ColumnInfo]) -> str:
    cols = ", ".join(f"CAST(NULL AS {c.type}) AS {_ident(c.name)}" for c in columns) or "NULL AS empty"
    return f"SELECT {cols} WHERE false"


def _failing_view(columns: Sequence[ColumnInfo], message: str) -> str:
    """A view with the table's columns that raises ``message`` when read (never a silent empty)."""
    cols = ", ".join(f"CAST(NULL AS {c.type}) AS {_ident(c.name)}" for c in columns) or "NULL AS empty"
    # In the WHERE clause the error cannot be optimised away as an unused column would be.
    return f"SELECT {cols} WHERE error({_literal(message)}) IS NULL"


def _iceberg_entry(settings: Settings, schema: str, name: str, table: IcebergTable) -> _Entry:
    metadata = table.metadata
    columns = [
        ColumnInfo(f.name, iceberg_to_duckdb_type(f.field_type), nullable=not f.required)
        for f in table.schema().fields
    ]
    snapshot = table.current_snapshot()
    summary = snapshot.summary if snapshot is not None and snapshot.summary is not None else None
    fields = table.schema()

    def _int(key: str) -> int:
        try:
            return int(summary[key]) if summary is not None and summary.get(key) is not None else 0
        except ValueError:
            return 0

    partition_keys = []
    for pf in table.spec().fields:
        source = fields.find_column_name(pf.source_id) or pf.name
        transform = str(pf.transform)
        partition_keys.append(source if transform == "identity" else f"{transform}({source})")
    info = TableInfo(
        name=f"{schema}.{name}",
        kind="iceberg",
        format="iceberg",
        location=table.location(),
        columns=columns,
        row_count=_int("total-records") if snapshot is not None else 0,
        snapshot_count=len(metadata.snapshots),
        current_snapshot_id=snapshot.snapshot_id if snapshot is not None else None,
        last_updated=_iso_ms(metadata.last_updated_ms),
        partition_keys=partition_keys,
        files=_int("total-data-files"),
        size_bytes=_int("total-files-size"),
    )
    if snapshot is None:
        # iceberg_scan of a table without snapshots is not dependable across versions.
        view_sql = _empty_view(columns)
    else:
        view_sql = f"SELECT * FROM iceberg_scan({_literal(_duck_path(settings, table.metadata_location))})"
    prefix = _duck_path(settings, table.location()).rstrip("/") + "/"
    return _Entry(schema, name, view_sql, prefix, info, table)


def _raw_entry(
    settings: Settings, storage: LakeStorage, raw: RawTable, crawled: frozenset[str] | None = None
) -> _Entry:
    """The view of a raw table.

    Args:
        settings: Runtime settings.
        storage: The lake's storage.
        raw: The registered table.
        crawled: URIs of the files the crawler registered for it (None when unknown). When
            other files sit in the folder (ones the crawler rejected, or not crawled yet), the
            view reads exactly the registered ones instead of a glob.
    """
    partition_keys = list(raw.partition_keys)
    data_columns = [c for c in raw.columns if c.name not in partition_keys]
    columns = [ColumnInfo(c.name, _safe_type(c.type), c.nullable) for c in data_columns]
    columns += [ColumnInfo(k, "VARCHAR", True, partition=True) for k in partition_keys]
    info = TableInfo(
        name=f"raw.{raw.name}",
        kind="raw",
        format=raw.format,
        location=raw.location,
        columns=columns,
        last_updated=raw.updated_at,
        partition_keys=partition_keys,
        partitions=list(raw.partitions),
        files=raw.files,
        size_bytes=raw.size_bytes,
    )
    location = _duck_path(settings, raw.location).rstrip("/")
    wanted = _RAW_EXTENSIONS.get(raw.format, (raw.format,))
    present: set[str] = set()
    files: list[str] = []
    try:
        for entry in storage.list_files(raw.location):
            base = posixpath.basename(entry.uri).lower()
            matched = [ext for ext in wanted if base.endswith("." + ext)]
            if matched:
                present.update(matched)
                files.append(entry.uri)
    except OSError as e:
        info.error = f"cannot list {raw.location}: {e}"
    if crawled is not None and any(uri not in crawled for uri in files):
        chosen = [_duck_path(settings, uri) for uri in files if uri in crawled]
        if not chosen:
            present.clear()
        paths = "[" + ", ".join(_literal(p) for p in chosen) + "]"
    else:
        # Globs only for suffixes that exist: a glob that matches nothing is an error in
        # DuckDB. (No two suffixes overlap: *.csv never matches x.csv.gz.)
        paths = "[" + ", ".join(_literal(f"{location}/**/*.{e}") for e in sorted(present)) + "]"
    if not present or not columns:
        if info.error is None and not present:
            info.row_count = 0
        return _Entry("raw", raw.name, _empty_view(columns), location + "/", info)
    globs = paths
    hive = "true" if partition_keys else "false"
    hive_types = ""
    if partition_keys:
        hive_types = ", hive_types={" + ", ".join(f"{_literal(k)}: 'VARCHAR'" for k in partition_keys) + "}"
    select = ", ".join(_ident(c.name) for c in columns)
    typed = (
        "{" + ", ".join(f"{_literal(c.name)}: {_literal(c.type)}" for c in columns if not c.partition) + "}"
    )
    if raw.format == "csv":
        source = (
            f"read_csv({globs}, header=true, union_by_name=true, hive_partitioning={hive}{hive_types}, "
            f"types={typed})"
        )
    elif raw.format == "jsonl":
        source = (
            f"read_json({globs}, format='newline_delimited', columns={typed}, "
            f"hive_partitioning={hive}{hive_types})"
        )
    else:
        source = f"read_parquet({globs}, union_by_name=true, hive_partitioning={hive}{hive_types})"
        select = ", ".join(
            _ident(c.name) if c.partition else f"CAST({_ident(c.name)} AS {c.type}) AS {_ident(c.name)}"
            for c in columns
        )
    return _Entry("raw", raw.name, f"SELECT {select} FROM {source}", location + "/", info)


# --------------------------------------------------------------------------- the engine


class QueryEngine:
    """A locked-down DuckDB database with a view per catalog table.

    Use :func:`get_engine` to share one engine per lake; it is thread-safe: each query
    runs on its own cursor.

    Args:
        settings: Runtime settings (lake, timeouts, row limit, memory limit).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.storage = LakeStorage(settings)
        if settings.is_local and not self.storage.exists(settings.lake_uri):
            # Opening the catalog would create an empty lake at a mistyped path.
            raise TickerlakeError(f"no lake at {settings.lake_uri}: ingest data first or pass --lake")
        self._lock = threading.RLock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._allowed: tuple[str, ...] = ()
        self._entries: dict[str, _Entry] = {}
        self._signature: Any = None
        self._checked_at = 0.0
        self._catalog: Any = None
        self._raw_counts: dict[tuple[str, str], int] = {}
        self._raw_cache: dict[str, tuple[str, _Entry]] = {}
        self._registry_hash: Any = None
        self._registry_checked_at = -math.inf
        try:
            self.refresh(force=True)
        except (TickerlakeError, duckdb.Error):
            raise
        except Exception as e:
            raise TickerlakeError(
                f"cannot read the catalog of {settings.lake_uri}: {type(e).__name__}: {e}"
            ) from e

    # ---------------------------------------------------------------- set-up

    def _base_prefixes(self) -> list[str]:
        root = _duck_path(self.settings, self.settings.lake_uri).rstrip("/")
        # The whole lake: the ETL and the stream sink may keep data files anywhere under it.
        # The trailing slash keeps a sibling such as <lake>_old/ out.
        return [f"{root}/"]

    def _extension_directory(self, allowed: Sequence[str]) -> str:
        """Where DuckDB would install extensions: never ~/.duckdb, and outside the allowed
        folders, so that even an INSTALL that got past the guard fails before downloading."""
        candidates = [
            self.settings.local_state_dir / "duckdb" / "extensions",
            Path(tempfile.gettempdir()) / f"tickerlake-{getpass.getuser()}-duckdb" / "extensions",
        ]
        for candidate in candidates:
            if not any(f"{candidate}/".startswith(prefix) for prefix in allowed):
                return str(candidate)
        return str(candidates[-1])

    def _connect(self, allowed: Sequence[str]) -> duckdb.DuckDBPyConnection:
        state = self.settings.local_state_dir
        con = duckdb.connect(
            ":memory:",
            config={
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                # Extensions are loaded from their packages by path; nothing is ever installed.
                "extension_directory": self._extension_directory(allowed),
                "secret_directory": str(state / "duckdb" / "secrets"),
                "temp_directory": str(state / "duckdb" / "tmp"),
                "allow_persistent_secrets": False,
                "python_enable_replacements": False,
                "memory_limit": self.settings.duckdb_memory_limit,
            },
        )
        try:
            names = ["avro", "iceberg"] + ([] if self.settings.is_local else ["httpfs"])
            for name in names:
                con.execute(f"LOAD {_literal(str(extension_path(name)))}")
            con.execute("SET TimeZone = 'UTC'")
            for statement in duckdb_s3_statements(self.settings):
                con.execute(statement)
            for schema in BASE_SCHEMAS:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)}")
            con.execute(f"SET allowed_directories = [{', '.join(_literal(p) for p in allowed)}]")
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
        except BaseException:
            con.close()
            raise
        return con

    def _catalog_signature(self) -> Any:
        """A cheap fingerprint of the catalog state, or None when only re-listing can tell.

        The SQLite catalog (the default, also for S3 lakes) is a local file: its header's
        change counter moves on every commit. The raw-table registry is hashed (local lakes)
        or re-read at most every few seconds (object stores).
        """
        catalog = catalog_fingerprint(self.settings)
        if catalog is None:
            return None
        return (*catalog, self._registry_signature())

    def _registry_signature(self) -> Any:
        """Fingerprint of the raw-table registry and the crawler's file list."""
        now = time.monotonic()
        if not self.settings.is_local and now - self._registry_checked_at < _REMOTE_REFRESH_S:
            return self._registry_hash
        parts: list[Any] = []
        for rel in (_RAW_REGISTRY, _CRAWL_STATE):
            uri = self.storage.uri(*rel)
            try:
                if self.settings.is_local:
                    # Both files are replaced atomically, so a new inode marks every rewrite.
                    st = Path(_duck_path(self.settings, uri)).stat()
                    parts.append((st.st_ino, st.st_mtime_ns, st.st_size))
                else:
                    parts.append(hashlib.sha256(self.storage.read_bytes(uri)).hexdigest())
            except FileNotFoundError:
                parts.append(None)
        self._registry_hash, self._registry_checked_at = tuple(parts), now
        return self._registry_hash

    def _list_entries(self) -> dict[str, _Entry]:
        if self._catalog is None:
            self._catalog = open_catalog(self.settings)
        catalog = self._catalog
        entries: dict[str, _Entry] = {}
        for namespace in catalog.list_namespaces():
            schema = ".".join(namespace)
            for identifier in catalog.list_tables(namespace):
                table = catalog.load_table(identifier)
                entry = _iceberg_entry(self.settings, schema, identifier[-1], table)
                entries[entry.qualified] = entry
        raw_cache: dict[str, tuple[str, _Entry]] = {}
        crawled = self._crawled_files()
        for raw in list_raw_tables(self.settings).values():
            # Listing a raw dataset's files is the slow part: only redo it when the crawler
            # changed the table.
            files = crawled.get(raw.name) if crawled is not None else None
            key = json.dumps(
                [dataclasses.asdict(raw), sorted(files) if files is not None else None],
                sort_keys=True,
                default=str,
            )
            cached = self._raw_cache.get(raw.name)
            entry = cached[1] if cached is not None and cached[0] == key else None
            if entry is None:
                entry = _raw_entry(self.settings, self.storage, raw, files)
            raw_cache[raw.name] = (key, entry)
            entries[entry.qualified] = entry
        self._raw_cache = raw_cache
        return entries

    def _crawled_files(self) -> dict[str, frozenset[str]] | None:
        """The files each raw table was crawled from (the crawler's state), if readable."""
        uri = self.storage.uri(*_CRAWL_STATE)
        try:
            state = json.loads(self.storage.read_bytes(uri))
        except (OSError, ValueError):
            return None
        if not isinstance(state, dict):
            return None
        return {
            str(name): frozenset(str(u) for u in files)
            for name, files in state.items()
            if isinstance(files, dict)
        }

    def refresh(self, force: bool = False) -> bool:
        """Bring the views up to date with the catalog when it changed.

        Args:
            force: Re-list the catalog even when its signature did not change.

        Returns:
            Whether any view was created, replaced or dropped.
        """
        with self._lock:
            signature = self._catalog_signature()
            now = time.monotonic()
            if not force and self._con is not None:
                if signature is not None and signature == self._signature:
                    return False
                if signature is None and now - self._checked_at < _REMOTE_REFRESH_S:
                    return False
            entries = self._list_entries()
            allowed = self._base_prefixes()
            for entry in entries.values():
                if not any(entry.allowed_prefix.startswith(p) for p in allowed):
                    allowed.append(entry.allowed_prefix)
            changed = False
            if self._con is None or not set(allowed) <= set(self._allowed):
                # Allowed folders are locked into the connection: a new one needs a new connection.
                # The old connection is dropped, not closed: queries running on its cursors finish.
                self._con = self._connect(allowed)
                self._allowed = tuple(allowed)
                self._entries = {}
                changed = True
            con = self._con
            for qualified in set(self._entries) - set(entries):
                entry = self._entries.pop(qualified)
                con.execute(f"DROP VIEW IF EXISTS {_ident(entry.schema)}.{_ident(entry.name)}")
                changed = True
            for qualified, entry in entries.items():
                old_entry = self._entries.get(qualified)
                if old_entry is not None and old_entry.view_sql == entry.view_sql:
                    entry.info.error = entry.info.error or old_entry.info.error
                    self._entries[qualified] = entry
                    continue
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(entry.schema)}")
                view = f"{_ident(entry.schema)}.{_ident(entry.name)}"
                try:
                    con.execute(f"CREATE OR REPLACE VIEW {view} AS {entry.view_sql}")
                except duckdb.Error as e:
                    # One unreadable table must not take the others down: it stays listed, and
                    # reading it raises the reason instead of looking empty.
                    entry.info.error = one_line(str(e).strip().splitlines()[0])
                    failing = _failing_view(
                        entry.info.columns, f"{qualified} cannot be read: {entry.info.error}"
                    )
                    con.execute(f"CREATE OR REPLACE VIEW {view} AS {failing}")
                self._entries[qualified] = entry
                changed = True
            self._signature = signature
            self._checked_at = now
            return changed

    def _refresh_or_keep(self) -> None:
        """Refresh, or keep serving the current views when the catalog cannot be read now
        (e.g. SQLite busy during a commit); the next query tries again."""
        try:
            self.refresh()
        except Exception:
            if self._con is None:
                raise

    def close(self) -> None:
        """Close the DuckDB connection."""
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    # ---------------------------------------------------------------- queries

    def query(
        self,
        sql: str,
        params: Mapping[str, Any] | Sequence[Any] | None = None,
        *,
        limit: int | None = None,
        timeout_s: float | None = None,
    ) -> QueryResult:
        """Run one read-only statement.

        Args:
            sql: One SELECT-class statement (or EXPLAIN of one).
            params: Prepared-statement parameters: a mapping for ``$name``, a sequence for ``?``.
            limit: Maximum rows returned; None for ``settings.query_row_limit``, 0 or less
                for no limit.
            timeout_s: Wall-clock limit; None for ``settings.query_timeout_s``, 0 or less for none.

        Returns:
            The result, truncated to the limit (``truncated`` says so).

        Raises:
            QueryRefused: Not read-only, or touching files outside the lake.
            QueryTimeout: Interrupted at the time limit.
            QueryError: Any other SQL error (syntax, unknown table, type error...).
        """
        checked = check_sql(sql)
        limit = self.settings.query_row_limit if limit is None else limit
        timeout_s = self.settings.query_timeout_s if timeout_s is None else timeout_s
        with self._lock:
            self._refresh_or_keep()
            assert self._con is not None
            cursor = self._con.cursor()
        fired = threading.Event()

        def _interrupt() -> None:
            fired.set()
            cursor.interrupt()

        timer = threading.Timer(timeout_s, _interrupt) if timeout_s and timeout_s > 0 else None
        started = time.perf_counter()
        try:
            if timer is not None:
                timer.daemon = True
                timer.start()
            if params is None:
                cursor.execute(checked.sql)
            else:
                cursor.execute(checked.sql, params if isinstance(params, Mapping) else list(params))
            description = cursor.description or []
            reader = cursor.to_arrow_reader(_BATCH_ROWS)
            batches: list[pa.RecordBatch] = []
            rows = 0
            size = 0
            for batch in reader:
                if limit and limit > 0 and rows + batch.num_rows > limit:
                    # Rows past the limit are dropped anyway: do not count their bytes.
                    batch = batch.slice(0, limit + 1 - rows)
                batches.append(batch)
                rows += batch.num_rows
                size += batch.nbytes
                if size > MAX_RESULT_BYTES:
                    raise QueryTooLarge(
                        f"the answer is larger than {MAX_RESULT_BYTES // (1024 * 1024)} MB: "
                        "select fewer or smaller columns, or fewer rows"
                    )
                if limit and limit > 0 and rows > limit:
                    break
            table = pa.Table.from_batches(batches, schema=reader.schema)
        except (duckdb.Error, pa.ArrowException) as e:
            if fired.is_set():
                raise QueryTimeout(
                    f"query stopped at the {timeout_s:g} s time limit (TICKERLAKE_QUERY_TIMEOUT_S)"
                ) from None
            message = one_line(str(e))
            if isinstance(e, duckdb.PermissionException) or "disabled by configuration" in message:
                raise QueryRefused(_outside_message(message, self._allowed)) from None
            raise QueryError(self._explain_error(message)) from None
        finally:
            if timer is not None:
                timer.cancel()
            cursor.close()
        elapsed_ms = (time.perf_counter() - started) * 1000
        truncated = bool(limit and limit > 0 and table.num_rows > limit)
        if truncated:
            table = table.slice(0, limit)
        return QueryResult(
            columns=[d[0] for d in description] or list(table.column_names),
            types=[str(d[1]) for d in description],
            table=table,
            row_count=table.num_rows,
            truncated=truncated,
            elapsed_ms=elapsed_ms,
            sql=checked.sql,
        )

    def _explain_error(self, message: str) -> str:
        """DuckDB's message, with the lake's tables instead of hints at DuckDB internals."""
        if "Table with name" in message and "does not exist" in message:
            message = re.sub(
                r"\s*Did you mean \"(?:pg_|duckdb_|sqlite_|information_schema)[^\"]*\"\??", "", message
            )
            known = ", ".join(sorted(self._entries)) or "none yet"
            message += f" (tables: {known})"
        return message

    def run_named(
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        *,
        limit: int | None = None,
        timeout_s: float | None = None,
    ) -> QueryResult:
        """Run a named query with its parameters bound as prepared-statement values.

        Raises:
            NamedQueryError: Unknown query, or missing, unknown or badly typed parameters.
        """
        named = get_named(name)
        values = bind_params(named, params or {})
        return self.query(named.sql, values, limit=limit, timeout_s=timeout_s)

    # ---------------------------------------------------------------- catalog

    def tables(self, row_counts: bool = True) -> list[TableInfo]:
        """Every queryable table, curated first then raw, sorted by name.

        Args:
            row_counts: Count rows of raw tables (a scan of their files; cached until the
                crawler registers a change).
        """
        with self._lock:
            self._refresh_or_keep()
            entries = list(self._entries.values())
        out = []
        for entry in sorted(entries, key=lambda e: (e.info.kind == "raw", e.qualified)):
            info = dataclasses.replace(entry.info, columns=list(entry.info.columns))
            if info.kind == "raw" and row_counts and info.row_count is None and info.error is None:
                key = (entry.qualified, entry.view_sql)
                if key not in self._raw_counts:
                    try:
                        result = self._internal(
                            f"SELECT count(*) FROM {_ident(entry.schema)}.{_ident(entry.name)}"
                        )
                        self._raw_counts[key] = int(result[0][0])
                    except QueryError as e:
                        info.error = str(e)
                info.row_count = self._raw_counts.get(key)
            out.append(info)
        return out

    def _internal(self, sql: str) -> list[tuple[Any, ...]]:
        """Run engine-generated SQL (no guard), with the time limit."""
        with self._lock:
            assert self._con is not None
            cursor = self._con.cursor()
        timer = threading.Timer(self.settings.query_timeout_s, cursor.interrupt)
        timer.daemon = True
        try:
            timer.start()
            return cursor.execute(sql).fetchall()
        except duckdb.Error as e:
            raise QueryError(one_line(str(e))) from None
        finally:
            timer.cancel()
            cursor.close()

    def history(self, name: str) -> list[SnapshotInfo]:
        """Snapshots of an Iceberg table, newest first (empty for raw tables).

        Raises:
            QueryError: No such table.
        """
        with self._lock:
            self._refresh_or_keep()
            entry = self._entries.get(name)
        if entry is None:
            raise QueryError(f"no table {name!r} (see: tickerlake tables)")
        if entry.iceberg is None:
            return []
        metadata = entry.iceberg.metadata
        out = []
        for snap in metadata.snapshots:
            summary = snap.summary
            values = {k: str(v) for k, v in summary.additional_properties.items()} if summary else {}
            out.append(
                SnapshotInfo(
                    snapshot_id=snap.snapshot_id,
                    parent_id=snap.parent_snapshot_id,
                    timestamp=_iso_ms(snap.timestamp_ms),
                    operation=str(summary.operation.value) if summary else "",
                    summary=values,
                    current=snap.snapshot_id == metadata.current_snapshot_id,
                )
            )
        return sorted(out, key=lambda s: s.timestamp, reverse=True)


# --------------------------------------------------------------------------- shared engines

_ENGINES: dict[Settings, QueryEngine] = {}
_ENGINES_LOCK = threading.Lock()


def get_engine(settings: Settings) -> QueryEngine:
    """The shared engine of a lake (created on first use, refreshed on catalog changes)."""
    with _ENGINES_LOCK:
        engine = _ENGINES.get(settings)
        if engine is None:
            engine = QueryEngine(settings)
            _ENGINES[settings] = engine
        return engine


def clear_engines() -> None:
    """Close and forget all shared engines (tests, server shutdown)."""
    with _ENGINES_LOCK:
        for engine in _ENGINES.values():
            engine.close()
        _ENGINES.clear()


def run_query(
    settings: Settings,
    sql: str,
    params: Mapping[str, Any] | Sequence[Any] | None = None,
    *,
    limit: int | None = None,
    timeout_s: float | None = None,
) -> QueryResult:
    """Run one read-only statement on the lake (see :meth:`QueryEngine.query`)."""
    check_sql(sql)  # refuse before paying for an engine
    return get_engine(settings).query(sql, params, limit=limit, timeout_s=timeout_s)


def run_named(
    settings: Settings,
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    limit: int | None = None,
    timeout_s: float | None = None,
) -> QueryResult:
    """Run a named query on the lake (see :meth:`QueryEngine.run_named`)."""
    bind_params(get_named(name), params or {})  # report bad parameters before opening the lake
    return get_engine(settings).run_named(name, params, limit=limit, timeout_s=timeout_s)


def list_tables(settings: Settings, row_counts: bool = True) -> list[TableInfo]:
    """Every table queryable in SQL with kind, columns, row count, snapshots and location."""
    return get_engine(settings).tables(row_counts=row_counts)


def table_history(settings: Settings, name: str) -> list[SnapshotInfo]:
    """Iceberg snapshots of a table, newest first."""
    return get_engine(settings).history(name)
