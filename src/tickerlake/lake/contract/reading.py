"""Reading curated tables as Arrow: the one way the lake's bars are read.

The dashboard, the insights CLI, the stream replay, the sink's reference tickers and the
demo all read ``market.daily_bars`` through :func:`read_bars`, so they see the same rows
with the same columns in the same order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import (
    AlwaysTrue,
    And,
    BooleanExpression,
    GreaterThanOrEqual,
    In,
    LessThanOrEqual,
    Reference,
)
from pyiceberg.expressions.literals import literal

from tickerlake.config import Settings
from tickerlake.lake.contract.datasets import ACTIONS, BAR_COLUMNS, BARS, TABLES, arrow_schema

__all__ = ["read_actions", "read_bars", "read_table", "read_tickers"]


def read_table(
    settings: Settings,
    identifier: str = BARS.table,
    tickers: Sequence[str] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """Read a curated table, filtered by ticker and inclusive date range, sorted by (ticker, date).

    Args:
        settings: Runtime settings.
        identifier: Catalog identifier of the table.
        tickers: Only these tickers (any case; None or empty: all).
        start: First day, inclusive.
        end: Last day, inclusive.
        columns: Only these columns, in this order (None: all); columns the table does not
            have yet (added to the contract after it was written) are left out.

    Returns:
        The rows; an empty table with the canonical schema when the table does not exist yet.
    """
    # Imported here: the catalog module itself takes the layout from this package.
    from tickerlake.lake.catalog import load_table_or_none, open_catalog

    table = load_table_or_none(open_catalog(settings), identifier)
    if table is None:
        empty = arrow_schema(TABLES[identifier]).empty_table()
        return empty.select(list(columns)) if columns else empty
    if columns:
        # A lake written before a column was added has no such column until the ETL's next run.
        have = {f.name for f in table.schema().fields}
        columns = [c for c in columns if c in have]
    expr: BooleanExpression = AlwaysTrue()
    if tickers:
        # The keyword form of pyiceberg's (pydantic) model fields, which its types declare;
        # the positional shorthand does the same at run time but does not type-check.
        expr = And(expr, In(term=Reference("ticker"), values={literal(t.strip().upper()) for t in tickers}))
    if start is not None:
        expr = And(expr, GreaterThanOrEqual(term=Reference("date"), value=literal(start.isoformat())))
    if end is not None:
        expr = And(expr, LessThanOrEqual(term=Reference("date"), value=literal(end.isoformat())))
    scan = table.scan(row_filter=expr, selected_fields=tuple(columns) if columns else ("*",))
    out = scan.to_arrow()
    sort_keys = [(k, "ascending") for k in ("ticker", "date") if k in out.column_names]
    return out.sort_by(sort_keys) if sort_keys else out


def read_bars(
    settings: Settings,
    tickers: Sequence[str] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    columns: Sequence[str] = BAR_COLUMNS,
) -> pa.Table:
    """The curated daily bars, sorted by (ticker, date).

    Args:
        settings: Runtime settings.
        tickers: Only these tickers (None or empty: all).
        start: First day, inclusive.
        end: Last day, inclusive.
        columns: Columns to read; by default :data:`BAR_COLUMNS` (key and values, no provenance).

    Returns:
        The bars; empty (with the columns) when the lake holds none yet.
    """
    return read_table(settings, BARS.table, tickers, start, end, columns=list(columns))


def read_actions(settings: Settings) -> pa.Table:
    """The curated corporate actions (splits, dividends), sorted by (ticker, date)."""
    return read_table(settings, ACTIONS.table)


def read_tickers(settings: Settings) -> tuple[str, ...]:
    """The tickers ``market.daily_bars`` holds, sorted (empty when it holds none)."""
    column = read_bars(settings, columns=("ticker",)).column("ticker")
    return tuple(sorted(str(t) for t in pc.unique(column).to_pylist() if t))
