"""``tickerlake crawl``, ``tickerlake etl`` and ``tickerlake maintain``."""

from __future__ import annotations

import dataclasses

import typer
from rich.markup import escape
from rich.progress import TaskID

from tickerlake.cli._app import app
from tickerlake.cli._common import JsonOpt, console, progress, render, render_rows, settings_of, user_errors

__all__: list[str] = []


def _print_crawl(report) -> None:
    rows = [
        (
            t.table,
            t.status,
            ", ".join(t.new_columns) if t.status != "new" else f"{len(t.new_columns)} columns",
            ", ".join(f"{c}: {a}→{b}" for c, a, b in t.type_changes),
            ", ".join(t.new_partitions[:4]) + (" …" if len(t.new_partitions) > 4 else ""),
            f"+{t.files_added}/-{t.files_removed}",
        )
        for t in report.tables
    ]
    render_rows("crawl", ["table", "status", "new columns", "type changes", "new partitions", "files"], rows)
    for t in report.tables:
        for p in t.problems:
            console.print(f"[yellow]warning:[/] {p}", highlight=False)
    console.print(f"{report.files_scanned} of {report.files_total} files scanned")


@app.command()
def crawl(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """Scan the raw zone, infer schemas and partitions, register raw tables (the Glue crawler)."""
    from tickerlake.lake.crawler import crawl as run_crawl

    settings = settings_of(ctx)
    with user_errors(), progress(disable=as_json) as bar:
        task = bar.add_task("crawl", total=None)
        report = run_crawl(settings, on_file=lambda d, t: bar.update(task, completed=d, total=t))
    render(report, as_json, lambda: _print_crawl(report))


@app.command()
def etl(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """Load new raw files into the curated Iceberg tables (the Glue job); crawls first if needed."""
    from tickerlake.lake.etl import run_etl

    settings = settings_of(ctx)
    with user_errors(), progress(disable=as_json) as bar:
        tasks: dict[str, TaskID] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        report = run_etl(settings, on_progress=on_progress)

    def text() -> None:
        if report.crawl is not None:
            _print_crawl(report.crawl)
        rows = [
            (
                t.table,
                t.files,
                t.read,
                t.inserted,
                t.updated,
                t.duplicates,
                t.quarantined,
                "yes" if t.reconciles else "NO",
            )
            for t in report.tables
        ]
        render_rows(
            f"etl run {report.run_id} ({report.seconds:.1f}s)",
            ["table", "files", "read", "inserted", "updated", "duplicates", "quarantined", "reconciles"],
            rows,
        )
        for t in report.tables:
            for uri in t.skipped:
                console.print(
                    f"[yellow]warning:[/] {t.table}: not a CSV file, not loaded: {uri}", highlight=False
                )
            for reason, n in sorted(t.reasons.items(), key=lambda kv: -kv[1]):
                console.print(f"  {t.table} quarantined {n}: {escape(reason)}", highlight=False)
            if t.conflicts:
                console.print(
                    f"  {t.table}: {t.conflicts} concurrent commit(s) by another run; re-planned on the "
                    f"fresh table ({t.already_loaded} file(s) already loaded)",
                    highlight=False,
                )
        a = report.actions
        if a is not None:
            console.print(
                f"corporate actions of {a.tickers} ticker(s): {a.splits} inferred split(s), {a.dividends} "
                f"inferred dividend(s), {a.renames} rename(s); {a.bars_rewritten} bar(s) adjusted",
                highlight=False,
            )
            for s in a.suspected:
                console.print(
                    f"[yellow]suspected split:[/] {s.ticker} on {s.date} (ratio {s.ratio:g}), not applied; "
                    "load the split in a corporate-actions file to apply it",
                    highlight=False,
                )
        d = report.derived
        if d is not None:
            what = f"{len(d.years)} year(s) rebuilt ({d.rows:,} rows)" if d.years else "up to date"
            console.print(f"insight-ready tables: {what} in {d.seconds:.1f} s", highlight=False)

    payload = {
        "run_id": report.run_id,
        "crawled": report.crawled,
        "seconds": report.seconds,
        "tables": [{**t.__dict__, "loaded": t.loaded, "reconciles": t.reconciles} for t in report.tables],
        "corporate_actions": None if report.actions is None else dataclasses.asdict(report.actions),
        "derived": None if report.derived is None else dataclasses.asdict(report.derived),
    }
    render(payload, as_json, text)
    if not all(t.reconciles for t in report.tables):
        raise typer.Exit(1)


@app.command()
def maintain(
    ctx: typer.Context,
    table: str | None = typer.Argument(
        None, help="One table (e.g. stream.ticks); every curated table by default."
    ),
    target_mb: float = typer.Option(64.0, "--target-mb", min=1.0, help="Size a compacted data file aims at."),
    retain_minutes: float = typer.Option(
        60.0, "--retain-minutes", min=0.0, help="Snapshots younger than this are kept (time travel, readers)."
    ),
    orphan_age_minutes: float = typer.Option(
        60.0,
        "--orphan-age-minutes",
        min=1.0,
        help="Unreferenced files younger than this are kept (a writer may be about to commit them).",
    ),
    compact: bool = typer.Option(
        True, "--compact/--no-compact", help="Rewrite small files sorted by (ticker, ts)."
    ),
    expire: bool = typer.Option(True, "--expire/--no-expire", help="Expire old snapshots."),
    orphans: bool = typer.Option(
        True, "--orphans/--no-orphans", help="Delete unreferenced files and .tmp-* leftovers."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Compact small files, expire old snapshots and remove orphan files; safe while sinks and queries run."""
    from tickerlake.lake.maintain import MaintainOptions
    from tickerlake.lake.maintain import maintain as run_maintain

    settings = settings_of(ctx)
    options = MaintainOptions(
        compact=compact,
        expire=expire,
        remove_orphans=orphans,
        target_bytes=int(target_mb * 2**20),
        retain_s=retain_minutes * 60,
        orphan_age_s=orphan_age_minutes * 60,
    )
    with user_errors(), progress(disable=as_json) as bar:
        task = bar.add_task("maintain", total=None)
        reports = run_maintain(
            settings,
            [table] if table else None,
            options,
            on_table=lambda name: bar.update(task, description=f"maintain {name}"),
        )

    def text() -> None:
        rows = [
            (
                r.table,
                f"{r.files_before} → {r.files_after}",
                f"{r.files_rewritten} → {r.files_written}",
                r.snapshots_expired,
                f"{r.orphans_removed} ({r.bytes_removed / 2**20:.1f} MiB)",
                r.commit_retries,
                f"{r.seconds:.1f}s",
            )
            for r in reports
        ]
        render_rows(
            "maintain",
            ["table", "data files", "compacted", "snapshots expired", "orphans removed", "retries", "time"],
            rows,
        )

    render({"tables": reports}, as_json, text)
