"""``tickerlake watch``: crawl and ETL when raw files land, and scheduled ingests (Glue triggers).

A :class:`Watcher` turns three kinds of triggers into runs of the existing ETL
(:func:`tickerlake.lake.etl.run_etl`, which crawls first when the raw zone changed, so new
datasets such as the stream sink's JSON-lines files in ``raw/stream_ticks`` are catalogued
without a manual ``crawl``):

* **files**: new or changed files under ``raw/``. A local lake is watched with
  ``watchfiles`` (inotify; changes are debounced so a burst of files is one run); an
  object-store lake, which sends no events, is listed every ``poll_s`` seconds;
* **schedules**: cron expressions (APScheduler's ``CronTrigger``, in the exchange's time
  zone by default) that run an ``ingest`` command, e.g. ``ingest yahoo`` every weekday
  after the close, then the ETL;
* **start**: one run when the watcher starts, for files that landed while none ran.

Runs never overlap on one lake: in one process a single worker runs them one at a time,
and across processes (two ``watch``, a ``serve --watch``, on any machine sharing the
lake) a lease in the lake (``catalog/watch.lock``) is taken first, and renewed while a
run lasts. The lease only avoids wasted work: correctness under concurrent ETL runs is
already guaranteed by the ETL's commit (DESIGN.md), so a lease lost to a crash or a
clock merely lets two runs overlap, never corrupts anything. A trigger that finds the
lease held waits for it and then runs (the other run may have started before its files
landed).

Each run is recorded with its counts in ``catalog/watch_runs/`` (bounded, see
:class:`~tickerlake.lake.runlog.RunLog`), where ``tickerlake watch --runs`` and the web
read them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tickerlake.config import Settings
from tickerlake.errors import NotFoundError, TickerlakeError, UserError
from tickerlake.lake.contract import RAW_ZONE, LakeLayout
from tickerlake.lake.runlog import RunLog, new_run_id
from tickerlake.retry import first_line

__all__ = [
    "DEFAULT_TIMEZONE",
    "LOCK_FILE",
    "RUNS_DIR",
    "LakeLease",
    "Schedule",
    "WatchRun",
    "Watcher",
    "parse_schedule",
    "recent_runs",
]

#: The folder of ``catalog/`` that keeps one record per watch run.
RUNS_DIR = "watch_runs"
#: The lease that keeps two watchers of one lake from running at once.
LOCK_FILE = "watch.lock"
KEEP_RUNS = 200
#: Schedules are in the exchange's time (the close is 16:00 there), unless told otherwise.
DEFAULT_TIMEZONE = "America/New_York"
# Ingest commands a schedule may run (a schedule never runs anything else).
_INGEST_SOURCES = ("yahoo", "sim", "csv")
_INGEST_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class Schedule:
    """A cron-like schedule of one ingest command.

    Attributes:
        cron: Five crontab fields (minute hour day month weekday), or six with seconds first.
        command: The ``tickerlake`` arguments, starting with ``ingest`` and a source.
        timezone: IANA time zone the cron fields are read in.
    """

    cron: str
    command: tuple[str, ...]
    timezone: str = DEFAULT_TIMEZONE

    def trigger(self) -> Any:
        """The APScheduler trigger of :attr:`cron`.

        Raises:
            UserError: Not a valid cron expression or time zone.
        """
        from apscheduler.triggers.cron import CronTrigger

        fields = self.cron.split()
        try:
            if len(fields) == 5:
                return CronTrigger.from_crontab(self.cron, timezone=self.timezone)
            if len(fields) == 6:
                second, minute, hour, day, month, dow = fields
                return CronTrigger(
                    second=second, minute=minute, hour=hour, day=day, month=month, day_of_week=dow,
                    timezone=self.timezone,
                )  # fmt: skip
        except (ValueError, LookupError) as e:
            raise UserError(f"schedule {self.cron!r}: {first_line(e)}") from None
        raise UserError(f"schedule {self.cron!r}: give 5 crontab fields (minute hour day month weekday)")


def parse_schedule(text: str, timezone: str = DEFAULT_TIMEZONE) -> Schedule:
    """A schedule from ``CRON=COMMAND``, e.g. ``30 16 * * mon-fri=ingest yahoo --tickers AAPL``.

    Raises:
        UserError: No ``=``, a command that is not ``ingest yahoo|sim|csv …``, or a bad cron.
    """
    cron, sep, command = text.partition("=")
    if not sep or not cron.strip():
        raise UserError(f"schedule {text[:80]!r}: write it as 'CRON=ingest SOURCE [options]'")
    try:
        args = tuple(shlex.split(command))
    except ValueError as e:
        raise UserError(f"schedule {text[:80]!r}: {e}") from None
    if len(args) < 2 or args[0] != "ingest" or args[1] not in _INGEST_SOURCES:
        raise UserError(f"schedule {text[:80]!r}: the command must be ingest {'|'.join(_INGEST_SOURCES)} …")
    if any(a in ("--lake", "--json") or a.startswith("--lake=") for a in args):
        raise UserError(f"schedule {text[:80]!r}: the watched lake is used; leave out --lake and --json")
    schedule = Schedule(" ".join(cron.split()), args, timezone)
    schedule.trigger()  # refuse a bad expression now, not at the first firing
    return schedule


@dataclass
class WatchRun:
    """One run of the watcher.

    Attributes:
        id: Unique id (sorts by time).
        trigger: ``start``, ``files`` or ``schedule``.
        started_at: When it started (UTC, ISO 8601).
        finished_at: When it ended.
        seconds: Its duration (waiting for another run's lease excluded).
        waited_s: Time spent waiting for another watcher's run on the lake.
        status: ``ok`` or ``error``.
        files: Some of the raw files whose change triggered it (lake-relative).
        command: The scheduled ingest it ran, as typed.
        ingest: The ingest's JSON answer (rows landed per dataset...) or its exit code.
        crawled: Whether the raw zone had changed and was crawled.
        crawl_tables: Raw tables the crawl found new or changed.
        tables: Per curated table: files, read, inserted, updated, duplicates, quarantined, reconciles.
        etl_run: The ETL's run id (in the tables' snapshot summaries).
        error: The one-line error of a failed run.
        owner: ``host:pid`` of the watcher.
    """

    id: str
    trigger: str
    started_at: str
    finished_at: str = ""
    seconds: float = 0.0
    waited_s: float = 0.0
    status: str = "ok"
    files: list[str] = field(default_factory=list)
    command: str | None = None
    ingest: dict[str, Any] | None = None
    crawled: bool = False
    crawl_tables: list[str] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)
    etl_run: str | None = None
    error: str | None = None
    owner: str = ""

    @property
    def loaded(self) -> int:
        """Rows written by the ETL in this run (new or changed keys)."""
        return sum(int(t.get("inserted", 0)) + int(t.get("updated", 0)) for t in self.tables)


def recent_runs(settings: Settings, limit: int = 20) -> list[WatchRun]:
    """The lake's most recent watch runs, newest first."""
    names = {f.name for f in dataclasses.fields(WatchRun)}
    out = []
    for doc in RunLog(settings, RUNS_DIR, KEEP_RUNS).recent(limit):
        with contextlib.suppress(TypeError):
            out.append(WatchRun(**{k: v for k, v in doc.items() if k in names}))
    return out


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class LakeLease:
    """An expiring lease in the lake, ``catalog/watch.lock``: who runs now, and until when.

    On a local lake every change of the lease (take, renew, give up) happens under an
    exclusive ``flock`` of a file beside it, so a check and the write that follows it are
    one step for every process on the machine. On an object store the lease is written,
    then read back after a short pause, and only a writer that still finds its own lease
    holds it (no object store operation is a compare-and-swap here; a near tie can let two
    runs overlap, which the ETL's commit makes harmless).

    Args:
        settings: Runtime settings (the lake).
        ttl_s: How long a lease lasts without renewal (a crashed holder blocks no longer).
    """

    def __init__(self, settings: Settings, ttl_s: float = 60.0) -> None:
        self.settings = settings
        self.layout = LakeLayout.of(settings)
        self.storage = self.layout.storage
        self.uri = self.layout.catalog_file(LOCK_FILE)
        self.ttl_s = ttl_s
        self.token = f"{_owner()}:{uuid.uuid4().hex[:8]}"

    def _doc(self) -> bytes:
        return json.dumps({"owner": self.token, "expires": time.time() + self.ttl_s}).encode()

    def holder(self) -> dict[str, Any] | None:
        """The lease as stored, if one is (expired or not)."""
        try:
            doc = json.loads(self.storage.read_bytes(self.uri))
        except FileNotFoundError:
            return None
        except ValueError:
            return {"owner": "?", "expires": 0.0}  # a torn or foreign file: treat as expired
        return doc if isinstance(doc, dict) else {"owner": "?", "expires": 0.0}

    @contextlib.contextmanager
    def _turn(self) -> Iterator[None]:
        """On a local lake, hold the lease's mutex (released by the kernel if we die)."""
        if not self.settings.is_local:
            yield
            return
        import fcntl

        path = self.storage.path(self.uri)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(f"{path}.mutex", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _mine(self) -> bool:
        return (self.holder() or {}).get("owner") == self.token

    def acquire(self) -> bool:
        """Take the lease if it is free or expired; False while another holder's is valid."""
        with self._turn():
            current = self.holder()
            if (
                current is not None
                and current.get("owner") != self.token
                and current.get("expires", 0) > time.time()
            ):
                return False
            self.storage.write_bytes(self.uri, self._doc())
            if self.settings.is_local:
                return True
        time.sleep(0.3)  # let a racing writer land, then see who won
        return self._mine()

    def renew(self) -> None:
        """Extend a held lease."""
        with self._turn():
            if self._mine():
                self.storage.write_bytes(self.uri, self._doc())

    def release(self) -> None:
        """Give the lease up (only if still ours)."""
        with contextlib.suppress(OSError), self._turn():
            if self._mine():
                self.storage.delete(self.uri)


@dataclass
class _Request:
    trigger: str
    files: list[str] = field(default_factory=list)
    schedule: Schedule | None = None


class Watcher:
    """Runs crawl + ETL on new raw files and scheduled ingests, one run at a time per lake.

    Args:
        settings: Runtime settings (the lake).
        schedules: Scheduled ingests.
        debounce_ms: How long file events are gathered into one run.
        poll_s: How often an object-store lake's raw zone is listed (no events there).
        on_run: Called with every finished run (the CLI prints it).
        lease_ttl_s: The lease's lifetime; renewed every third of it while a run lasts.
    """

    def __init__(
        self,
        settings: Settings,
        schedules: Iterable[Schedule] = (),
        *,
        debounce_ms: int = 500,
        poll_s: float = 5.0,
        on_run: Callable[[WatchRun], None] | None = None,
        lease_ttl_s: float = 60.0,
    ) -> None:
        self.settings = settings
        self.layout = LakeLayout.of(settings)
        self.schedules = list(schedules)
        self.debounce_ms = debounce_ms
        self.poll_s = poll_s
        self.on_run = on_run
        self.lease = LakeLease(settings, lease_ttl_s)
        self.log = RunLog(settings, RUNS_DIR, KEEP_RUNS)
        self.runs = 0
        self._pending: list[_Request] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._scheduler: Any = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start watching in background threads (returns at once).

        Raises:
            NotFoundError: No lake at a local lake's path.
        """
        if self.settings.is_local and not self.layout.storage.exists(self.settings.lake_uri):
            raise NotFoundError(f"no lake at {self.settings.lake_uri}: ingest data first or pass --lake")
        self.request("start")
        watch = self._watch_local if self.settings.is_local else self._poll_remote
        for target, name in ((self._work, "watch-worker"), (watch, "watch-files")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        if self.schedules:
            from apscheduler.schedulers.background import BackgroundScheduler

            self._scheduler = BackgroundScheduler(timezone=self.schedules[0].timezone)
            for sched in self.schedules:
                self._scheduler.add_job(
                    self.request,
                    sched.trigger(),
                    args=("schedule", [], sched),
                    max_instances=1,
                    coalesce=True,
                )
            self._scheduler.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop watching; a run in progress is finished first (up to ``timeout_s``)."""
        self._stop.set()
        if self._scheduler is not None:
            with contextlib.suppress(Exception):
                self._scheduler.shutdown(wait=False)
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout_s)

    def next_runs(self) -> list[dict[str, str]]:
        """When each schedule fires next (for the CLI's banner)."""
        if self._scheduler is None:
            return []
        return [
            {
                "command": " ".join(j.args[2].command),
                "next": j.next_run_time.isoformat() if j.next_run_time else "",
            }
            for j in self._scheduler.get_jobs()
        ]

    def request(self, trigger: str, files: list[str] | None = None, schedule: Schedule | None = None) -> None:
        """Ask for a run (runs asked while one is waiting are merged into it)."""
        with self._cond:
            if schedule is None and self._pending and self._pending[-1].schedule is None:
                last = self._pending[-1]
                last.files = sorted({*last.files, *(files or [])})
            else:
                self._pending.append(_Request(trigger, sorted(files or []), schedule))
            self._cond.notify_all()

    # ---------------------------------------------------------------- triggers

    def _raw_relative(self, path: str) -> str | None:
        root = self.layout.storage.path(self.settings.lake_uri).rstrip("/")
        rel = os.path.relpath(path, root)
        parts = Path(rel).parts
        if len(parts) < 2 or parts[0] != RAW_ZONE or any(p.startswith((".", "_")) for p in parts):
            return None  # outside the raw zone, or a temp/hidden file still being written
        return rel

    def _watch_local(self) -> None:
        import watchfiles

        root = self.layout.storage.path(self.settings.lake_uri)
        for changes in watchfiles.watch(
            root,
            watch_filter=lambda _change, path: self._raw_relative(path) is not None,
            debounce=self.debounce_ms,
            step=50,
            stop_event=self._stop,
            raise_interrupt=False,
        ):
            files = [
                rel
                for _, path in changes
                if (rel := self._raw_relative(path)) is not None and not os.path.isdir(path)
            ]
            if files:
                self.request("files", files)

    def _raw_fingerprint(self) -> tuple[str, list[str]]:
        entries = self.layout.storage.list_files(self.layout.raw_zone)
        h = hashlib.sha256()
        for e in entries:
            h.update(f"{e.uri}|{e.size}|{e.mtime_ns}\n".encode())
        return h.hexdigest(), [e.uri for e in entries]

    def _poll_remote(self) -> None:
        seen: tuple[str, list[str]] | None = None
        while not self._stop.wait(0 if seen is None else self.poll_s):
            try:
                now = self._raw_fingerprint()
            except (OSError, TickerlakeError):
                continue  # the store is briefly away: look again at the next poll
            if seen is not None and now[0] != seen[0]:
                new = sorted(set(now[1]) - set(seen[1]))
                self.request("files", [u[len(self.settings.lake_uri) + 1 :] for u in new])
            seen = now

    # ---------------------------------------------------------------- runs

    def _work(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                while not self._pending and not self._stop.is_set():
                    self._cond.wait(1.0)
                if self._stop.is_set():
                    return
                req = self._pending.pop(0)
            self._run(req)

    def _run(self, req: _Request) -> None:
        run_id, started_at = new_run_id()
        run = WatchRun(run_id, req.trigger, started_at, files=req.files[:20], owner=_owner())
        waited = time.monotonic()
        while not self.lease.acquire():
            # Another watcher runs on this lake now: wait, then run (its run may have
            # started before these files landed).
            if self._stop.wait(0.5):
                return
        run.waited_s = round(time.monotonic() - waited, 3)
        renewing = threading.Event()
        renewer = threading.Thread(target=self._renew, args=(renewing,), daemon=True)
        renewer.start()
        started = time.monotonic()
        try:
            if req.schedule is not None:
                run.command = " ".join(req.schedule.command)
                run.ingest = self._ingest(req.schedule)
            self._etl(run)
        except Exception as e:  # a failed run is recorded and the watcher goes on
            run.status = "error"
            run.error = first_line(e, limit=500)
        finally:
            renewing.set()
            renewer.join()
            self.lease.release()
        run.seconds = round(time.monotonic() - started, 3)
        run.finished_at = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.log.append(run.id, {**dataclasses.asdict(run), "loaded": run.loaded})
        self.runs += 1
        if self.on_run is not None:
            self.on_run(run)

    def _renew(self, done: threading.Event) -> None:
        while not done.wait(self.lease.ttl_s / 3):
            with contextlib.suppress(OSError):
                self.lease.renew()

    def _etl(self, run: WatchRun) -> None:
        from tickerlake.lake.etl import run_etl

        if not self.layout.storage.exists(self.layout.raw_zone):
            return  # nothing ever landed: nothing to do (not an error for a watcher)
        report = run_etl(self.settings)
        run.etl_run = report.run_id
        run.crawled = report.crawled
        if report.crawl is not None:
            run.crawl_tables = [t.table for t in report.crawl.tables if t.status != "unchanged"]
        run.tables = [
            {
                "table": t.table, "files": t.files, "read": t.read, "inserted": t.inserted, "updated": t.updated,
                "duplicates": t.duplicates, "quarantined": t.quarantined, "reconciles": t.reconciles,
            }
            for t in report.tables
        ]  # fmt: skip
        if not all(t.reconciles for t in report.tables):
            run.status = "error"
            run.error = "counts do not reconcile (read != loaded + duplicates + quarantined)"

    def _ingest(self, schedule: Schedule) -> dict[str, Any]:
        """Run the scheduled ingest as its own ``tickerlake`` process (as a trigger starts a job)."""
        cli = [sys.executable, "-c", "from tickerlake.cli import main; main()"]
        proc = subprocess.run(
            [*cli, "--lake", self.settings.lake_uri, *schedule.command, "--json"],
            capture_output=True,
            text=True,
            timeout=_INGEST_TIMEOUT_S,
            check=False,
        )
        answer: dict[str, Any] = {"exit_code": proc.returncode}
        with contextlib.suppress(ValueError):
            doc = json.loads(proc.stdout)
            if isinstance(doc, dict):
                keep = ("source", "rows", "files_written", "files_unchanged", "fetched", "errors")
                answer.update({k: doc[k] for k in keep if k in doc})
        # Exit 1 with rows landed is a partial ingest (some tickers failed): the rows are
        # loaded and the errors kept in the record; anything else failed outright.
        if proc.returncode != 0 and not (proc.returncode == 1 and answer.get("rows")):
            tail = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise UserError(f"{' '.join(schedule.command)} failed (exit {proc.returncode}): {tail[:300]}")
        return answer
