"""Read-only SQL, named and saved queries, the query history and cancelling as operations,
and the one way a result cell becomes CSV text.

The query engine (DuckDB over the catalog) does the work; this module decides what a
request is (SQL text, or a built-in or saved query with parameters), which limits apply,
records every run in the lake's query history, and writes rows as CSV. The engine is
imported when a query runs, not when a shell starts.
"""

from __future__ import annotations

import csv
import getpass
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from tickerlake.config import Settings
from tickerlake.jsonable import jsonable

if TYPE_CHECKING:
    from tickerlake.query.engine import QueryResult
    from tickerlake.query.history import HistoryEntry
    from tickerlake.query.named import NamedQuery
    from tickerlake.query.saved import SavedParam, SavedQuery

_R = TypeVar("_R")

__all__ = [
    "QueryAnswer",
    "QueryPages",
    "QueryRequest",
    "cancel",
    "clear_history",
    "csv_cell",
    "delete_saved",
    "get_saved",
    "history",
    "listed_queries",
    "named_queries",
    "run",
    "save_query",
    "saved_queries",
    "stream",
    "write_csv",
]


@dataclass(frozen=True)
class QueryRequest:
    """A read-only query: SQL text, or a named query with its parameters.

    Attributes:
        sql: One read-only statement (exclusive with ``named``).
        named: A named query's name (see :func:`named_queries`).
        params: The named query's parameters, or the ``$name`` parameters of the SQL;
            strings are converted to the declared types.
        limit: Row limit; None for the settings' limit, 0 for none (unless capped).
        timeout_s: Time limit in seconds; None for the settings' limit, 0 for none (unless capped).
        cancel_key: A key under which :func:`cancel` can stop the query while it runs.
    """

    sql: str | None = None
    named: str | None = None
    params: Mapping[str, Any] | None = None
    limit: int | None = None
    timeout_s: float | None = None
    cancel_key: str | None = None


@dataclass(frozen=True)
class QueryAnswer:
    """The rows of a query and the row limit that applied.

    Attributes:
        result: Columns, types and rows (see :class:`~tickerlake.query.results.QueryResult`).
        limit: The row limit used (None: the engine's default, 0: none).
        run_id: The run's id in the query history.
    """

    result: QueryResult
    limit: int | None
    run_id: str = ""


def named_queries() -> list[NamedQuery]:
    """The shipped named queries with their parameters and SQL, sorted by name.

    :func:`tickerlake.jsonable.jsonable` of each is its JSON form (name, description,
    params, sql) for every shell.
    """
    from tickerlake.query.named import list_named

    return list_named()


def listed_queries(settings: Settings) -> list[NamedQuery | SavedQuery]:
    """Every query runnable by name: the built-in ones, then the lake's saved ones (``kind``)."""
    return [*named_queries(), *saved_queries(settings)]


def _limits(settings: Settings, req: QueryRequest, capped: bool) -> tuple[int | None, float | None]:
    """The row and time limits of a request; ``capped``: the settings' limits are the most allowed."""
    if not capped:
        return req.limit, req.timeout_s
    # A server's limits protect it from its clients: a request may lower them, never raise them.
    server_rows = settings.query_row_limit
    limit = min(req.limit or server_rows, server_rows)
    timeout = settings.query_timeout_s
    if req.timeout_s is not None:
        timeout = min(req.timeout_s, timeout) if timeout > 0 else req.timeout_s
    return limit, timeout


def _status(exc: BaseException) -> str:
    from tickerlake.errors import RefusedError
    from tickerlake.query.engine import QueryCancelled, QueryTimeout

    if isinstance(exc, QueryCancelled):
        return "cancelled"
    if isinstance(exc, QueryTimeout):
        return "timeout"
    return "refused" if isinstance(exc, RefusedError) else "error"


def _prepare(settings: Settings, req: QueryRequest) -> tuple[str, Mapping[str, Any] | None]:
    """The SQL to run and its bound values: the request's SQL, or a built-in or saved query's.

    Raises:
        UnknownNamedQuery, NamedQueryError: An unknown query, or bad parameters.
    """
    from tickerlake.query.named import bind_params

    params = dict(req.params) if req.params else None
    if req.named:
        query = _resolve(settings, req.named)
        return query.sql, bind_params(query, params or {})
    return req.sql or "", params


class _Run:
    """One run's record in the lake's query history, written when it ends."""

    def __init__(self, settings: Settings, req: QueryRequest, source: str, user: str | None) -> None:
        from tickerlake.query.history import new_id

        self.settings, self.req, self.source = settings, req, source
        self.user = user if user is not None else _os_user()
        self.id, self.started_at = new_id()
        self.started = time.perf_counter()
        self.sql = req.sql or ""

    def done(self, rows: int | None, truncated: bool, failure: BaseException | None) -> None:
        from tickerlake.query.history import HistoryEntry, QueryHistory
        from tickerlake.retry import first_line

        params = {
            k: v if isinstance(v, str | int | float | bool | list) else str(v)
            for k, v in (self.req.params or {}).items()
        }
        QueryHistory(self.settings).record(
            HistoryEntry(
                id=self.id,
                started_at=self.started_at,
                source=self.source,
                user=self.user,
                sql=self.sql,
                named=self.req.named,
                params=params,
                status="ok" if failure is None else _status(failure),
                duration_ms=round((time.perf_counter() - self.started) * 1000, 3),
                row_count=rows if failure is None else None,
                truncated=truncated,
                error=None if failure is None else first_line(failure, limit=500),
            )
        )


def _check_request(req: QueryRequest) -> None:
    if bool(req.sql and req.sql.strip()) == bool(req.named):
        # BadInput (a UserError) like every other bad parameter of an operation.
        from tickerlake.insights import BadInput

        raise BadInput("give either sql or named (one of them)")


def run(
    settings: Settings,
    req: QueryRequest,
    *,
    capped: bool = False,
    source: str = "cli",
    user: str | None = None,
) -> QueryAnswer:
    """Run one read-only query on the lake and record it in the lake's query history.

    A ``named`` query is a built-in one or, failing that, one saved in the lake; either way
    its parameters are bound as values and its SQL passes the read-only guard on this run.

    Args:
        settings: Runtime settings (lake, default limits).
        req: The SQL or named query.
        capped: Treat the settings' row and time limits as the most a request may ask
            for (the web server); otherwise the request's limits are used as given (the CLI).
        source: Who ran it, for the history: ``cli`` or ``web``.
        user: The user for the history (default: the OS user).

    Raises:
        BadInput: Neither or both of SQL and a named query.
        UnknownNamedQuery: An unknown named or saved query (a NotFoundError).
        NamedQueryError: Missing, unknown or badly typed parameters.
        QueryRefused: Not a read-only statement, or files outside the lake.
        QueryError: The statement fails (syntax, unknown table, time limit, cancelled...).
    """
    from tickerlake.query.engine import run_query

    record, result, limit = _start(settings, req, capped, source, user, run_query)
    record.done(result.row_count, result.truncated, None)
    return QueryAnswer(result, limit, record.id)


def _start(
    settings: Settings,
    req: QueryRequest,
    capped: bool,
    source: str,
    user: str | None,
    engine: Callable[..., _R],
) -> tuple[_Run, _R, int | None]:
    """Check and bind a request and start it on ``engine``; a run that fails to start is
    recorded in the history before the error is raised."""
    _check_request(req)
    limit, timeout = _limits(settings, req, capped)
    record = _Run(settings, req, source, user)
    try:
        record.sql, values = _prepare(settings, req)
        started = engine(settings, record.sql, values, limit=limit, timeout_s=timeout, run_id=req.cancel_key)
    except Exception as e:
        record.done(None, False, e)
        raise
    return record, started, limit


@dataclass
class QueryPages:
    """A running query whose rows come page by page (see :func:`stream`).

    Attributes:
        columns: Column names.
        types: DuckDB type of each column.
        sql: The statement that runs.
        limit: The row limit that applies.
        run_id: The run's id in the query history.
        pages: Lists of rows (tuples of Python values), at most ``page_rows`` each; reading
            them runs the query on; an error while reading is raised from the iteration.
        state: ``row_count`` and ``truncated`` so far (final once ``pages`` is exhausted).
    """

    columns: list[str]
    types: list[str]
    sql: str
    limit: int | None
    run_id: str
    pages: Iterator[list[tuple[Any, ...]]]
    state: dict[str, Any]


def stream(
    settings: Settings,
    req: QueryRequest,
    *,
    capped: bool = False,
    source: str = "web",
    user: str | None = None,
    page_rows: int = 500,
) -> QueryPages:
    """Start one read-only query and hand its rows over page by page as the engine produces them.

    The same query, limits, guard and history as :func:`run`; errors of the statement itself
    are raised here, before any row; the run is recorded in the history when the pages end
    (``cancelled`` when the reader stops early).

    Raises:
        The errors of :func:`run`.
    """
    from tickerlake.query.engine import stream_query

    record, running, limit = _start(settings, req, capped, source, user, stream_query)
    state: dict[str, Any] = {"row_count": 0, "truncated": False}

    def pages() -> Iterator[list[tuple[Any, ...]]]:
        from tickerlake.query.engine import QueryCancelled

        failure: BaseException | None = None
        try:
            for batch in running.batches:
                for start in range(0, batch.num_rows, page_rows):
                    part = batch.slice(start, page_rows)
                    columns = [c.to_pylist() for c in part.columns]
                    yield list(zip(*columns, strict=True))
                state.update(row_count=running.row_count, truncated=running.truncated)
        except GeneratorExit:
            failure = QueryCancelled("the reader stopped before the last row")
            raise
        except Exception as e:
            failure = e
            raise
        finally:
            state.update(row_count=running.row_count, truncated=running.truncated)
            running.batches.close()  # type: ignore[attr-defined]  # a generator: stops the query
            record.done(running.row_count, running.truncated, failure)

    return QueryPages(running.columns, running.types, running.sql, limit, record.id, pages(), state)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def _resolve(settings: Settings, name: str) -> NamedQuery:
    """A built-in named query, else a saved one, as the engine runs it.

    Raises:
        UnknownNamedQuery: Neither (the message lists both kinds).
    """
    from tickerlake.query.named import UnknownNamedQuery, get_named, list_named
    from tickerlake.query.saved import SavedQueryStore

    try:
        return get_named(name)
    except UnknownNamedQuery:
        pass
    store = SavedQueryStore(settings)
    saved = store.find(name)
    if saved is None:
        builtin = ", ".join(q.name for q in list_named())
        mine = ", ".join(q.name for q in store.list()) or "none"
        raise UnknownNamedQuery(f"unknown named query {name[:70]!r} (built-in: {builtin}; saved: {mine})")
    return saved.as_named()


def cancel(cancel_key: str) -> bool:
    """Cancel a running query by the ``cancel_key`` it was started with; False if none runs under it."""
    from tickerlake.query.engine import cancel_query

    return cancel_query(cancel_key)


# --------------------------------------------------------------------------- saved queries


def saved_queries(settings: Settings) -> list[SavedQuery]:
    """The queries saved in the lake, sorted by name (JSON: name, description, sql, params, times)."""
    from tickerlake.query.saved import SavedQueryStore

    return SavedQueryStore(settings).list()


def get_saved(settings: Settings, name: str) -> SavedQuery:
    """One saved query.

    Raises:
        UnknownNamedQuery: None of that name.
        SavedQueryError: A name no saved query can have.
    """
    from tickerlake.query.saved import SavedQueryStore

    return SavedQueryStore(settings).get(name)


def save_query(
    settings: Settings,
    name: str,
    sql: str,
    description: str = "",
    params: Iterable[SavedParam] | Iterable[Mapping[str, Any]] = (),
    *,
    replace: bool = False,
) -> SavedQuery:
    """Save a query in the lake (see :meth:`~tickerlake.query.saved.SavedQueryStore.save`).

    Raises:
        SavedQueryError: A bad name (or a built-in's), description or parameter; the name
            is taken and ``replace`` is off.
        QueryRefused: The SQL is not one read-only statement.
        QueryError: The SQL does not parse.
    """
    from tickerlake.query.saved import SavedQueryStore

    return SavedQueryStore(settings).save(name, sql, description, params, replace=replace)


def delete_saved(settings: Settings, name: str) -> SavedQuery:
    """Delete a saved query; returns what it was.

    Raises:
        UnknownNamedQuery: None of that name.
    """
    from tickerlake.query.saved import SavedQueryStore

    return SavedQueryStore(settings).delete(name)


# --------------------------------------------------------------------------- history


def history(settings: Settings, limit: int = 50, status: str | None = None) -> list[HistoryEntry]:
    """The lake's most recent query runs, newest first (bounded: the lake keeps the last 500)."""
    from tickerlake.query.history import QueryHistory

    return QueryHistory(settings).entries(limit, status)


def clear_history(settings: Settings) -> int:
    """Delete the lake's query history; returns how many runs were deleted."""
    from tickerlake.query.history import QueryHistory

    return QueryHistory(settings).clear()


def csv_cell(value: Any) -> str:
    """One result value as CSV text: empty for NULL and NaN, JSON for lists and structs, else its text."""
    converted = jsonable(value)
    if converted is None:  # NULL, and NaN (JSON has no NaN, so jsonable makes it None)
        return ""
    if isinstance(converted, list | dict):
        return json.dumps(converted)
    return str(converted)


def write_csv(result: QueryResult, out: TextIO) -> None:
    """Write a header line and the rows of ``result`` as CSV to ``out``."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(result.columns)
    for row in result.rows():
        writer.writerow([csv_cell(v) for v in row])
