"""Reads curated tables as Arrow, for insights and the web app."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pyarrow as pa
from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression, GreaterThanOrEqual, In, LessThanOrEqual

from tickerlake.config import Settings
from tickerlake.lake.catalog import load_table_or_none, open_catalog
from tickerlake.lake.schemas import TABLES, arrow_schema

__all__ = ["read_table"]


def read_table(
    settings: Settings,
    identifier: str = "market.daily_bars",
    tickers: Sequence[str] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """Read a curated table, filtered by ticker and inclusive date range, sorted by (ticker, date).

    Returns an empty table with the canonical schema when the table does not exist yet.
    """
    table = load_table_or_none(open_catalog(settings), identifier)
    if table is None:
        empty = arrow_schema(TABLES[identifier]).empty_table()
        return empty.select(list(columns)) if columns else empty
    expr: BooleanExpression = AlwaysTrue()
    if tickers:
        expr = And(expr, In("ticker", [t.upper() for t in tickers]))
    if start is not None:
        expr = And(expr, GreaterThanOrEqual("date", start.isoformat()))
    if end is not None:
        expr = And(expr, LessThanOrEqual("date", end.isoformat()))
    scan = table.scan(row_filter=expr, selected_fields=tuple(columns) if columns else ("*",))
    out = scan.to_arrow()
    sort_keys = [(k, "ascending") for k in ("ticker", "date") if k in out.column_names]
    return out.sort_by(sort_keys) if sort_keys else out
