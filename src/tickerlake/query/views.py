"""The views of the query engine: one per catalog table, and what the catalog says of it.

Each table the lake's catalog knows becomes a view in the engine's DuckDB database under
its Athena-style name: Iceberg tables (``market.daily_bars``, ``stream.ticks``) through
``iceberg_scan`` of the current metadata file, raw tables (``raw.<dataset>``) over exactly
the files the crawler registered, with the crawled column types. This module builds the
view SQL and the :class:`TableInfo` of each; it runs nothing.
"""

from __future__ import annotations

import datetime as dt
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field

from pyiceberg import types as ice
from pyiceberg.table import Table as IcebergTable

from tickerlake.config import Settings
from tickerlake.lake.catalog import RawTable
from tickerlake.lake.contract import duck_path, sql_ident, sql_list, sql_literal
from tickerlake.lake.storage import LakeStorage

__all__ = [
    "BASE_SCHEMAS",
    "METADATA_VARIABLE",
    "ColumnInfo",
    "SnapshotInfo",
    "TableInfo",
    "ViewEntry",
    "empty_view",
    "failing_view",
    "iceberg_entry",
    "iceberg_to_duckdb_type",
    "iso_ms",
    "metadata_variable_sql",
    "raw_entry",
]

#: Schemas that always exist, so that a missing table is reported as such.
BASE_SCHEMAS: tuple[str, ...] = ("market", "stream", "raw")
#: The DuckDB variable that maps each Iceberg table's name to its current metadata file. Its
#: view reads the file named there, so a commit changes the variable, not the view: creating
#: a view binds ``iceberg_scan`` (reads the metadata and manifests), which a table that a
#: stream sink commits every second would otherwise pay on every commit.
METADATA_VARIABLE = "tickerlake_metadata"

_SAFE_TYPE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_ ,()[]")
_RAW_EXTENSIONS = {
    "csv": ("csv", "csv.gz", "csv.zst", "tsv", "txt"),
    "jsonl": ("jsonl", "json", "ndjson", "jsonl.gz", "json.gz", "ndjson.gz"),
    "parquet": ("parquet",),
}


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
        inner = ", ".join(f"{sql_ident(f.name)} {iceberg_to_duckdb_type(f.field_type)}" for f in kind.fields)
        return f"STRUCT({inner})"
    return "VARCHAR"


def iso_ms(ms: int | None) -> str:
    """Milliseconds since the epoch as an ISO UTC timestamp ("" for none)."""
    if not ms:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class ViewEntry:
    """One view to create: its SQL and what the catalog says about the table.

    Attributes:
        schema: SQL schema (``market``, ``stream``, ``raw``).
        name: View name inside the schema.
        view_sql: The SELECT the view stands for.
        allowed_prefix: The folder the view reads (the engine allows DuckDB only these).
        info: What the catalog says about the table.
        iceberg: The Iceberg table (None for raw tables).
        metadata_path: The Iceberg table's current metadata file as DuckDB reads it, the
            value of its key in :data:`METADATA_VARIABLE` (None when the view reads no
            metadata file).
    """

    schema: str
    name: str
    view_sql: str
    allowed_prefix: str
    info: TableInfo = field(compare=False, hash=False)
    iceberg: IcebergTable | None = field(default=None, compare=False, hash=False)
    metadata_path: str | None = None

    @property
    def qualified(self) -> str:
        """``schema.name``."""
        return f"{self.schema}.{self.name}"


def empty_view(columns: Sequence[ColumnInfo]) -> str:
    """A view with the table's columns and no rows."""
    cols = ", ".join(f"CAST(NULL AS {c.type}) AS {sql_ident(c.name)}" for c in columns) or "NULL AS empty"
    return f"SELECT {cols} WHERE false"


def failing_view(columns: Sequence[ColumnInfo], message: str) -> str:
    """A view with the table's columns that raises ``message`` when read (never a silent empty)."""
    cols = ", ".join(f"CAST(NULL AS {c.type}) AS {sql_ident(c.name)}" for c in columns) or "NULL AS empty"
    # In the WHERE clause the error cannot be optimised away as an unused column would be.
    return f"SELECT {cols} WHERE error({sql_literal(message)}) IS NULL"


def iceberg_entry(settings: Settings, schema: str, name: str, table: IcebergTable) -> ViewEntry:
    """The view of an Iceberg table: ``iceberg_scan`` of its current metadata file."""
    metadata = table.metadata
    columns = [
        ColumnInfo(f.name, iceberg_to_duckdb_type(f.field_type), nullable=not f.required)
        for f in table.schema().fields
    ]
    snapshot = table.current_snapshot()
    summary = snapshot.summary if snapshot is not None and snapshot.summary is not None else None
    fields = table.schema()

    def _int(key: str) -> int:
        value = summary.get(key) if summary is not None else None
        try:
            return int(value) if value is not None else 0
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
        last_updated=iso_ms(metadata.last_updated_ms),
        partition_keys=partition_keys,
        files=_int("total-data-files"),
        size_bytes=_int("total-files-size"),
    )
    prefix = duck_path(settings, table.location()).rstrip("/") + "/"
    if snapshot is None:
        # iceberg_scan of a table without snapshots is not dependable across versions.
        return ViewEntry(schema, name, empty_view(columns), prefix, info, table)
    key = sql_literal(f"{schema}.{name}")
    view_sql = f"SELECT * FROM iceberg_scan(getvariable({sql_literal(METADATA_VARIABLE)})[{key}])"
    return ViewEntry(
        schema, name, view_sql, prefix, info, table, duck_path(settings, table.metadata_location)
    )


def metadata_variable_sql(entries: Sequence[ViewEntry]) -> str | None:
    """The statement that sets :data:`METADATA_VARIABLE` for these entries (None if none reads
    a metadata file). Variables belong to one connection: every cursor runs it first."""
    pairs = [(e.qualified, e.metadata_path) for e in entries if e.metadata_path is not None]
    if not pairs:
        return None
    body = ", ".join(f"{sql_literal(k)}: {sql_literal(v)}" for k, v in sorted(pairs))
    return f"SET VARIABLE {METADATA_VARIABLE} = MAP {{{body}}}"


def raw_entry(
    settings: Settings, storage: LakeStorage, raw: RawTable, crawled: frozenset[str] | None = None
) -> ViewEntry:
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
    location = duck_path(settings, raw.location).rstrip("/")
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
        chosen = [duck_path(settings, uri) for uri in files if uri in crawled]
        if not chosen:
            present.clear()
        paths = sql_list(chosen)
    else:
        # Globs only for suffixes that exist: a glob that matches nothing is an error in
        # DuckDB. (No two suffixes overlap: *.csv never matches x.csv.gz.)
        paths = sql_list(f"{location}/**/*.{e}" for e in sorted(present))
    if not present or not columns:
        if info.error is None and not present:
            info.row_count = 0
        return ViewEntry("raw", raw.name, empty_view(columns), location + "/", info)
    globs = paths
    hive = "true" if partition_keys else "false"
    hive_types = ""
    if partition_keys:
        hive_types = (
            ", hive_types={" + ", ".join(f"{sql_literal(k)}: 'VARCHAR'" for k in partition_keys) + "}"
        )
    select = ", ".join(sql_ident(c.name) for c in columns)
    typed = (
        "{"
        + ", ".join(f"{sql_literal(c.name)}: {sql_literal(c.type)}" for c in columns if not c.partition)
        + "}"
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
            sql_ident(c.name)
            if c.partition
            else f"CAST({sql_ident(c.name)} AS {c.type}) AS {sql_ident(c.name)}"
            for c in columns
        )
    return ViewEntry("raw", raw.name, f"SELECT {select} FROM {source}", location + "/", info)
