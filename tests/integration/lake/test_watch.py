"""``tickerlake watch`` as real processes on a small simulated lake: a new raw file is crawled
and loaded within seconds, the stream sink's JSON-lines files are catalogued, two watchers of
one lake never run at once, and every run is recorded with its counts."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from tickerlake.config import Settings
from tickerlake.lake.watch import LakeLease, parse_schedule, recent_runs
from tickerlake.query import clear_engines, run_query

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# How long a new file may take to be loaded: debounce (0.2 s) + crawl + ETL of one file,
# on a machine shared with other test runs.
PICKUP_S = 30.0


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("tickerlake")
    return (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "from tickerlake.cli import main; main()"]
    )


def _tickerlake(lake: Path, *args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [*_cli(), "--lake", str(lake), *args, "--json"], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return dict(json.loads(proc.stdout)) if proc.stdout.strip().startswith("{") else {}


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two simulated tickers over 2023, loaded."""
    root = tmp_path_factory.mktemp("watch") / "lake"
    _tickerlake(
        root, "ingest", "sim", "--tickers", "AAPL,MSFT", "--start", "2023-01-03", "--end", "2023-12-12"
    )
    _tickerlake(root, "etl")
    return root


class Watch:
    """A running ``tickerlake watch --json`` and the lines it printed."""

    def __init__(self, lake: Path, *extra: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKERLAKE_")}
        self.proc = subprocess.Popen(
            [*_cli(), "--lake", str(lake), "watch", "--json", "--debounce-ms", "200", "--for", "240", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        assert self.proc.stdout is not None
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()
        self.banner = self.next(60)
        assert "watching" in self.banner, self.banner

    def _read(self, out: IO[str]) -> None:
        for line in out:
            self.lines.put(json.loads(line))

    def next(self, timeout: float) -> dict[str, Any]:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            err = self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""
            raise AssertionError(f"no line from watch within {timeout}s {err[-1500:]}") from None

    def run_where(self, timeout: float, pred: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            run = self.next(max(deadline - time.monotonic(), 0.01))["run"]
            if pred(run):
                return dict(run)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def watchers(lake: Path) -> Iterator[list[Watch]]:
    started: list[Watch] = []
    yield started
    for w in started:
        w.stop()
    for w in started:
        assert w.proc.returncode == 0, w.proc.stderr.read() if w.proc.stderr else ""


def _loaded(run: dict[str, Any], table: str) -> int:
    return sum(t["inserted"] + t["updated"] for t in run["tables"] if t["table"] == table)


def _count(lake: Path, sql: str) -> int:
    clear_engines()
    return int(run_query(Settings(lake=str(lake)), sql).rows()[0][0])


def test_new_raw_files_are_loaded_within_seconds_by_one_watcher_at_a_time(
    lake: Path, tmp_path: Path, watchers: list[Watch]
) -> None:
    first, second = Watch(lake), Watch(lake)
    watchers += [first, second]
    for w in (first, second):
        w.run_where(120, lambda r: r["trigger"] == "start" and r["status"] == "ok")

    # A new raw file: two days of a new ticker, landed by `ingest csv`.
    csv = tmp_path / "prices.csv"
    csv.write_text("Date,Close\n2023-12-11,10.5\n2023-12-12,11.25\n")
    landed_at = time.monotonic()
    _tickerlake(lake, "ingest", "csv", str(csv), "--ticker", "WTCH")
    loads = []
    for w in (first, second):
        loads.append(w.run_where(PICKUP_S, lambda r: r["trigger"] == "files"))
    took = time.monotonic() - landed_at
    # Exactly one of them loaded the two rows; the other found them loaded already.
    assert sorted(_loaded(r, "market.daily_bars") for r in loads) == [0, 2], loads
    assert all(r["status"] == "ok" for r in loads)
    assert took < PICKUP_S
    assert _count(lake, "SELECT count(*) FROM market.daily_bars WHERE ticker = 'WTCH'") == 2

    # The sink's JSON-lines file: crawled into raw.stream_ticks without a manual crawl.
    folder = lake / "raw" / "stream_ticks" / "topic=ticks" / "partition=0"
    folder.mkdir(parents=True)
    ticks = [
        {"kafka_offset": i, "ticker": "AAPL", "ts": f"2023-12-13T14:3{i}:00Z", "price": 190.0 + i, "size": 100,
         "seq": i}
        for i in range(3)
    ]  # fmt: skip
    tmp = folder / ".tmp-ticks"
    tmp.write_text("".join(json.dumps(t) + "\n" for t in ticks))
    tmp.rename(folder / f"ticks-0-{0:020d}-{2:020d}.jsonl")  # as the sink lands files: whole
    runs = [w.run_where(PICKUP_S, lambda r: r["trigger"] == "files") for w in (first, second)]
    assert any("stream_ticks" in r["crawl_tables"] for r in runs), runs
    assert _count(lake, "SELECT count(*) FROM raw.stream_ticks") == 3

    # The runs of both watchers, as recorded in the lake, never overlapped.
    recorded = sorted(recent_runs(Settings(lake=str(lake)), 50), key=lambda r: r.started_at)
    assert len(recorded) >= 6 and len({r.owner for r in recorded}) == 2
    # A run holds the lake from when it stopped waiting until it finished.
    spans = sorted((dt.datetime.fromisoformat(r.started_at) + dt.timedelta(seconds=r.waited_s),
                    dt.datetime.fromisoformat(r.finished_at)) for r in recorded)  # fmt: skip
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end - dt.timedelta(milliseconds=5), spans


def test_the_lease_is_exclusive_and_expires(lake: Path) -> None:
    settings = Settings(lake=str(lake))
    a, b = LakeLease(settings, ttl_s=0.5), LakeLease(settings, ttl_s=0.5)
    assert a.acquire() and not b.acquire()
    a.release()
    assert b.acquire() and not a.acquire()
    time.sleep(0.6)  # b crashed: its lease runs out
    assert a.acquire()
    b.release()  # not b's any more: a keeps it
    assert a.holder() is not None and a.holder()["owner"] == a.token
    a.release()
    assert a.holder() is None


def test_takers_racing_for_a_free_or_expired_lease_never_hold_it_together(lake: Path) -> None:
    # Each taker checks the lease and writes its own: done without a mutex, a taker that
    # read the lease just before another wrote it took it too.
    settings = Settings(lake=str(lake))
    holding: set[str] = set()
    overlaps: list[set[str]] = []
    guard = threading.Lock()

    def taker() -> None:
        lease = LakeLease(settings, ttl_s=0.2)
        for _ in range(40):
            if lease.acquire():
                with guard:
                    holding.add(lease.token)
                    if len(holding) > 1:
                        overlaps.append(set(holding))
                time.sleep(0.005)  # the run, well inside the lease's time
                with guard:
                    holding.discard(lease.token)
                if random.random() < 0.8:
                    lease.release()  # else it expires: the next takers find it stale

    threads = [threading.Thread(target=taker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == []


def test_sigterms_while_the_watcher_stops_on_its_own_still_end_it_cleanly(lake: Path, tmp_path: Path) -> None:
    # A service manager (or a test's teardown) may signal a watcher that is already stopping:
    # no moment of its life may leave SIGTERM to the default action (killed, exit -15).
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    w = Watch(copy, "--max-runs", "1")  # the start run is the one run: it stops by itself
    deadline = time.monotonic() + 120
    while w.proc.poll() is None and time.monotonic() < deadline:
        w.proc.send_signal(signal.SIGTERM)
        time.sleep(0.005)
    w.stop()
    assert w.proc.returncode == 0, w.proc.stderr.read() if w.proc.stderr else ""


def test_schedules_are_checked() -> None:
    s = parse_schedule("30 16 * * mon-fri=ingest yahoo --tickers AAPL,MSFT")
    assert s.command == ("ingest", "yahoo", "--tickers", "AAPL,MSFT") and s.timezone == "America/New_York"
    nxt = s.trigger().get_next_fire_time(None, dt.datetime(2026, 11, 27, 17, 0, tzinfo=s.trigger().timezone))
    assert nxt.isoformat() == "2026-11-30T16:30:00-05:00"  # Friday after the close -> Monday
    for bad in (
        "30 16 * * mon-fri",
        "61 16 * * *=ingest yahoo",
        "* * * * *=etl",
        "* * * * *=ingest yahoo --lake x",
    ):
        with pytest.raises(Exception, match="schedule"):
            parse_schedule(bad)


def test_a_scheduled_ingest_runs_then_loads(lake: Path, tmp_path: Path, watchers: list[Watch]) -> None:
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    # Every two seconds (six fields: seconds first): a simulated ingest of one more ticker.
    w = Watch(copy, "--schedule", "*/2 * * * * *=ingest sim --tickers NFLX --start 2023-12-01 --end 2023-12-12",
              "--max-runs", "3")  # fmt: skip
    watchers.append(w)
    assert w.banner["schedules"][0]["command"].startswith("ingest sim --tickers NFLX")
    run = w.run_where(120, lambda r: r["trigger"] == "schedule")
    assert run["status"] == "ok" and run["ingest"]["exit_code"] == 0, run
    # 2023-12-01 .. 2023-12-12 has 8 trading days.
    assert run["ingest"]["rows"]["daily_bars"] == 8
    assert _count(copy, "SELECT count(*) FROM market.daily_bars WHERE ticker = 'NFLX'") == 8


def test_serve_watch_loads_new_files_and_answers_them(lake: Path, tmp_path: Path) -> None:
    import urllib.request

    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKERLAKE_")}
    proc = subprocess.Popen(
        [*_cli(), "--lake", str(copy), "serve", "--port", "0", "--watch", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        hello = json.loads(proc.stdout.readline())
        assert hello["watch"] == {"schedules": []}
        csv = tmp_path / "SRVW.csv"
        csv.write_text("Date,Close\n2023-12-12,42.0\n")
        _tickerlake(copy, "ingest", "csv", str(csv))
        body = json.dumps({"sql": "SELECT count(*) FROM market.daily_bars WHERE ticker = 'SRVW'"}).encode()
        deadline, rows = time.monotonic() + PICKUP_S, None
        while time.monotonic() < deadline and rows != [[1]]:
            time.sleep(0.5)
            req = urllib.request.Request(hello["api"] + "query", body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as resp:
                rows = json.load(resp)["rows"]
        assert rows == [[1]]

        # The runs as the pipeline view gets them. The run's record is written when the run
        # ends, a moment after its commit made the row visible.
        def loaded_run(runs: list[dict[str, Any]]) -> bool:
            return any(
                r["trigger"] == "files" and _loaded(r, "market.daily_bars") == 1 and r["loaded"] == 1
                for r in runs
            )

        runs: list[dict[str, Any]] = []
        while time.monotonic() < deadline + 10 and not loaded_run(runs):
            with urllib.request.urlopen(hello["api"] + "watch/runs?limit=5", timeout=30) as resp:
                runs = json.load(resp)
            time.sleep(0.2)
        assert loaded_run(runs), runs
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
