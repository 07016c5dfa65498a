"""``tickerlake query`` and ``tickerlake tables``: read-only SQL over the lake (the Athena part).

A thin shell over :mod:`tickerlake.service.queries` and :mod:`tickerlake.service.catalog`,
the operations behind the web API's ``/api/query``, ``/api/named``, ``/api/saved``,
``/api/history`` and ``/api/catalog``: run SQL or a built-in or saved query, save, edit
and delete saved queries, list the lake's query history.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from tickerlake.cli._app import app
from tickerlake.cli._common import (
    JsonOpt,
    console,
    err_console,
    fail,
    render,
    render_rows,
    settings_of,
    user_errors,
)
from tickerlake.config import Settings

if TYPE_CHECKING:  # the engine pulls in DuckDB and pyiceberg: imported only when a command runs
    from tickerlake.query.engine import QueryResult

__all__ = ["OutputFormat", "parse_params", "query_command", "tables_command"]


#: The statuses of runs in the query history.
_STATUSES = ("ok", "error", "refused", "timeout", "cancelled")


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
        render_rows(None, list(result.columns), [[csv_cell(v) for v in row] for row in result.rows()])
    if fmt is OutputFormat.table or result.truncated:
        err_console.print(note, style="dim" if not result.truncated else "yellow", highlight=False)


def _print_named(settings: Settings, as_json: bool) -> None:
    from tickerlake.service.queries import listed_queries

    listed = listed_queries(settings)

    def text() -> None:
        rows = [
            (q.name, q.kind,
             ", ".join(f"{p.name}: {p.type}{'?' if p.optional else ''}" for p in q.params), q.description)
            for q in listed
        ]  # fmt: skip
        title = "named queries (tickerlake query --named NAME --param name=value …)"
        render_rows(
            title, ["name", "kind", "parameters", "description"], rows, ["name", "parameters", "description"]
        )

    render(listed, as_json, text)


def _save(settings: Settings, name: str, sql: str, description: str, declare: list[str], replace: bool,
          as_json: bool) -> None:  # fmt: skip
    from tickerlake.query.saved import parse_param_spec
    from tickerlake.service.queries import save_query

    with user_errors():
        params = [parse_param_spec(d) for d in declare]
        saved = save_query(settings, name, sql, description, params, replace=replace)

    def text() -> None:
        params = " ".join(f"--param {p.name}=…" for p in saved.params if not p.optional)
        console.print(f"saved query [bold]{escape(saved.name)}[/] in {settings.lake_uri}", highlight=False)
        console.print(f"run it: tickerlake query --named {saved.name} {params}".rstrip(), style="dim",
                      highlight=False)  # fmt: skip

    render(saved, as_json, text)


def _print_history(settings: Settings, limit: int, status: str | None, as_json: bool) -> None:
    from tickerlake.service.queries import history

    with user_errors():
        entries = history(settings, limit, status)

    def text() -> None:
        rows = []
        for e in entries:
            what = e.named or " ".join(e.sql.split())
            if e.error:
                what = f"{what} — {e.error}"
            count = "" if e.row_count is None else f"{e.row_count:,}" + ("+" if e.truncated else "")
            rows.append((e.started_at[:19].replace("T", " "), e.status, f"{e.duration_ms:.0f}", count,
                         what if len(what) <= 120 else what[:119] + "…", f"{e.source}:{e.user}"))  # fmt: skip
        render_rows(f"query history of {settings.lake_uri} (newest first)",
                    ["started (UTC)", "status", "ms", "rows", "query", "by"], rows,
                    ["started (UTC)", "status", "query", "rows", "ms"])  # fmt: skip

    render(entries, as_json, text)


@app.command("query")
def query_command(
    ctx: typer.Context,
    sql: str = typer.Argument(None, help="One read-only SQL statement ('-' reads it from stdin)."),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="Output format."),
    named: str = typer.Option(
        None, "--named", "-n", help="Run a built-in or saved query; 'list' lists both."
    ),
    param: list[str] = typer.Option(None, "--param", "-p", help="Query parameter name=value (repeatable)."),
    limit: int = typer.Option(
        None, "--limit", help="Maximum rows (default: TICKERLAKE_QUERY_ROW_LIMIT, 10000); 0 = all."
    ),
    timeout: float = typer.Option(
        None, "--timeout", help="Time limit in seconds (default: TICKERLAKE_QUERY_TIMEOUT_S, 30)."
    ),
    save: str = typer.Option(None, "--save", help="Save the SQL in the lake as a query of this name."),
    description: str = typer.Option("", "--description", "-d", help="With --save: what the query answers."),
    declare: list[str] = typer.Option(
        None, "--declare", help="With --save: a parameter name:type[?][:doc], e.g. start:date (repeatable)."
    ),
    replace: bool = typer.Option(
        False, "--replace", help="With --save: change the saved query of that name."
    ),
    delete: str = typer.Option(None, "--delete", help="Delete the saved query of this name."),
    show_history: bool = typer.Option(
        False, "--history", help="List the lake's recent queries (--limit of them, default 20)."
    ),
    status: str = typer.Option(
        None, "--status", help="With --history: only ok, error, refused, timeout or cancelled."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Run read-only SQL over the lake's tables (market.*, stream.*, raw.*), or a built-in or
    saved query; save, change and delete saved queries; show the query history."""
    if as_json:
        fmt = OutputFormat.json
    params = parse_params(param or [])
    settings = settings_of(ctx)
    actions = [bool(save), bool(delete), show_history, named == "list"]
    if sum(actions) > 1:
        raise fail("give one of --save, --delete, --history and --named list")
    if (description or declare or replace) and not save:
        raise fail("--description, --declare and --replace go with --save NAME")
    if status and not show_history:
        raise fail("--status goes with --history")
    if status and status not in _STATUSES:
        raise fail(f"--status {status!r}: one of {', '.join(_STATUSES)}")
    if named == "list":
        if sql or params:
            raise fail("--named list takes no SQL or parameters")
        _print_named(settings, fmt is OutputFormat.json)
        return
    if show_history:
        if sql or named or params:
            raise fail("--history takes no SQL, --named or parameters")
        _print_history(settings, 20 if limit is None else max(limit, 1), status, fmt is OutputFormat.json)
        return
    if delete:
        if sql or named or params:
            raise fail("--delete NAME takes no SQL, --named or parameters")
        from tickerlake.service.queries import delete_saved

        with user_errors():
            gone = delete_saved(settings, delete)
        render(gone, fmt is OutputFormat.json, lambda: console.print(f"deleted saved query {gone.name}"))
        return
    if save:
        if not sql or named or params:
            raise fail('--save NAME saves the SQL given: tickerlake query "SELECT …" --save NAME')
        _save(settings, save, sys.stdin.read() if sql == "-" else sql, description, declare or [], replace,
              fmt is OutputFormat.json)  # fmt: skip
        return
    if named and sql:
        raise fail("give either SQL or --named NAME, not both")
    if not named and not sql:
        raise fail('give a SQL statement, e.g. tickerlake query "SELECT * FROM market.daily_bars LIMIT 5"')
    from tickerlake.service.queries import QueryRequest, run

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
            suspected = [] if as_json else catalog.suspected_splits(settings)
    if name is None:

        def text() -> None:
            rows = [
                (t.name, t.kind if t.kind == t.format else f"{t.kind} {t.format}",
                 "?" if t.row_count is None else f"{t.row_count:,}",
                 str(t.snapshot_count) if t.kind == "iceberg" else "-", str(len(t.columns)),
                 ", ".join(t.partition_keys))
                for t in tables
            ]  # fmt: skip
            render_rows(f"tables in {settings.lake_uri}", ["name", "type", "rows", "snapshots", "columns", "partitions"],
                        rows, ["name", "rows", "type", "columns", "snapshots"])  # fmt: skip
            for t in tables:
                if t.error:
                    err_console.print(f"[yellow]{t.name}: {t.error}[/]", highlight=False)
            for s in suspected:
                console.print(
                    f"[yellow]suspected split:[/] {s.ticker} on {s.date} (ratio {s.ratio:g}), not applied",
                    highlight=False,
                )
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
