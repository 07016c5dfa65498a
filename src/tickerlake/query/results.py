"""Results of queries: the rows and what describes them, and their JSON form. No I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from tickerlake.jsonable import jsonable

__all__ = ["QueryResult", "jsonable", "unique_names"]


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
