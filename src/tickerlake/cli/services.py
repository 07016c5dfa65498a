"""``tickerlake services up|down|status``: the dev Kafka broker and S3 server on 127.0.0.1."""

from __future__ import annotations

import contextlib
from enum import StrEnum
from typing import Any

import typer

from tickerlake.cli._app import app
from tickerlake.cli._common import (
    JsonOpt,
    console,
    err_console,
    render,
    render_rows,
    settings_of,
    user_errors,
)
from tickerlake.services.launcher import ServiceStatus, down, status, up
from tickerlake.services.s3proxy import DEV_BUCKET

__all__ = ["services_app"]

services_app = typer.Typer(
    help="Dev services on 127.0.0.1: an Apache Kafka broker and an S3Proxy server (Java 17+, Maven); "
    "a PostgreSQL catalog server with --only postgres.",
    no_args_is_help=True,
)
app.add_typer(services_app, name="services")


class Only(StrEnum):
    """A single service to act on."""

    kafka = "kafka"
    s3 = "s3"
    postgres = "postgres"


OnlyOpt = typer.Option(None, "--only", help="Act on one service only.")


def _summary(results: list[ServiceStatus]) -> dict[str, Any]:
    by_name = {r.name: r for r in results}
    kafka, s3, pg = by_name.get("kafka"), by_name.get("s3"), by_name.get("postgres")
    return {
        "services": results,
        "bootstrap_servers": kafka.endpoint if kafka and kafka.state in ("running", "external") else None,
        "s3_endpoint": s3.endpoint if s3 and s3.state in ("running", "external") else None,
        "catalog_uri": pg.env.get("TICKERLAKE_CATALOG_URI") if pg else None,
    }


def _print(results: list[ServiceStatus]) -> None:
    rows = [
        (
            r.name,
            r.state,
            r.action,
            r.endpoint or "",
            r.pid or "",
            f"{r.startup_s:.1f} s" if r.startup_s else "",
        )
        for r in results
    ]
    render_rows(None, ["service", "state", "action", "endpoint", "pid", "start-up"], rows)
    summary = _summary(results)
    if summary["bootstrap_servers"]:
        console.print(f"Kafka bootstrap servers: [bold]{summary['bootstrap_servers']}[/]", highlight=False)
    if summary["s3_endpoint"]:
        console.print(f"S3 endpoint: [bold]{summary['s3_endpoint']}[/]", highlight=False)
    for r in results:
        if r.log_path:
            console.print(f"{r.name} log: {r.log_path}", highlight=False, soft_wrap=True)
    env = {k: v for r in results if r.state == "running" for k, v in r.env.items()}
    if env:
        has_s3 = "TICKERLAKE_S3_ENDPOINT" in env
        console.print(f"From a shell (bucket [bold]{DEV_BUCKET}[/] exists):" if has_s3 else "From a shell:")
        for k, v in env.items():
            console.print(f"  export {k}={v}", highlight=False, soft_wrap=True)


@services_app.command("up")
def up_cmd(
    ctx: typer.Context,
    only: Only | None = OnlyOpt,
    timeout: float = typer.Option(
        120.0, "--timeout", min=1.0, help="Seconds each service may take to answer."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Start the services that are not running (idempotent) and print where they listen."""
    settings = settings_of(ctx)
    with user_errors():
        spinner = contextlib.nullcontext() if as_json else err_console.status("starting services")
        with spinner as live:

            def step(msg: str) -> None:
                if live is not None:
                    live.update(msg)

            results = up(settings, only=only.value if only else None, timeout_s=timeout, on_step=step)
    render(_summary(results), as_json, lambda: _print(results))


@services_app.command("down")
def down_cmd(ctx: typer.Context, only: Only | None = OnlyOpt, as_json: bool = JsonOpt) -> None:
    """Stop the services this launcher started (SIGTERM, then SIGKILL after 30 s); data is kept."""
    settings = settings_of(ctx)
    with user_errors():
        results = down(settings, only=only.value if only else None)
    render({"services": results}, as_json, lambda: _print(results))


@services_app.command("status")
def status_cmd(ctx: typer.Context, only: Only | None = OnlyOpt, as_json: bool = JsonOpt) -> None:
    """Report whether each service runs and answers; exit code 1 if any does not."""
    settings = settings_of(ctx)
    with user_errors():
        results = status(settings, only=only.value if only else None)
    render(_summary(results), as_json, lambda: _print(results))
    if any(r.state not in ("running", "external") for r in results):
        raise typer.Exit(1)
