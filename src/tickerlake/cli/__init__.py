"""The ``tickerlake`` command: a thin Typer shell over the package's functions.

Each sub-command parses its options, calls one function and renders the result as text
or, with ``--json``, as JSON.
"""

from __future__ import annotations

import importlib

import typer

from tickerlake.config import Settings

__all__ = ["app", "main"]

app = typer.Typer(
    name="tickerlake",
    help="Local-first stock-market lakehouse: ingest, crawl, ETL to Iceberg, SQL, insights, streaming.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    lake: str = typer.Option(
        None,
        "--lake",
        envvar="TICKERLAKE_LAKE",
        help="Warehouse root: a path, file:// or s3:// URI [default: ./lake].",
    ),
) -> None:
    """Global options."""
    ctx.obj = Settings(lake=lake) if lake else Settings()


# Sub-command modules register themselves on ``app``; each is optional so a stage can
# be developed alone.
for _name in ("ingest", "lake", "query", "insights", "stream", "services", "web", "tokens"):
    try:
        importlib.import_module(f"tickerlake.cli.{_name}")
    except ModuleNotFoundError as e:  # pragma: no cover - only while a stage is missing
        if e.name != f"tickerlake.cli.{_name}":
            raise


def main() -> None:
    """Console-script entry point: unexpected failures become one line unless TICKERLAKE_DEBUG=1."""
    import os
    import sys

    try:
        app()
    except Exception as e:  # the last line of defence: never a traceback for users
        if os.environ.get("TICKERLAKE_DEBUG"):
            raise
        first = (str(e).strip().splitlines() or [""])[0]
        sys.stderr.write(f"error: {type(e).__name__}: {first} (set TICKERLAKE_DEBUG=1 for the traceback)\n")
        sys.exit(1)
