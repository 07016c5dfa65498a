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

The views themselves are built by :mod:`tickerlake.query.views`, results described by
:mod:`tickerlake.query.results`; their public names are importable from here too.
"""

from __future__ import annotations

import dataclasses
import getpass
import hashlib
import json
import math
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from tickerlake.config import Settings
from tickerlake.errors import NotFoundError, QueryError, QueryRefused, TickerlakeError
from tickerlake.lake.catalog import (
    catalog_fingerprint,
    list_raw_tables,
    load_table,
    metadata_locations,
    open_catalog,
)
from tickerlake.lake.contract import LakeLayout, duck_path, sql_ident, sql_literal
from tickerlake.lake.crawler import crawled_files
from tickerlake.lake.duck import extension_path
from tickerlake.lake.storage import duckdb_s3_statements
from tickerlake.query.guard import check_sql, one_line
from tickerlake.query.named import bind_params, get_named
from tickerlake.query.results import QueryResult
from tickerlake.query.views import (
    BASE_SCHEMAS,
    ColumnInfo,
    SnapshotInfo,
    TableInfo,
    ViewEntry,
    failing_view,
    iceberg_entry,
    iso_ms,
    metadata_variable_sql,
    raw_entry,
)

__all__ = [
    "MAX_RESULT_BYTES",
    "ColumnInfo",
    "QueryCancelled",
    "QueryEngine",
    "QueryError",
    "QueryResult",
    "QueryStream",
    "QueryTimeout",
    "QueryTooLarge",
    "SnapshotInfo",
    "TableInfo",
    "cancel_query",
    "clear_engines",
    "extension_path",
    "get_engine",
    "list_tables",
    "run_named",
    "run_query",
    "stream_query",
    "table_history",
]

# Catalogs that cannot be checked by a cheap local file signature are re-listed at most
# this often; a web request in between sees views at most this old.
_REMOTE_REFRESH_S = 2.0
_BATCH_ROWS = 2048
#: Most bytes of Arrow data a query may return. The row limit alone does not bound an
#: answer (one row of ``repeat('x', 10**9)`` is a gigabyte, and the web API then builds a
#: JSON copy of it), so a few such queries at once could exhaust the server's memory.
MAX_RESULT_BYTES = 64 * 1024 * 1024


class QueryTimeout(QueryError):
    """A query that ran longer than the time limit and was interrupted."""


class QueryTooLarge(QueryError):
    """A query whose answer is larger than :data:`MAX_RESULT_BYTES`."""


class QueryCancelled(QueryError):
    """A query stopped by :func:`cancel_query` (its user asked)."""


@dataclasses.dataclass
class QueryStream:
    """A running query whose rows are read batch by batch (see :meth:`QueryEngine.stream`).

    Attributes:
        sql: The statement that runs.
        columns: Column names.
        types: DuckDB type of each column.
        schema: The Arrow schema of the batches.
        batches: The batches, read as DuckDB makes them (at most the row limit in all).
        row_count: Rows handed over so far.
        truncated: Whether rows past the limit were dropped (known once read to the end).
    """

    sql: str
    columns: list[str] = dataclasses.field(default_factory=list)
    types: list[str] = dataclasses.field(default_factory=list)
    schema: Any = None
    batches: Iterator[pa.RecordBatch] = dataclasses.field(default_factory=lambda: iter(()))
    row_count: int = 0
    truncated: bool = False


# Queries running now that can be cancelled, by run id: what interrupts each.
_RUNNING: dict[str, Callable[[], None]] = {}
_RUNNING_LOCK = threading.Lock()


def cancel_query(run_id: str) -> bool:
    """Interrupt the running query of ``run_id``; False if none runs under that id (any more)."""
    with _RUNNING_LOCK:
        stop = _RUNNING.get(run_id)
    if stop is None:
        return False
    stop()
    return True


def _outside_message(message: str, allowed: Sequence[str]) -> str:
    """The refusal for a file access that the locked connection stopped."""
    match = re.search(r'Cannot access (?:file|directory) "([^"]*)"', message)
    what = f"cannot read {match.group(1)!r}" if match else "cannot access that file"
    return f"refused: {what}: queries may only read files inside the lake ({', '.join(allowed)})"


def _same_view(old: ViewEntry | None, new: ViewEntry) -> bool:
    """Whether the view made for ``old`` serves ``new`` too: same SQL and columns, and not one
    that failed on an older metadata file (the new one may read). A commit to an Iceberg table
    only moves its metadata file, which the views read from a variable."""
    if old is None or old.view_sql != new.view_sql or old.info.columns != new.info.columns:
        return False
    return old.info.error is None or old.metadata_path == new.metadata_path


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
        self.layout = LakeLayout.of(settings)
        self.storage = self.layout.storage
        if settings.is_local and not self.storage.exists(settings.lake_uri):
            # Opening the catalog would create an empty lake at a mistyped path.
            raise NotFoundError(f"no lake at {settings.lake_uri}: ingest data first or pass --lake")
        self._lock = threading.RLock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._allowed: tuple[str, ...] = ()
        self._entries: dict[str, ViewEntry] = {}
        self._signature: Any = None
        self._checked_at = 0.0
        self._catalog: Any = None
        self._raw_counts: dict[tuple[str, str], int] = {}
        self._raw_cache: dict[str, tuple[str, ViewEntry]] = {}
        self._iceberg_cache: dict[tuple[str, ...], tuple[str, ViewEntry]] = {}
        self._variables_sql: str | None = None
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
        root = duck_path(self.settings, self.settings.lake_uri).rstrip("/")
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
                # Freed memory goes back to the system in the background: counting a
                # universe's raw tables would otherwise keep ~150 MB resident in `serve`.
                "allocator_background_threads": True,
            },
        )
        try:
            names = ["avro", "iceberg"] + ([] if self.settings.is_local else ["httpfs"])
            for name in names:
                con.execute(f"LOAD {sql_literal(str(extension_path(name)))}")
            con.execute("SET TimeZone = 'UTC'")
            for statement in duckdb_s3_statements(self.settings):
                con.execute(statement)
            for schema in BASE_SCHEMAS:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {sql_ident(schema)}")
            con.execute(f"SET allowed_directories = [{', '.join(sql_literal(p) for p in allowed)}]")
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
        for uri in (self.layout.raw_tables, self.layout.crawl_state):
            try:
                if self.settings.is_local:
                    # Both files are replaced atomically, so a new inode marks every rewrite.
                    st = Path(duck_path(self.settings, uri)).stat()
                    parts.append((st.st_ino, st.st_mtime_ns, st.st_size))
                else:
                    parts.append(hashlib.sha256(self.storage.read_bytes(uri)).hexdigest())
            except FileNotFoundError:
                parts.append(None)
        self._registry_hash, self._registry_checked_at = tuple(parts), now
        return self._registry_hash

    def _list_entries(self) -> dict[str, ViewEntry]:
        if self._catalog is None:
            self._catalog = open_catalog(self.settings)
        catalog = self._catalog
        entries: dict[str, ViewEntry] = {}
        locations = metadata_locations(catalog)
        identifiers = (
            list(locations)
            if locations is not None
            else [i for namespace in catalog.list_namespaces() for i in catalog.list_tables(namespace)]
        )
        iceberg_cache: dict[tuple[str, ...], tuple[str, ViewEntry]] = {}
        for identifier in identifiers:
            # A stream sink commits every second or so: only its table is read again then.
            location = locations.get(identifier) if locations is not None else None
            cached = self._iceberg_cache.get(identifier)
            if location is not None and cached is not None and cached[0] == location:
                entry = cached[1]
            else:
                table = load_table(catalog, identifier)
                entry = iceberg_entry(self.settings, ".".join(identifier[:-1]), identifier[-1], table)
                location = table.metadata_location
            iceberg_cache[identifier] = (location, entry)
            entries[entry.qualified] = entry
        self._iceberg_cache = iceberg_cache
        raw_cache: dict[str, tuple[str, ViewEntry]] = {}
        crawled = crawled_files(self.settings)
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
            if cached is not None and cached[0] == key:
                entry = cached[1]
            else:
                entry = raw_entry(self.settings, self.storage, raw, files)
            raw_cache[raw.name] = (key, entry)
            entries[entry.qualified] = entry
        self._raw_cache = raw_cache
        return entries

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
                self._variables_sql = None  # variables belong to a connection: set them again
                changed = True
            con = self._con
            variables = metadata_variable_sql(list(entries.values()))
            if variables is not None and variables != self._variables_sql:
                con.execute(variables)  # before any view is bound with it
                changed = True
            self._variables_sql = variables
            for qualified in set(self._entries) - set(entries):
                entry = self._entries.pop(qualified)
                con.execute(f"DROP VIEW IF EXISTS {sql_ident(entry.schema)}.{sql_ident(entry.name)}")
                changed = True
            for qualified, entry in entries.items():
                old_entry = self._entries.get(qualified)
                if _same_view(old_entry, entry):
                    assert old_entry is not None
                    entry.info.error = entry.info.error or old_entry.info.error
                    self._entries[qualified] = entry
                    continue
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {sql_ident(entry.schema)}")
                view = f"{sql_ident(entry.schema)}.{sql_ident(entry.name)}"
                try:
                    con.execute(f"CREATE OR REPLACE VIEW {view} AS {entry.view_sql}")
                except duckdb.Error as e:
                    # One unreadable table must not take the others down: it stays listed, and
                    # reading it raises the reason instead of looking empty.
                    entry.info.error = one_line(str(e).strip().splitlines()[0])
                    failing = failing_view(
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

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor with the views' variables set (they belong to one connection); under the lock."""
        assert self._con is not None
        cursor = self._con.cursor()
        if self._variables_sql is not None:
            try:
                cursor.execute(self._variables_sql)
            except BaseException:
                cursor.close()
                raise
        return cursor

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
        run_id: str | None = None,
    ) -> QueryResult:
        """Run one read-only statement.

        Args:
            sql: One SELECT-class statement (or EXPLAIN of one).
            params: Prepared-statement parameters: a mapping for ``$name``, a sequence for ``?``.
            limit: Maximum rows returned; None for ``settings.query_row_limit``, 0 or less
                for no limit.
            timeout_s: Wall-clock limit; None for ``settings.query_timeout_s``, 0 or less for none.
            run_id: An id under which :func:`cancel_query` can stop the query while it runs.

        Returns:
            The result, truncated to the limit (``truncated`` says so).

        Raises:
            QueryRefused: Not read-only, or touching files outside the lake.
            QueryTimeout: Interrupted at the time limit.
            QueryCancelled: Stopped by :func:`cancel_query`.
            QueryError: Any other SQL error (syntax, unknown table, type error...).
        """
        started = time.perf_counter()
        stream = self.stream(sql, params, limit=limit, timeout_s=timeout_s, run_id=run_id)
        batches = list(stream.batches)
        table = pa.Table.from_batches(batches, schema=stream.schema)
        return QueryResult(
            columns=stream.columns,
            types=stream.types,
            table=table,
            row_count=table.num_rows,
            truncated=stream.truncated,
            elapsed_ms=(time.perf_counter() - started) * 1000,
            sql=stream.sql,
        )

    def stream(
        self,
        sql: str,
        params: Mapping[str, Any] | Sequence[Any] | None = None,
        *,
        limit: int | None = None,
        timeout_s: float | None = None,
        run_id: str | None = None,
    ) -> QueryStream:
        """Start one read-only statement and hand its rows over batch by batch as DuckDB makes them.

        The statement is checked, executed and its columns known when this returns (a refused
        or failing statement raises here); rows arrive while :attr:`QueryStream.batches` is
        read. Limits, cancelling and errors are those of :meth:`query`; an error while reading
        is raised from the iteration. Closing the iterator (or dropping it) stops the query.
        """
        stream = QueryStream(sql=sql)
        batches = self._batches(stream, sql, params, limit, timeout_s, run_id)
        next(batches)  # run up to the first row: the statement's errors surface here
        stream.batches = batches
        return stream

    def _batches(
        self,
        stream: QueryStream,
        sql: str,
        params: Mapping[str, Any] | Sequence[Any] | None,
        limit: int | None,
        timeout_s: float | None,
        run_id: str | None,
    ) -> Iterator[pa.RecordBatch | None]:
        """Execute, yield None once the columns are known, then the batches up to ``limit`` rows."""
        checked = check_sql(sql)
        stream.sql = checked.sql
        limit = self.settings.query_row_limit if limit is None else limit
        timeout_s = self.settings.query_timeout_s if timeout_s is None else timeout_s
        with self._lock:
            self._refresh_or_keep()
            cursor = self._cursor()
        fired = threading.Event()
        cancelled = threading.Event()

        def _interrupt() -> None:
            fired.set()
            cursor.interrupt()

        def _cancel() -> None:
            cancelled.set()
            cursor.interrupt()

        if run_id is not None:
            with _RUNNING_LOCK:
                _RUNNING[run_id] = _cancel
        timer = threading.Timer(timeout_s, _interrupt) if timeout_s and timeout_s > 0 else None
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
            stream.schema = reader.schema
            stream.columns = [d[0] for d in description] or list(reader.schema.names)
            stream.types = [str(d[1]) for d in description]
            yield None
            size = 0
            for batch in reader:
                if cancelled.is_set():  # asked between two batches: interrupt() had nothing to stop
                    raise QueryCancelled("query cancelled")
                if limit and limit > 0 and stream.row_count + batch.num_rows > limit:
                    # Rows past the limit are dropped: one more row read says there were more.
                    stream.truncated = True
                    batch = batch.slice(0, limit - stream.row_count)
                size += batch.nbytes
                if size > MAX_RESULT_BYTES:
                    raise QueryTooLarge(
                        f"the answer is larger than {MAX_RESULT_BYTES // (1024 * 1024)} MB: "
                        "select fewer or smaller columns, or fewer rows"
                    )
                stream.row_count += batch.num_rows
                if batch.num_rows:
                    yield batch
                if stream.truncated:
                    break
            if cancelled.is_set():
                raise QueryCancelled("query cancelled")
        except QueryError:
            raise
        except Exception as e:
            # After the timer fired, whatever the interrupted query raised (a DuckDB error, an
            # Arrow error from the half-read stream...) means the time limit was hit.
            if cancelled.is_set():
                raise QueryCancelled("query cancelled") from None
            if fired.is_set():
                raise QueryTimeout(
                    f"query stopped at the {timeout_s:g} s time limit (TICKERLAKE_QUERY_TIMEOUT_S)"
                ) from None
            if isinstance(e, MemoryError):
                raise QueryTooLarge(
                    "the query needs more memory than this server gives one query: "
                    "select fewer or smaller columns, or fewer rows"
                ) from None
            if not isinstance(e, (duckdb.Error, pa.ArrowException)):
                raise
            message = one_line(str(e))
            if isinstance(e, duckdb.PermissionException) or "disabled by configuration" in message:
                raise QueryRefused(_outside_message(message, self._allowed)) from None
            raise QueryError(self._explain_error(message)) from None
        finally:
            if run_id is not None:
                with _RUNNING_LOCK:
                    _RUNNING.pop(run_id, None)
            if timer is not None:
                timer.cancel()
            cursor.close()

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
                            f"SELECT count(*) FROM {sql_ident(entry.schema)}.{sql_ident(entry.name)}"
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
            cursor = self._cursor()
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
            NotFoundError: No such table.
        """
        with self._lock:
            self._refresh_or_keep()
            entry = self._entries.get(name)
        if entry is None:
            raise NotFoundError(f"no table {name!r} (see: tickerlake tables)")
        if entry.iceberg is None:
            return []
        metadata = entry.iceberg.metadata
        out = []
        # Newest first; commits within one second (a load and its corporate-actions pass)
        # are told apart by their sequence number.
        newest_first = sorted(
            metadata.snapshots, key=lambda s: (s.timestamp_ms, s.sequence_number or 0), reverse=True
        )
        for snap in newest_first:
            summary = snap.summary
            values = {k: str(v) for k, v in summary.additional_properties.items()} if summary else {}
            out.append(
                SnapshotInfo(
                    snapshot_id=snap.snapshot_id,
                    parent_id=snap.parent_snapshot_id,
                    timestamp=iso_ms(snap.timestamp_ms),
                    operation=str(summary.operation.value) if summary else "",
                    summary=values,
                    current=snap.snapshot_id == metadata.current_snapshot_id,
                )
            )
        return out


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
    run_id: str | None = None,
) -> QueryResult:
    """Run one read-only statement on the lake (see :meth:`QueryEngine.query`)."""
    check_sql(sql)  # refuse before paying for an engine
    return get_engine(settings).query(sql, params, limit=limit, timeout_s=timeout_s, run_id=run_id)


def stream_query(
    settings: Settings,
    sql: str,
    params: Mapping[str, Any] | Sequence[Any] | None = None,
    *,
    limit: int | None = None,
    timeout_s: float | None = None,
    run_id: str | None = None,
) -> QueryStream:
    """Start one read-only statement on the lake, rows read batch by batch (see :meth:`QueryEngine.stream`)."""
    check_sql(sql)  # refuse before paying for an engine
    return get_engine(settings).stream(sql, params, limit=limit, timeout_s=timeout_s, run_id=run_id)


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
