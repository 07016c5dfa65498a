"""Shared CLI plumbing: settings from the global options, rendering, one-line errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tickerlake.config import Settings
from tickerlake.errors import TickerlakeError
from tickerlake.jsonable import jsonable as to_jsonable

__all__ = [
    "JsonOpt",
    "console",
    "err_console",
    "fail",
    "progress",
    "render",
    "render_rows",
    "settings_of",
    "to_jsonable",
    "user_errors",
]

console = Console()
err_console = Console(stderr=True)

JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON instead of text.")


def settings_of(ctx: typer.Context) -> Settings:
    """The settings built by the top-level callback."""
    root = ctx.find_root()
    if not isinstance(root.obj, Settings):
        root.obj = Settings()
    return root.obj


def render(obj: Any, as_json: bool, text: Callable[[], None] | None = None) -> None:
    """Print ``obj`` as JSON, or call ``text`` to print it for humans."""
    if as_json:
        sys.stdout.write(json.dumps(to_jsonable(obj), indent=2, default=str) + "\n")
    elif text is not None:
        text()
    else:
        console.print(obj)


def render_rows(title: str | None, columns: list[str], rows: list[tuple[Any, ...]] | list[list[Any]]) -> None:
    """Print rows as a Rich table."""
    table = Table(title=title, show_lines=False)
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*["" if v is None else str(v) for v in r])
    console.print(table)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a one-line error to stderr and return the exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn TickerlakeError (and a few well-known OS errors) into one-line errors."""
    try:
        yield
    except TickerlakeError as e:
        raise fail(str(e)) from None
    except (FileNotFoundError, PermissionError, IsADirectoryError) as e:
        raise fail(f"{getattr(e, 'filename', '') or ''}: {e.strerror or e}") from None


def progress(disable: bool = False) -> Progress:
    """A Rich progress bar on stderr (hidden with --json or when not a terminal)."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=disable,
        transient=False,
    )
