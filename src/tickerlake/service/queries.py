"""Read-only SQL and named queries as operations, and the one way a result cell becomes CSV text.

The query engine (DuckDB over the catalog) does the work; this module decides what a
request is (SQL text or a named query with parameters), which limits apply, and how rows
are written as CSV. The engine is imported when a query runs, not when a shell starts.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from tickerlake.config import Settings
from tickerlake.jsonable import jsonable

if TYPE_CHECKING:
    from tickerlake.query.engine import QueryResult
    from tickerlake.query.named import NamedQuery

__all__ = ["QueryAnswer", "QueryRequest", "csv_cell", "named_queries", "run", "write_csv"]


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
    """

    sql: str | None = None
    named: str | None = None
    params: Mapping[str, Any] | None = None
    limit: int | None = None
    timeout_s: float | None = None


@dataclass(frozen=True)
class QueryAnswer:
    """The rows of a query and the row limit that applied.

    Attributes:
        result: Columns, types and rows (see :class:`~tickerlake.query.results.QueryResult`).
        limit: The row limit used (None: the engine's default, 0: none).
    """

    result: QueryResult
    limit: int | None


def named_queries() -> list[NamedQuery]:
    """The shipped named queries with their parameters and SQL, sorted by name.

    :func:`tickerlake.jsonable.jsonable` of each is its JSON form (name, description,
    params, sql) for every shell.
    """
    from tickerlake.query.named import list_named

    return list_named()


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


def run(settings: Settings, req: QueryRequest, *, capped: bool = False) -> QueryAnswer:
    """Run one read-only query on the lake.

    Args:
        settings: Runtime settings (lake, default limits).
        req: The SQL or named query.
        capped: Treat the settings' row and time limits as the most a request may ask
            for (the web server); otherwise the request's limits are used as given (the CLI).

    Raises:
        BadInput: Neither or both of SQL and a named query.
        UnknownNamedQuery: An unknown named query (a NotFoundError).
        NamedQueryError: Missing, unknown or badly typed parameters.
        QueryRefused: Not a read-only statement, or files outside the lake.
        QueryError: The statement fails (syntax, unknown table, time limit...).
    """
    from tickerlake.query.engine import run_named, run_query

    if bool(req.sql and req.sql.strip()) == bool(req.named):
        # BadInput (a UserError) like every other bad parameter of an operation.
        from tickerlake.insights import BadInput

        raise BadInput("give either sql or named (one of them)")
    limit, timeout = _limits(settings, req, capped)
    params = dict(req.params) if req.params else None
    if req.named:
        result = run_named(settings, req.named, params, limit=limit, timeout_s=timeout)
    else:
        assert req.sql is not None  # checked above
        result = run_query(settings, req.sql, params, limit=limit, timeout_s=timeout)
    return QueryAnswer(result, limit)


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
