"""The Typer application and its global options, apart from the package so that the
sub-command modules can import ``app`` without importing :mod:`tickerlake.cli` (which
imports them): no ``cli/__init__`` ↔ sub-command cycle."""

from __future__ import annotations

import typer

from tickerlake.cli._common import make_settings, user_errors

__all__ = ["app"]

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
    # A bad --lake (or TICKERLAKE_* variable) is a one-line user error, not a pydantic dump.
    with user_errors():
        ctx.obj = make_settings(lake=lake) if lake else make_settings()
