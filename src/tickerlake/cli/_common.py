"""Shared CLI plumbing: settings from the global options, rendering, one-line errors.

Errors map to exit codes in one place, :func:`exit_code_for`, by class alone:

====================================================  ====
error (see :mod:`tickerlake.errors`)                  exit
====================================================  ====
success                                               0
``InternalError``, any unexpected exception           1
``UserError`` (and a bare ``TickerlakeError``), bad   2
options (click's own usage errors are 2 as well)
``NotFoundError``                                     3
``RefusedError`` (``QueryRefused``)                   4
``TransientError``: try again later                   75 (``EX_TEMPFAIL``)
====================================================  ====

Every failure prints one line on stderr; ``TICKERLAKE_DEBUG=1`` shows the traceback of
internal errors instead.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pydantic
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tickerlake.config import Settings
from tickerlake.errors import InternalError, TickerlakeError, UserError, outcome_of
from tickerlake.jsonable import jsonable as to_jsonable
from tickerlake.retry import first_line

__all__ = [
    "EXIT_INTERNAL",
    "EXIT_NOT_FOUND",
    "EXIT_REFUSED",
    "EXIT_TRANSIENT",
    "EXIT_USER",
    "JsonOpt",
    "console",
    "err_console",
    "exit_code_for",
    "fail",
    "fit_columns",
    "make_settings",
    "progress",
    "render",
    "render_rows",
    "run_main",
    "settings_of",
    "to_jsonable",
    "user_errors",
]

console = Console()
err_console = Console(stderr=True)

JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON instead of text.")

EXIT_INTERNAL = 1
EXIT_USER = 2
EXIT_NOT_FOUND = 3
EXIT_REFUSED = 4
#: BSD sysexits ``EX_TEMPFAIL``: schedulers and scripts know to retry it later.
EXIT_TRANSIENT = 75
_DEBUG_HINT = "set TICKERLAKE_DEBUG=1 for the traceback"


def exit_code_for(exc: BaseException) -> int:
    """The exit code of an error, by its class alone (:data:`tickerlake.errors.OUTCOMES`)."""
    return outcome_of(exc)[0]


def _describe(exc: BaseException) -> str:
    """The one line printed for an error: its message, or for a bug its type and a hint."""
    line = first_line(exc, limit=10_000)
    if exit_code_for(exc) == EXIT_INTERNAL:
        return f"internal error: {type(exc).__name__}: {line} ({_DEBUG_HINT})"
    return line


def make_settings(**values: Any) -> Settings:
    """Build :class:`Settings`, turning invalid values (options or ``TICKERLAKE_*`` variables)
    into one-line :class:`UserError` instead of pydantic's multi-line report.

    Raises:
        UserError: The first invalid setting, e.g. ``--lake: unsupported lake scheme 'ftp' ...``.
    """
    try:
        return Settings(**values)
    except pydantic.ValidationError as e:
        problem = e.errors()[0]
        field = str(problem["loc"][0]) if problem.get("loc") else ""
        name = "--lake" if field == "lake" else f"TICKERLAKE_{field.upper()}" if field else "settings"
        message = str(problem.get("msg", "invalid")).removeprefix("Value error, ")
        raise UserError(f"{name}: {message}") from None


def settings_of(ctx: typer.Context) -> Settings:
    """The settings built by the top-level callback."""
    root = ctx.find_root()
    if not isinstance(root.obj, Settings):
        root.obj = make_settings()
    return root.obj


def render(obj: Any, as_json: bool, text: Callable[[], None] | None = None) -> None:
    """Print ``obj`` as JSON, or call ``text`` to print it for humans."""
    if as_json:
        sys.stdout.write(json.dumps(to_jsonable(obj), indent=2, default=str) + "\n")
    elif text is not None:
        text()
    else:
        console.print(obj)


# A cell that is a number, a percentage, a date or a time: never wrapped nor cut.
_NUMBERISH = re.compile(r"^(?=.*\d)[-+−\d\s.,:/%→TZ]*[a-zA-Z]{0,2}$|^(n/a|-|—|)$")
# A plain number (right-aligned; dates and ranges stay left-aligned).
_NUMBER = re.compile(r"^[-+−]?[\d.,]*\d[\d.,]*%?[a-zA-Z]{0,2}$|^(n/a|-|—|)$")
# Narrowest a wrapped text column is squeezed to before a column is hidden instead.
_MIN_TEXT = 14
# What a Rich table with the default box spends per column (padding and a rule) and once.
_PER_COLUMN, _BORDER = 3, 1


def fit_columns(
    widths: Sequence[int], wrappable: Sequence[bool], width: int, priority: Sequence[int] | None = None
) -> list[int]:
    """Which columns fit a terminal ``width``: the most important first, in display order.

    Args:
        widths: Each column's natural width (its widest cell or header).
        wrappable: Whether a column may wrap (free text); others (numbers, dates, names) never do.
        width: The terminal's width.
        priority: Column indexes, most important first; unlisted ones follow left to right.

    Returns:
        The indexes of the columns shown, in their original order. The first of ``priority``
        (else the first column) is always shown.
    """
    order = list(dict.fromkeys([*(priority or []), *range(len(widths))]))

    def need(cols: Sequence[int]) -> int:
        return (
            sum(min(widths[i], _MIN_TEXT) if wrappable[i] else widths[i] for i in cols)
            + _PER_COLUMN * len(cols)
            + _BORDER
        )

    keep = list(order)
    while len(keep) > 1 and need(keep) > width:
        keep.pop()  # the least important one left
    return sorted(keep)


def render_rows(
    title: str | None,
    columns: list[str],
    rows: list[tuple[Any, ...]] | list[list[Any]],
    priority: Sequence[str] | None = None,
    *,
    out: Console | None = None,
) -> None:
    """Print rows as a Rich table that fits the terminal (80 columns in a pipe or CI log).

    Numbers, dates and names are never wrapped or cut; free text wraps. When the columns do
    not fit, the least important are left out (and named on stderr): ``--json`` has them all.

    Args:
        title: Table title.
        columns: Column headers.
        rows: Cells (None prints empty).
        priority: Column headers, most important first; the others follow left to right.
        out: The console (default: stdout's).
    """
    out = out or console
    cells = [["" if v is None else str(v) for v in r] for r in rows]
    # A header wraps at its spaces; cells decide a column's width.
    widths = [
        max([*(len(w) for w in c.split()), 1, *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)
    ]
    wrappable = [
        any(" " in r[i] and not _NUMBERISH.match(r[i]) for r in cells) and widths[i] > _MIN_TEXT
        for i in range(len(columns))
    ]
    index = {c: i for i, c in reversed(list(enumerate(columns)))}
    order = [index[c] for c in (priority or []) if c in index]
    shown = fit_columns(widths, wrappable, out.width, order)
    table = Table(title=title, show_lines=False)
    for i in shown:
        numeric = bool(cells) and all(_NUMBER.match(r[i]) for r in cells)
        table.add_column(
            columns[i],
            justify="right" if numeric and any(r[i] for r in cells) else "left",
            no_wrap=not wrappable[i],
            overflow="fold" if wrappable[i] else "ellipsis",
            min_width=min(widths[i], _MIN_TEXT) if wrappable[i] else widths[i],
        )
    for r in cells:
        table.add_row(*[escape(r[i]) for i in shown])
    out.print(table)
    hidden = [columns[i] for i in range(len(columns)) if i not in shown]
    if hidden:
        err_console.print(
            f"[dim]not shown at {out.width} columns: {escape(', '.join(hidden))} (widen the terminal or use --json)[/]",
            highlight=False,
            soft_wrap=True,
        )


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a one-line error to stderr and return the exit to raise."""
    # Escaped: messages quote user input and lists in brackets, which are not Rich markup.
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn TickerlakeError (and a few well-known OS errors) into one line and an exit code.

    The code comes from :func:`exit_code_for`. An :class:`InternalError` is re-raised as it
    is when ``TICKERLAKE_DEBUG`` is set, for its traceback.
    """
    try:
        yield
    except TickerlakeError as e:
        if isinstance(e, InternalError) and os.environ.get("TICKERLAKE_DEBUG"):
            raise
        raise fail(_describe(e), exit_code_for(e)) from None
    except (FileNotFoundError, PermissionError, IsADirectoryError) as e:
        # A path the user gave that cannot be read: fix the argument (2).
        raise fail(f"{getattr(e, 'filename', '') or ''}: {e.strerror or e}", EXIT_USER) from None


def run_main(app: Callable[[], object]) -> None:
    """Run the CLI; any error that escaped the commands becomes one line on stderr and its exit code.

    The last line of defence: users never see a traceback unless ``TICKERLAKE_DEBUG=1``.
    """
    try:
        app()
    except Exception as e:
        if os.environ.get("TICKERLAKE_DEBUG"):
            raise
        sys.stderr.write(f"error: {_describe(e)}\n")
        sys.exit(exit_code_for(e))


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
