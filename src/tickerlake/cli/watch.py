"""``tickerlake watch``: crawl + ETL whenever raw files land, plus scheduled ingests (the Glue
triggers), until Ctrl+C; ``--runs`` lists the recorded runs."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from typing import Any

import typer
from rich.markup import escape

from tickerlake.cli._app import app
from tickerlake.cli._common import (
    JsonOpt,
    console,
    err_console,
    render,
    render_rows,
    settings_of,
    to_jsonable,
    user_errors,
)

__all__ = ["describe_run", "watch_command"]


def describe_run(run: Any) -> str:
    """One line about a run, for people."""
    loaded = sum(int(t.get("inserted", 0)) + int(t.get("updated", 0)) for t in run.tables)
    files = sum(int(t.get("files", 0)) for t in run.tables)
    quarantined = sum(int(t.get("quarantined", 0)) for t in run.tables)
    what = f"{run.trigger}" + (f" ({run.command})" if run.command else "")
    if run.files:
        what += f": {run.files[0]}" + (f" +{len(run.files) - 1}" if len(run.files) > 1 else "")
    line = f"{run.started_at[:19].replace('T', ' ')}  {what} → {run.status} in {run.seconds:.1f}s"
    if run.status == "ok":
        line += f"; {files} file(s), {loaded:,} row(s) loaded, {quarantined} quarantined"
        if run.crawl_tables:
            line += f"; crawled {', '.join(run.crawl_tables)}"
    else:
        line += f": {run.error}"
    if run.waited_s >= 1:
        line += f" (waited {run.waited_s:.0f}s for another run)"
    return line


@app.command("watch")
def watch_command(
    ctx: typer.Context,
    schedule: list[str] = typer.Option(
        None,
        "--schedule",
        help="A scheduled ingest 'CRON=ingest SOURCE [options]', e.g. '30 16 * * mon-fri=ingest yahoo' (repeatable).",
    ),
    timezone: str = typer.Option(
        "America/New_York", "--timezone", "--tz", help="Time zone of the schedules (IANA name)."
    ),
    debounce_ms: int = typer.Option(
        500, "--debounce-ms", min=10, help="Gather file events this long into one run."
    ),
    poll_s: float = typer.Option(5.0, "--poll", min=0.5, help="Seconds between listings of an s3:// lake."),
    duration: float = typer.Option(None, "--for", min=0.1, help="Stop after this many seconds."),
    max_runs: int = typer.Option(None, "--max-runs", min=1, help="Stop after this many runs."),
    runs: bool = typer.Option(False, "--runs", help="List the lake's recent watch runs and exit."),
    limit: int = typer.Option(20, "--limit", min=1, help="With --runs: how many."),
    as_json: bool = JsonOpt,
) -> None:
    """Crawl and ETL whenever raw files land (sink JSON-lines included), and run scheduled
    ingests; one run at a time per lake, each recorded with its counts."""
    from tickerlake.service.watch import start_watch, watch_runs

    settings = settings_of(ctx)
    if runs:
        with user_errors():
            recent = watch_runs(settings, limit)

        def text() -> None:
            rows = [
                (r.started_at[:19].replace("T", " "), r.trigger, r.status, f"{r.seconds:.1f}",
                 sum(int(t.get("files", 0)) for t in r.tables), f"{r.loaded:,}",
                 sum(int(t.get("quarantined", 0)) for t in r.tables), r.command or ", ".join(r.files[:3]),
                 r.error or "")
                for r in recent
            ]  # fmt: skip
            render_rows(f"watch runs of {settings.lake_uri} (newest first)",
                        ["started (UTC)", "trigger", "status", "s", "files", "loaded", "quarantined", "what", "error"],
                        rows, ["started (UTC)", "status", "loaded", "trigger", "error", "files", "s"])  # fmt: skip

        render(recent, as_json, text)
        return

    done = threading.Event()
    count = [0]

    def on_run(run: Any) -> None:
        if as_json:
            sys.stdout.write(json.dumps({"run": to_jsonable(run)}, default=str) + "\n")
            sys.stdout.flush()
        else:
            style = "green" if run.status == "ok" else "red"
            console.print(f"[{style}]{escape(describe_run(run))}[/]", highlight=False, soft_wrap=True)
        count[0] += 1
        if max_runs is not None and count[0] >= max_runs:
            done.set()

    # From before the watcher starts to the process's end, a SIGTERM stops the runs cleanly
    # instead of killing the process (Python resets its own handlers while it shuts down,
    # but leaves an ignored signal ignored: hence SIG_IGN once stopping).
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with user_errors():
        watcher = start_watch(
            settings, schedule or [], timezone=timezone, debounce_ms=debounce_ms, poll_s=poll_s, on_run=on_run
        )
    mode = "file events" if settings.is_local else f"a listing every {poll_s:g}s"
    banner: dict[str, Any] = {"watching": settings.lake_uri, "mode": mode, "schedules": watcher.next_runs()}
    if as_json:
        sys.stdout.write(json.dumps(banner) + "\n")
        sys.stdout.flush()
    else:
        console.print(
            f"watching [bold]{escape(settings.lake_uri)}[/] raw zone ({mode})",
            highlight=False,
            soft_wrap=True,
        )
        for s in banner["schedules"]:
            console.print(
                f"  scheduled: {escape(s['command'])}, next at {s['next']}", highlight=False, soft_wrap=True
            )
        err_console.print("press Ctrl+C to stop", style="dim")
    deadline = None if duration is None else time.monotonic() + duration
    try:
        while not done.wait(0.2):
            if deadline is not None and time.monotonic() >= deadline:
                break
    except KeyboardInterrupt:
        pass
    finally:
        watcher.stop()  # a run in progress is finished first
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
