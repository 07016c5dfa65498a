"""The Iceberg catalog (curated tables) and the raw-table registry (crawler output).

The catalog is pyiceberg's ``SqlCatalog`` on SQLite inside the lake by default. The
catalog URI (``TICKERLAKE_CATALOG_URI``) selects another, with the same table code:

- ``postgresql+psycopg://user:pass@host:5432/db``: the SQL catalog on a shared PostgreSQL
  database, so several hosts see the same tables (``postgresql://`` means the same);
- ``http(s)://…``: an Iceberg REST catalog;
- ``glue``: the AWS Glue Data Catalog (needs the ``glue`` extra: boto3).

Other engines (Spark, Trino) read the same tables through Iceberg's JDBC catalog on the
same database, under the same catalog name.

Raw tables (CSV/JSON/Parquet files as received) are not Iceberg tables, so the crawler
registers them in the lake's raw-table registry
(:attr:`~tickerlake.lake.contract.LakeLayout.raw_tables`), which every engine can read.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import (
    NamespaceAlreadyExistsError,
    NoSuchNamespaceError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.schema import Schema
from pyiceberg.table import Table

from tickerlake.config import Settings
from tickerlake.errors import UserError
from tickerlake.lake.contract import TABLES, LakeLayout
from tickerlake.lake.storage import iceberg_io_properties, retry_transient
from tickerlake.retry import retry

__all__ = [
    "RawColumn",
    "RawTable",
    "catalog_fingerprint",
    "catalog_kind",
    "ensure_table",
    "list_raw_tables",
    "load_table",
    "load_table_or_none",
    "metadata_locations",
    "open_catalog",
    "save_raw_tables",
    "sqlalchemy_uri",
]

#: The extra that brings each optional catalog's client library.
_EXTRAS = {"glue": ("boto3", "glue")}


def sqlalchemy_uri(uri: str) -> str:
    """A SQL catalog URI with its driver spelled out: PostgreSQL goes through psycopg 3.

    SQLAlchemy's bare ``postgresql://`` means psycopg2, which tickerlake does not install.
    """
    for prefix in ("postgresql://", "postgres://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg://" + uri.removeprefix(prefix)
    return uri


def catalog_kind(uri: str) -> str:
    """``sqlite``, ``postgresql``, ``rest``, ``glue``, or ``sql`` (another SQLAlchemy database)."""
    if uri.startswith(("http://", "https://")):
        return "rest"
    if uri == "glue":
        return "glue"
    if uri.startswith("sqlite:"):
        return "sqlite"
    if uri.startswith(("postgresql", "postgres:")):
        return "postgresql"
    return "sql"


def _require_extra(kind: str) -> None:
    """Fail with one line naming the extra to install when a catalog's client is missing."""
    if kind not in _EXTRAS:
        return
    module, extra = _EXTRAS[kind]
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise UserError(
            f"the {kind} catalog needs {module}: pip install 'tickerlake[{extra}]' (or pip install {module})"
        )


def open_catalog(settings: Settings) -> Catalog:
    """Open (creating on first use) the Iceberg catalog of the lake."""
    uri = settings.resolved_catalog_uri
    kind = catalog_kind(uri)
    _require_extra(kind)
    props: dict[str, str] = {
        "warehouse": LakeLayout.of(settings).warehouse,
        **iceberg_io_properties(settings),
    }
    if kind == "rest":
        props.update(type="rest", uri=uri)
    elif kind == "glue":
        props.update(type="glue")
    else:
        if uri.startswith("sqlite:///"):
            Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        props.update(type="sql", uri=sqlalchemy_uri(uri))
        props["init_catalog_tables"] = "true"
        if kind != "sqlite":
            # A server drops idle connections (restarts, timeouts): check each before use.
            props["pool_pre_ping"] = "true"
    return retry(
        lambda: load_catalog(settings.catalog_name, **props),
        # The name, not the URI: a database URI may hold a password.
        what=f"opening the catalog {settings.catalog_name!r}",
        on=_catalog_creation_race,
        attempts=5,
        base_delay_s=0.05,
    )


def _catalog_creation_race(exc: BaseException) -> bool:
    """Two processes created the catalog's own tables at once, and this one lost.

    The loser finds them made by the winner ("already exists"; on PostgreSQL also a duplicate
    key in its own type catalog); opening again just uses them.
    """
    import sqlalchemy.exc

    text = str(exc)
    return isinstance(exc, sqlalchemy.exc.DBAPIError) and (
        "already exists" in text or "duplicate key value" in text
    )


def catalog_fingerprint(settings: Settings) -> tuple[Any, ...] | None:
    """A cheap fingerprint that changes on every catalog commit, or None when only a
    catalog round trip can tell (REST, Glue or a remote SQL database).

    The SQLite catalog's header holds a change counter (bytes 24-27) that moves on every
    commit, even when the file system's mtime granularity would hide two quick commits.
    """
    uri = settings.resolved_catalog_uri
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri.removeprefix("sqlite:///"))
    parts: list[Any] = []
    for path in (db, db.with_name(db.name + "-wal")):
        try:
            st = path.stat()
            parts.append((st.st_mtime_ns, st.st_size))
        except FileNotFoundError:
            parts.append(None)
    try:
        with open(db, "rb") as f:
            parts.append(f.read(100)[24:28])
    except FileNotFoundError:
        parts.append(None)
    return tuple(parts)


def ensure_table(catalog: Catalog, identifier: str, schema: Schema | None = None) -> Table:
    """Load a table, creating it (and its namespace) with its canonical schema if missing.

    Safe when several processes create the same table at once: the SQL catalog checks
    for the namespace or table and then inserts it, so the loser of that race gets a
    unique-constraint error (or "already exists"); it then loads what the winner created,
    and tries again (with backoff) while the winner has not finished.

    Raises:
        TransientError: Still losing the race after 5 attempts, or the store does not answer.
    """
    import sqlalchemy.exc

    schema = schema or TABLES[identifier]
    namespace = identifier.rsplit(".", 1)[0]
    races = (NamespaceAlreadyExistsError, TableAlreadyExistsError, sqlalchemy.exc.IntegrityError)

    def create_or_load() -> Table:
        try:
            with contextlib.suppress(NamespaceAlreadyExistsError):
                catalog.create_namespace(namespace)
            return catalog.create_table_if_not_exists(
                identifier, schema, properties={"write.parquet.compression-codec": "zstd"}
            )
        except races as race:
            try:
                return load_table(catalog, identifier)
            except (NoSuchTableError, NoSuchNamespaceError):
                # The winner has created the namespace but not the table yet: the race
                # error is what is worth another attempt.
                raise race from None

    return retry(
        create_or_load,
        what=f"creating {identifier}",
        on=lambda e: isinstance(e, races),
        attempts=5,
        base_delay_s=0.05,
    )


def load_table(catalog: Catalog, identifier: str | tuple[str, ...]) -> Table:
    """Load a table; reading its metadata rides out short object-store outages.

    A read, so it is safe to repeat (:func:`~tickerlake.lake.storage.retry_transient`);
    on local lakes no error is transient and this is a plain ``catalog.load_table``.

    Raises:
        NoSuchTableError: The table does not exist (not retried).
        TransientError: The object store did not answer within the retry window.
    """
    name = identifier if isinstance(identifier, str) else ".".join(identifier)
    return retry_transient(lambda: catalog.load_table(identifier), f"loading {name}")


def metadata_locations(catalog: Catalog) -> dict[tuple[str, ...], str] | None:
    """Every table's current metadata file, in one query of a SQL catalog.

    A reader that keeps tables by metadata file then loads (reads and parses the metadata
    of) only the tables that changed, instead of all of them after every commit.

    Returns:
        Identifier to metadata location; None for catalogs that answer per table (REST,
        Glue) or a SQL catalog whose tables cannot be read in one query now.
    """
    from pyiceberg.catalog.sql import IcebergTables, SqlCatalog
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.orm import Session

    if not isinstance(catalog, SqlCatalog):
        return None
    stmt = select(
        IcebergTables.table_namespace, IcebergTables.table_name, IcebergTables.metadata_location
    ).where(IcebergTables.catalog_name == catalog.name)
    # Rows that are views (written by other engines) are not tables: the same filter as
    # pyiceberg's own list_tables, when this pyiceberg has it.
    type_filter = getattr(catalog, "_iceberg_type_filter", lambda: None)()
    if type_filter is not None:
        stmt = stmt.where(type_filter)
    try:
        with Session(catalog.engine) as session:
            rows = session.execute(stmt).all()
    except SQLAlchemyError:
        return None
    return {(*namespace.split("."), name): location for namespace, name, location in rows if location}


def load_table_or_none(catalog: Catalog, identifier: str) -> Table | None:
    """Load a table, or None when it does not exist."""
    try:
        return load_table(catalog, identifier)
    except NoSuchTableError:
        return None


@dataclass
class RawColumn:
    """A column of a raw table as inferred by the crawler.

    Attributes:
        name: Column name.
        type: DuckDB logical type name (BIGINT, DOUBLE, DATE, TIMESTAMP, BOOLEAN, VARCHAR).
        nullable: Whether nulls/empties were seen (or the column is missing in some files).
    """

    name: str
    type: str
    nullable: bool = True


@dataclass
class RawTable:
    """A raw dataset registered by the crawler.

    Attributes:
        name: Dataset (and table) name, ``raw.<name>`` in SQL.
        location: URI of the dataset folder.
        format: ``csv``, ``jsonl`` or ``parquet``.
        columns: Data columns in order.
        partition_keys: Hive-style partition keys, in path order.
        partitions: Partition values seen, as ``key=value/...`` strings.
        files: Number of files.
        size_bytes: Total size.
        fingerprint: Hash of (path, size, mtime) of every file when crawled.
        updated_at: ISO timestamp of the last crawl that changed it.
    """

    name: str
    location: str
    format: str
    columns: list[RawColumn]
    partition_keys: list[str] = field(default_factory=list)
    partitions: list[str] = field(default_factory=list)
    files: int = 0
    size_bytes: int = 0
    fingerprint: str = ""
    updated_at: str = ""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RawTable:
        """Build from its JSON form."""
        d = dict(d)
        d["columns"] = [RawColumn(**c) for c in d["columns"]]
        return cls(**d)


def list_raw_tables(settings: Settings) -> dict[str, RawTable]:
    """Raw tables registered by the crawler, by name."""
    layout = LakeLayout.of(settings)
    storage, uri = layout.storage, layout.raw_tables
    if not storage.exists(uri):
        return {}
    data = json.loads(storage.read_bytes(uri))
    return {name: RawTable.from_dict(d) for name, d in data.items()}


def save_raw_tables(settings: Settings, tables: dict[str, RawTable]) -> None:
    """Replace the raw-table registry atomically."""
    layout = LakeLayout.of(settings)
    payload = {name: asdict(t) for name, t in sorted(tables.items())}
    layout.storage.write_bytes(layout.raw_tables, json.dumps(payload, indent=1).encode())
