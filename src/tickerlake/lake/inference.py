"""Pure schema inference for the crawler: type widening, partition paths, change reports. No I/O."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tickerlake.lake.catalog import RawColumn, RawTable

__all__ = [
    "FORMATS",
    "FileSchema",
    "TableChange",
    "classify_format",
    "diff_tables",
    "merge_schemas",
    "normalize_type",
    "parse_partitions",
    "widen",
]

#: File suffix → dataset format.
FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "jsonl",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}

_INTEGER = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "HUGEINT",
    "UBIGINT",
}
_FLOAT = {"FLOAT", "DOUBLE", "REAL"}
# Widening order inside each family; crossing families falls back to VARCHAR.
_NUMERIC_RANK = {"BOOLEAN": 0, "BIGINT": 1, "DOUBLE": 2}
_TEMPORAL_RANK = {"DATE": 0, "TIMESTAMP": 1, "TIMESTAMPTZ": 2}


@dataclass(frozen=True)
class FileSchema:
    """Columns of one raw file as sniffed.

    Attributes:
        uri: The file.
        columns: ``(name, normalised type, has_nulls)`` in file order.
    """

    uri: str
    columns: tuple[tuple[str, str, bool], ...]


@dataclass
class TableChange:
    """What one crawl changed about one raw table.

    Attributes:
        table: Table name.
        status: ``new``, ``updated``, ``unchanged`` or ``removed``.
        new_columns: Columns that appeared.
        type_changes: ``(column, old type, new type)``.
        new_partitions: Partition values not seen before.
        files_added: New or changed files.
        files_removed: Files gone since the last crawl.
        problems: Files that could not be read, with the reason.
    """

    table: str
    status: str
    new_columns: list[str] = field(default_factory=list)
    type_changes: list[tuple[str, str, str]] = field(default_factory=list)
    new_partitions: list[str] = field(default_factory=list)
    files_added: int = 0
    files_removed: int = 0
    problems: list[str] = field(default_factory=list)


def classify_format(path: str) -> str | None:
    """The dataset format of a file by suffix (``.gz`` allowed), or None if not a data file."""
    name = path.rsplit("/", 1)[-1].lower().removesuffix(".gz")
    for suffix, fmt in FORMATS.items():
        if name.endswith(suffix):
            return fmt
    return None


def normalize_type(duckdb_type: str) -> str:
    """Collapse DuckDB's type names into the crawler's lattice."""
    t = duckdb_type.upper().strip()
    if t in _INTEGER:
        return "BIGINT"
    if t in _FLOAT or t.startswith("DECIMAL"):
        return "DOUBLE"
    if t in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
        return "TIMESTAMPTZ"
    if t.startswith("TIMESTAMP"):
        return "TIMESTAMP"
    if t in ("DATE", "BOOLEAN"):
        return t
    return "VARCHAR"


def widen(a: str, b: str) -> str:
    """The narrowest type both ``a`` and ``b`` fit in."""
    if a == b:
        return a
    if a in _NUMERIC_RANK and b in _NUMERIC_RANK:
        # A boolean mixed with numbers is text, not 0/1.
        if "BOOLEAN" in (a, b):
            return "VARCHAR"
        return a if _NUMERIC_RANK[a] > _NUMERIC_RANK[b] else b
    if a in _TEMPORAL_RANK and b in _TEMPORAL_RANK:
        return a if _TEMPORAL_RANK[a] > _TEMPORAL_RANK[b] else b
    return "VARCHAR"


def _name_key(name: str) -> str:
    """A column name as DuckDB compares identifiers: ASCII letters fold case, nothing else does."""
    return name.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def merge_schemas(base: Sequence[RawColumn], files: Iterable[FileSchema]) -> list[RawColumn]:
    """Merge file schemas into a table schema by column name.

    Columns keep first-seen order and first-seen spelling; types widen; a column missing
    from some file, or with nulls in any file, is nullable. Names match case-insensitively,
    as SQL identifiers do in DuckDB: ``Close`` in one file and ``close`` in another are one
    column (two would make a view with the same column twice).
    """
    merged: dict[str, RawColumn] = {}
    for c in base:
        key = _name_key(c.name)
        if key in merged:
            col = merged[key]
            col.type, col.nullable = widen(col.type, c.type), col.nullable or c.nullable
        else:
            merged[key] = RawColumn(c.name, c.type, c.nullable)
    seen_everywhere = set(merged) if base else None
    for fs in files:
        names = set()
        for name, typ, has_nulls in fs.columns:
            key = _name_key(name)
            names.add(key)
            if key in merged:
                col = merged[key]
                col.type = widen(col.type, typ)
                col.nullable = col.nullable or has_nulls
            else:
                # A column that appears later was absent from earlier files.
                merged[key] = RawColumn(name, typ, has_nulls or seen_everywhere is not None)
        if seen_everywhere is None:
            seen_everywhere = set(names)
        else:
            for missing in seen_everywhere - names:
                merged[missing].nullable = True
            seen_everywhere &= names
    return list(merged.values())


def parse_partitions(relative_path: str) -> dict[str, str]:
    """Hive-style ``key=value`` folders of a path relative to its dataset folder."""
    parts = relative_path.split("/")[:-1]
    out: dict[str, str] = {}
    for p in parts:
        if "=" in p:
            k, v = p.split("=", 1)
            if k:
                out[k] = v
    return out


def diff_tables(old: RawTable | None, new: RawTable, added: int, removed: int) -> TableChange:
    """Describe how a crawl changed a table."""
    if old is None:
        return TableChange(
            new.name, "new", [c.name for c in new.columns], [], list(new.partitions), added, removed
        )
    old_types = {c.name: c.type for c in old.columns}
    new_cols = [c.name for c in new.columns if c.name not in old_types]
    changes = [
        (c.name, old_types[c.name], c.type)
        for c in new.columns
        if c.name in old_types and old_types[c.name] != c.type
    ]
    new_parts = [p for p in new.partitions if p not in set(old.partitions)]
    changed = bool(new_cols or changes or new_parts or added or removed)
    return TableChange(
        new.name, "updated" if changed else "unchanged", new_cols, changes, new_parts, added, removed
    )
