"""Quoting for SQL that the lake's code writes itself (DuckDB dialect). No I/O.

File names, table locations and column names end up inside generated SQL; a quote in
any of them must never end a literal early. Every generated statement quotes through
these helpers, so there is one rule to get right.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["sql_ident", "sql_list", "sql_literal", "sql_map"]


def sql_literal(text: str) -> str:
    """A SQL string literal: ``o'brien.csv`` → ``'o''brien.csv'``."""
    return "'" + text.replace("'", "''") + "'"


def sql_ident(name: str) -> str:
    """A quoted SQL identifier: ``adj close`` → ``"adj close"``."""
    return '"' + name.replace('"', '""') + '"'


def sql_list(items: Iterable[str]) -> str:
    """A list of string literals: ``['a.csv', 'b''s.csv']``."""
    return "[" + ", ".join(sql_literal(s) for s in items) + "]"


def sql_map(pairs: Mapping[str, str]) -> str:
    """A struct of string literals, as DuckDB's readers take column types: ``{'a': 'DATE'}``."""
    return "{" + ", ".join(f"{sql_literal(k)}: {sql_literal(v)}" for k, v in pairs.items()) + "}"
