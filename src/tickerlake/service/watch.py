"""Watching the lake as operations: start a watcher (crawl + ETL on new raw files, scheduled
ingests) and list its recorded runs, for ``tickerlake watch``, ``serve --watch`` and the
web's pipeline view (:func:`watch_runs`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from tickerlake.config import Settings

if TYPE_CHECKING:
    from tickerlake.lake.watch import Watcher, WatchRun

__all__ = ["start_watch", "watch_runs"]


def start_watch(
    settings: Settings,
    schedules: Sequence[str] = (),
    *,
    timezone: str | None = None,
    debounce_ms: int = 500,
    poll_s: float = 5.0,
    on_run: Callable[[WatchRun], None] | None = None,
) -> Watcher:
    """Start watching the lake in background threads; ``stop()`` the answer to end.

    Args:
        settings: Runtime settings (the lake).
        schedules: ``CRON=ingest SOURCE [options]`` texts (see :func:`~tickerlake.lake.watch.parse_schedule`).
        timezone: The schedules' time zone (default: the exchange's, America/New_York).
        debounce_ms: How long file events are gathered into one run.
        poll_s: How often an object-store lake is listed.
        on_run: Called with each finished run.

    Raises:
        UserError: A bad schedule or time zone.
        NotFoundError: No lake at a local path.
    """
    from tickerlake.lake.watch import DEFAULT_TIMEZONE, Watcher, parse_schedule

    parsed = [parse_schedule(s, timezone or DEFAULT_TIMEZONE) for s in schedules]
    watcher = Watcher(settings, parsed, debounce_ms=debounce_ms, poll_s=poll_s, on_run=on_run)
    watcher.start()
    return watcher


def watch_runs(settings: Settings, limit: int = 20) -> list[WatchRun]:
    """The lake's most recent watch runs, newest first: trigger, status, duration, what the
    crawl found and each curated table's counts (files, read, inserted, updated, duplicates,
    quarantined)."""
    from tickerlake.lake.watch import recent_runs

    return recent_runs(settings, limit)
