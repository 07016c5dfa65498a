"""The read-only SQL guard: which statements and functions the query engine runs.

The guard uses DuckDB's own parser (on a private in-memory connection with external
access disabled, so parsing never touches a file) instead of regular expressions: a
statement is allowed only when DuckDB classifies it as a read (SELECT, WITH, VALUES,
FROM-first, SHOW/DESCRIBE/SUMMARIZE, PIVOT with an explicit IN list, or EXPLAIN of one of
those), and when its parse tree calls no function that changes state, runs SQL text, scans
process memory or reveals secrets. Reading files outside the lake is stopped separately by
the engine's locked DuckDB configuration; the guard is the first of the two walls.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb

from tickerlake.errors import QueryError, QueryRefused

__all__ = [
    "DENIED_FUNCTIONS",
    "CheckedStatement",
    "QueryError",
    "check_sql",
    "one_line",
]

#: Functions a read-only query may not call, lower case. They either mutate state
#: (checkpoints, logging, Iceberg properties, sequences), execute SQL text that the guard
#: cannot see (``query``, ``json_execute_serialized_sql``), dereference raw pointers or
#: Python objects (``arrow_scan``, ``pandas_scan``), or reveal credentials.
DENIED_FUNCTIONS: frozenset[str] = frozenset(
    {
        "arrow_scan",
        "arrow_scan_dumb",
        "checkpoint",
        "copy_database",
        "currval",
        "disable_logging",
        "disable_profiling",
        "duckdb_secrets",
        "enable_logging",
        "enable_profiling",
        "force_checkpoint",
        "getenv",
        "iceberg_load_table_response",
        "iceberg_to_ducklake",
        "import_database",
        "json_execute_serialized_sql",
        "nextval",
        "pandas_scan",
        "python_map_function",
        "query",
        "query_table",
        "remove_iceberg_schema_properties",
        "remove_iceberg_table_properties",
        "set_iceberg_schema_properties",
        "set_iceberg_table_properties",
        "truncate_duckdb_logs",
        "which_secret",
        "write_log",
    }
)

_ALLOWED_HINT = "only reads are allowed (SELECT, WITH, VALUES, SHOW, DESCRIBE, SUMMARIZE, EXPLAIN)"

# Leading whitespace and comments, so that the first keyword of a statement can be named.
_LEADING_NOISE = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.DOTALL)
_FIRST_WORDS = re.compile(r"\A[A-Za-z_]+(?:\s+[A-Za-z_]+)?")
# Second keywords worth naming in a refusal ("DROP TABLE", "FORCE INSTALL"), not object names.
_SECOND_WORDS = frozenset(
    {
        "DATABASE",
        "EXTENSIONS",
        "FUNCTION",
        "INDEX",
        "INSTALL",
        "INTO",
        "MACRO",
        "SCHEMA",
        "SECRET",
        "SEQUENCE",
        "TABLE",
        "TRANSACTION",
        "TYPE",
        "VARIABLE",
        "VIEW",
    }
)
# EXPLAIN [ANALYZE|ANALYSE] [(options)] <statement>
_EXPLAIN = re.compile(r"\Aexplain\b\s*(?:analy[sz]e\b\s*)?(?:\([^()]*\)\s*)?", re.IGNORECASE)

# Statement kinds by DuckDB's classification, as users know them from SQL.
_KIND_BY_TYPE = {
    "INSERT": "INSERT",
    "UPDATE": "UPDATE",
    "DELETE": "DELETE/TRUNCATE",
    "CREATE": "CREATE",
    "DROP": "DROP",
    "ALTER": "ALTER",
    "COPY": "COPY",
    "COPY_DATABASE": "COPY DATABASE",
    "EXPORT": "EXPORT",
    "ATTACH": "ATTACH",
    "DETACH": "DETACH",
    "LOAD": "INSTALL/LOAD",
    "SET": "SET/RESET/USE",
    "VARIABLE_SET": "SET VARIABLE",
    "PRAGMA": "PRAGMA",
    "CALL": "CALL",
    "TRANSACTION": "transaction",
    "PREPARE": "PREPARE",
    "EXECUTE": "EXECUTE",
    "VACUUM": "VACUUM/ANALYZE",
    "ANALYZE": "ANALYZE",
    "MERGE_INTO": "MERGE",
    "CREATE_FUNC": "CREATE FUNCTION",
}


@dataclass(frozen=True, slots=True)
class CheckedStatement:
    """A statement that passed the guard.

    Attributes:
        sql: The statement text to execute.
        kind: ``SELECT`` or ``EXPLAIN``.
        parameters: Names of its prepared-statement parameters (``$name``; ``?`` are
            numbered ``1``, ``2``...).
        functions: Functions it calls, lower case, sorted.
    """

    sql: str
    kind: str
    parameters: frozenset[str]
    functions: tuple[str, ...]


class _Parser:
    """A private DuckDB connection used only for parsing; serialised by a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            # No file access even for IMPORT DATABASE, which reads files at parse time.
            self._con = duckdb.connect(
                ":memory:",
                config={
                    "enable_external_access": False,
                    "autoinstall_known_extensions": False,
                    "autoload_known_extensions": False,
                },
            )
        return self._con

    def statements(self, sql: str) -> list[Any]:
        with self._lock:
            return self._connection().extract_statements(sql)

    def tree(self, sql: str) -> dict[str, Any]:
        with self._lock:
            row = self._connection().execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
        assert row is not None
        return json.loads(row[0])


_PARSER = _Parser()


def one_line(message: str) -> str:
    """A DuckDB error message as one line: without the ``LINE n:`` excerpt and caret."""
    kept = []
    for line in str(message).splitlines():
        if line.startswith("LINE ") or not line.strip() or set(line.strip()) == {"^"}:
            continue
        kept.append(line.strip())
    return " ".join(kept) or str(message).strip()


def _describe(sql: str, type_name: str) -> str:
    """The statement's kind as users wrote it (first keywords), for refusal messages."""
    body = _LEADING_NOISE.sub("", sql)
    match = _FIRST_WORDS.match(body)
    if match:
        words = match.group(0).upper().split()
        if len(words) == 2 and words[1] not in _SECOND_WORDS:
            words = words[:1]
        return " ".join(words)
    return _KIND_BY_TYPE.get(type_name, type_name)


def _type_name(statement: Any) -> str:
    return str(statement.type).rsplit(".", 1)[-1]


def _function_names(node: Any) -> Iterator[str]:
    """Names of every function (scalar, aggregate, window, table) in a parse tree."""
    if isinstance(node, dict):
        name = node.get("function_name")
        if isinstance(name, str):
            yield name.lower()
        for value in node.values():
            yield from _function_names(value)
    elif isinstance(node, list):
        for value in node:
            yield from _function_names(value)


def _parse(sql: str) -> list[Any]:
    try:
        return _PARSER.statements(sql)
    except duckdb.PermissionException as e:
        raise QueryRefused(f"refused: {one_line(str(e))}") from None
    except duckdb.Error as e:
        raise QueryError(one_line(str(e))) from None


def _check_select(sql: str) -> tuple[str, ...]:
    """Functions called by one SELECT-class statement; refuses denied ones."""
    tree = _PARSER.tree(sql)
    if tree.get("error"):
        raise QueryRefused(f"refused: cannot inspect this statement ({tree.get('error_message', 'unknown')})")
    names = sorted(set(_function_names(tree.get("statements", []))))
    denied = [n for n in names if n in DENIED_FUNCTIONS]
    if denied:
        raise QueryRefused(f"refused: function {denied[0]}() is not allowed in read-only queries")
    return tuple(names)


def check_sql(sql: str) -> CheckedStatement:
    """Check that ``sql`` is exactly one read-only statement.

    Args:
        sql: SQL text from the user (one statement; a trailing semicolon is fine).

    Returns:
        The statement with its kind, parameter names and called functions.

    Raises:
        QueryRefused: Not a read, several statements, or a forbidden function.
        QueryError: The SQL does not parse.
    """
    if not sql or not sql.strip():
        raise QueryError("empty query: write one SELECT statement")
    if "\x00" in sql:
        # DuckDB reads SQL text as a C string: whatever follows a NUL would be shown back to
        # the user as the statement that ran, but never parsed nor checked.
        raise QueryError("the query contains a NUL character")
    statements = _parse(sql)
    if not statements:
        raise QueryError("empty query: write one SELECT statement")
    if len(statements) > 1:
        # PIVOT without an IN list is expanded by the parser into a CREATE TYPE + SELECT.
        if _type_name(statements[0]) == "CREATE" and not statements[0].query.strip():
            raise QueryRefused(
                "refused: PIVOT needs an explicit value list here: PIVOT … ON col IN ('a', 'b') …"
            )
        raise QueryRefused(f"refused: one statement per query, got {len(statements)}")
    statement = statements[0]
    type_name = _type_name(statement)
    if type_name == "SELECT":
        functions = _check_select(statement.query)
        return CheckedStatement(sql, "SELECT", frozenset(statement.named_parameters), functions)
    if type_name == "EXPLAIN":
        body = _LEADING_NOISE.sub("", statement.query)
        match = _EXPLAIN.match(body)
        inner_sql = body[match.end() :] if match else ""
        inner = _parse(inner_sql) if inner_sql.strip() else []
        if len(inner) != 1 or _type_name(inner[0]) != "SELECT":
            what = _describe(inner_sql, _type_name(inner[0])) if inner else "this statement"
            raise QueryRefused(f"refused: EXPLAIN of {what} is not allowed; {_ALLOWED_HINT}")
        functions = _check_select(inner[0].query)
        return CheckedStatement(sql, "EXPLAIN", frozenset(statement.named_parameters), functions)
    kind = _describe(statement.query, type_name)
    raise QueryRefused(f"refused: {kind} statements are not allowed; {_ALLOWED_HINT}")
