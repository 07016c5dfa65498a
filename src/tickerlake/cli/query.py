"""``tickerlake query`` and ``tickerlake tables``: read-only SQL over the lake (the Athena part).

A thin shell over :mod:`tickerlake.service.queries` and :mod:`tickerlake.service.catalog`,
the operations behind the web API's ``/api/query``, ``/api/named`` and ``/api/catalog``.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from tickerlake.cli._app import app
from tickerlake.cli._common import (
    JsonOpt,
    console,
    err_console,
    fail,
    render,
    settings_of,
    user_errors,
)

if TYPE_CHECKING:  # the engine pulls in DuckDB and pyiceberg: imported only when a command runs
    from tickerlake.query.engine import QueryResult

__all__ = ["OutputFormat", "parse_params", "query_command", "tables_command"]


class OutputFormat(StrEnum):
    """Output formats of ``tickerlake query``."""

    table = "table"
    json = "json"
    csv = "csv"


def parse_params(items: list[str]) -> dict[str, str]:
    """``name=value`` strings into a dict.

    Raises:
        typer.Exit: A malformed or repeated parameter (after printing a one-line error).
    """
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise fail(f"--param {item!r}: write it as name=value")
        if name in out:
            raise fail(f"--param {name} given twice")
        out[name] = value
    return out


def _print_result(result: QueryResult, fmt: OutputFormat, limit_hint: bool) -> None:
    from tickerlake.service.queries import csv_cell, write_csv

    note = f"{result.row_count} row{'s' if result.row_count != 1 else ''} in {result.elapsed_ms:.0f} ms"
    if result.truncated:
        note += f" — truncated at {result.row_count} rows" + (
            " (raise with --limit N, 0 = no limit)" if limit_hint else ""
        )
    if fmt is OutputFormat.json:
        sys.stdout.write(json.dumps(result.records(), indent=2) + "\n")
    elif fmt is OutputFormat.csv:
        write_csv(result, sys.stdout)
    else:
        table = Table(show_lines=False)
        for name, kind in zip(result.columns, result.types, strict=False):
            numeric = any(t in kind for t in ("INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL"))
            table.add_column(name, justify="right" if numeric else "left")
        for row in result.rows():
            table.add_row(*[csv_cell(v) for v in row])
        console.print(table)
    if fmt is OutputFormat.table or result.truncated:
        err_console.print(note, style="dim" if not result.truncated else "yellow", highlight=False)


def _print_named(as_json: bool) -> None:
    from tickerlake.service.queries import named_queries

    queries = named_queries()

    def text() -> None:
        table = Table(title="named queries (tickerlake query --named NAME --param name=value …)")
        table.add_column("name")
        table.add_column("parameters")
        table.add_column("description")
        for q in queries:
            params = ", ".join(f"{p.name}: {p.type}{'?' if p.optional else ''}" for p in q.params)
            table.add_row(q.name, params, q.description)
        console.print(table)

    render(queries, as_json, text)


@app.command("query")
def query_command(
    ctx: typer.Context,
    sql: str = typer.Argument(None, help="One read-only SQL statement ('-' reads it from stdin)."),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="Output format."),
    named: str = typer.Option(None, "--named", "-n", help="Run a named query; 'list' lists them."),
    param: list[str] = typer.Option(None, "--param", "-p", help="Query parameter name=value (repeatable)."),
    limit: int = typer.Option(
        None, "--limit", help="Maximum rows (default: TICKERLAKE_QUERY_ROW_LIMIT, 10000); 0 = all."
    ),
    timeout: float = typer.Option(
        None, "--timeout", help="Time limit in seconds (default: TICKERLAKE_QUERY_TIMEOUT_S, 30)."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Run read-only SQL over the lake's tables (market.*, stream.*, raw.*), or a named query."""
    if as_json:
        fmt = OutputFormat.json
    params = parse_params(param or [])
    if named == "list":
        if sql or params:
            raise fail("--named list takes no SQL or parameters")
        _print_named(fmt is OutputFormat.json)
        return
    if named and sql:
        raise fail("give either SQL or --named NAME, not both")
    if not named and not sql:
        raise fail('give a SQL statement, e.g. tickerlake query "SELECT * FROM market.daily_bars LIMIT 5"')
    from tickerlake.service.queries import QueryRequest, run

    settings = settings_of(ctx)
    text = sys.stdin.read() if sql == "-" else sql
    with user_errors():
        # The CLI's user owns the machine: limits are used as given (the server caps them).
        answer = run(settings, QueryRequest(text, named, params or None, limit, timeout))
    _print_result(answer.result, fmt, limit_hint=True)


@app.command("tables")
def tables_command(
    ctx: typer.Context,
    name: str = typer.Argument(None, help="Show one table's columns and snapshots (e.g. market.daily_bars)."),
    as_json: bool = JsonOpt,
) -> None:
    """List the tables queryable in SQL: curated Iceberg tables and crawled raw tables."""
    from tickerlake.service import catalog

    settings = settings_of(ctx)
    with user_errors():
        if name is not None:
            detail = catalog.table_detail(settings, name)
        else:
            tables = catalog.tables(settings)
    if name is None:

        def text() -> None:
            table = Table(title=f"tables in {settings.lake_uri}")
            table.add_column("name", no_wrap=True)
            for col in ("type", "rows", "snapshots", "columns", "partitions"):
                table.add_column(col, justify="left" if col in ("type", "partitions") else "right")
            for t in tables:
                rows = "?" if t.row_count is None else f"{t.row_count:,}"
                snaps = str(t.snapshot_count) if t.kind == "iceberg" else "-"
                kind = t.kind if t.kind == t.format else f"{t.kind} {t.format}"
                table.add_row(t.name, kind, rows, snaps, str(len(t.columns)), ", ".join(t.partition_keys))
            console.print(table)
            for t in tables:
                if t.error:
                    err_console.print(f"[yellow]{t.name}: {t.error}[/]", highlight=False)
            console.print(
                "details: tickerlake tables NAME · named queries: tickerlake query --named list", style="dim"
            )

        render(tables, as_json, text)
        return

    info, history = detail.table, detail.snapshots

    def text_detail() -> None:
        table = Table(title=f"{info.name} ({info.kind}, {info.format}) — {info.location}")
        table.add_column("column")
        table.add_column("type")
        table.add_column("nullable")
        for c in info.columns:
            table.add_row(
                c.name + (" (partition)" if c.partition else ""), c.type, "yes" if c.nullable else "no"
            )
        console.print(table)
        rows = "?" if info.row_count is None else f"{info.row_count:,}"
        console.print(f"rows: {rows}   files: {info.files}   bytes: {info.size_bytes:,}", highlight=False)
        if history:
            snaps = Table(title="snapshots (newest first)")
            for col in ("snapshot", "time", "operation", "added records", "total records"):
                snaps.add_column(col)
            for s in history:
                snaps.add_row(
                    str(s.snapshot_id) + (" *" if s.current else ""),
                    s.timestamp,
                    s.operation,
                    s.summary.get("added-records", ""),
                    s.summary.get("total-records", ""),
                )
            console.print(snaps)

    render(detail, as_json, text_detail)
