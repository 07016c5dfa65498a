"""Read-only SQL over the lake (DuckDB over the Iceberg catalog and raw tables), named queries."""

from __future__ import annotations

from tickerlake.query.engine import (
    ColumnInfo,
    QueryEngine,
    QueryResult,
    QueryTimeout,
    SnapshotInfo,
    TableInfo,
    clear_engines,
    get_engine,
    list_tables,
    run_named,
    run_query,
    table_history,
)
from tickerlake.query.guard import CheckedStatement, QueryError, check_sql
from tickerlake.query.named import (
    NamedQuery,
    NamedQueryError,
    Param,
    UnknownNamedQuery,
    get_named,
    list_named,
)

__all__ = [
    "CheckedStatement",
    "ColumnInfo",
    "NamedQuery",
    "NamedQueryError",
    "Param",
    "QueryEngine",
    "QueryError",
    "QueryResult",
    "QueryTimeout",
    "SnapshotInfo",
    "TableInfo",
    "UnknownNamedQuery",
    "check_sql",
    "clear_engines",
    "get_engine",
    "get_named",
    "list_named",
    "list_tables",
    "run_named",
    "run_query",
    "table_history",
]
