"""Live view benchmark: replay → Kafka → ``serve --live`` → Server-Sent Events clients.

Everything runs on this machine as separate processes, as a user would run them: the dev
Kafka broker (or ``--bootstrap-servers``), ``tickerlake stream replay --rate N`` and
``tickerlake serve --live``. The clients are Python threads in this process, each holding an
``/api/live/events`` stream open and stamping the receipt time of every update.

For each rate (10,000 and 50,000 events/s) and number of clients (1 and 20):

* produce → client latency: every update names the Kafka record times (the producer's
  CreateTime, same clock) of the oldest and the newest event it covers; the latency of the
  oldest is the worst any event in that update waited. p50 and p99 over all updates of all
  clients, after a warm-up;
* the server's CPU share (the whole ``serve`` process: Kafka reader, decoding, the live
  book, publishing and the SSE fan-out), in cores;
* the live view's lag (records in Kafka it has not read), sampled every second;
* the baseline, measured in the same run at the same time: a bare consumer in this process
  that only receives the records (no decoding, no state, no HTTP) and stamps them, i.e. the
  latency Kafka alone gives; the ratio says what the live path adds.

Targets: p99 <= 500 ms at 50,000 events/s with 20 clients; the server under one core.

Ticks are synthesized at one trade per second per ticker (``--ticks-per-bar 23400``), so a
one-minute bar holds about 60 trades, as for a liquid stock; the replay clock then runs
fast (50,000 events/s over 8 tickers is ~100 market minutes a second) and every minute bar
closes and is scored in the run.

Usage:
    nice python bench/live.py
    python bench/live.py --rates 10000 --clients 1 --seconds 10 --json
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from tickerlake.config import DEFAULT_TICKERS, Settings

TL = [sys.executable, "-c", "from tickerlake.cli import main; main()"]
_TICKS = os.sysconf("SC_CLK_TCK")


class Client(threading.Thread):
    """One SSE client: reads ``/api/live/events`` and stamps every update's receipt."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.measuring = threading.Event()
        self.samples: list[tuple[float, float, int]] = []  # (oldest ms, newest ms, events)
        self.lags: list[int] = []
        self.messages = 0
        self.error: str | None = None

    def run(self) -> None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            conn.request("GET", "/api/live/events?bars=1", headers={"Accept": "text/event-stream"})
            resp = conn.getresponse()
            while not self.stop.is_set():
                line = resp.readline()
                if not line:
                    return
                if not line.startswith(b"data: "):
                    continue
                now = time.time() * 1000
                msg = json.loads(line[6:])
                self.messages += 1
                if not self.measuring.is_set():
                    continue
                produced = msg.get("produced_ms")
                if produced:
                    self.samples.append((now - produced[0], now - produced[1], int(msg.get("events", 0))))
                lag = (msg.get("status") or {}).get("lag")
                if lag is not None:
                    self.lags.append(int(lag))
        except Exception as e:  # reported in the results
            self.error = f"{type(e).__name__}: {e}"


class RawConsumer(threading.Thread):
    """The baseline: receives the records and stamps them, nothing else."""

    def __init__(self, settings: Settings, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.settings, self.bootstrap, self.topic = settings, bootstrap, topic
        self.stop = threading.Event()
        self.measuring = threading.Event()
        self.latencies: list[float] = []

    def run(self) -> None:
        from tickerlake.stream import _kafka

        admin = _kafka.admin_client(self.settings, self.bootstrap)
        parts = _kafka.topic_partitions(admin, self.topic, self.bootstrap) or []
        consumer = _kafka.plain_consumer(
            self.settings, self.bootstrap, **{"group.id": f"{self.topic}-raw", "fetch.wait.max.ms": 50}
        )
        _kafka.assign_from(consumer, self.topic, parts, "latest")
        try:
            while not self.stop.is_set():
                msgs = consumer.consume(num_messages=20_000, timeout=0.1)
                now = time.time() * 1000
                if self.measuring.is_set():
                    # Every 10th record is enough for percentiles and keeps this thread light.
                    self.latencies.extend(now - m.timestamp()[1] for m in msgs[::10] if m.error() is None)
        finally:
            consumer.close()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def start_server(lake: Path, bootstrap: str, topic: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [*TL, "--lake", str(lake), "serve", "--port", "0", "--json", "--live", "--live-topic", topic,
         "--live-from", "latest", "--bootstrap-servers", bootstrap],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"serve did not start: {proc.stderr.read() if proc.stderr else ''}")
    return proc, int(json.loads(line)["url"].rstrip("/").rsplit(":", 1)[1])


def wait_reading(port: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/api/live/snapshot?bars=1")
        state = json.loads(conn.getresponse().read())["status"]["state"]
        if state == "reading":
            return
        time.sleep(0.2)
    raise SystemExit("the live view never started reading")


def scenario(
    lake: Path, settings: Settings, bootstrap: str, rate: int, clients: int, args: argparse.Namespace
) -> dict[str, Any]:
    from tickerlake.stream import _kafka

    topic = f"bench-live-{rate}-{clients}-{uuid.uuid4().hex[:6]}"
    _kafka.ensure_topic(_kafka.admin_client(settings, bootstrap), topic, 8, bootstrap)
    server, port = start_server(lake, bootstrap, topic)
    raw = RawConsumer(settings, bootstrap, topic)
    raw.start()
    readers = [Client(port) for _ in range(clients)]
    replay = None
    try:
        wait_reading(port)
        for c in readers:
            c.start()
        replay = subprocess.Popen(
            [*TL, "--lake", str(lake), "stream", "replay", "--topic", topic, "--bootstrap-servers", bootstrap,
             "--from", args.start, "--to", args.end, "--ticks-per-bar", "23400", "--rate", str(rate), "--json"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(args.warmup)
        for c in readers:
            c.measuring.set()
        raw.measuring.set()
        cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
        time.sleep(args.seconds)
        cores = (cpu_seconds(server.pid) - cpu0) / (time.monotonic() - t0)
        for c in readers:
            c.measuring.clear()
        raw.measuring.clear()
        if replay.poll() is not None:
            raise SystemExit(
                f"the replay ended before the measurement did (exit {replay.returncode}): use a longer span"
            )
    finally:
        if replay is not None and replay.poll() is None:
            # What it has not sent yet does not matter here.
            replay.kill()
            replay.wait(30)
        for c in readers:
            c.stop.set()
        raw.stop.set()
        server.send_signal(signal.SIGINT)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
    oldest = [s[0] for c in readers for s in c.samples]
    newest = [s[1] for c in readers for s in c.samples]
    events = sum(s[2] for s in readers[0].samples) if readers else 0
    lags = readers[0].lags if readers else []
    out = {
        "rate": rate,
        "clients": clients,
        "updates_per_client_per_s": round(sum(len(c.samples) for c in readers) / clients / args.seconds, 1),
        "events_per_s_seen": round(events / args.seconds, 1),
        "p50_ms": pct(oldest, 50),
        "p99_ms": pct(oldest, 99),
        "p50_newest_ms": pct(newest, 50),
        "server_cores": round(cores, 2),
        "lag_p50": pct([float(x) for x in lags], 50),
        "lag_max": max(lags) if lags else None,
        "baseline_p50_ms": pct(raw.latencies, 50),
        "baseline_p99_ms": pct(raw.latencies, 99),
        "errors": [c.error for c in readers if c.error],
    }
    b99 = out["baseline_p99_ms"]
    out["p99_vs_baseline"] = round(out["p99_ms"] / b99, 1) if out["p99_ms"] and b99 else None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap-servers", help="Use this Kafka instead of starting the dev broker.")
    ap.add_argument("--rates", default="10000,50000", help="Events per second, comma-separated.")
    ap.add_argument("--clients", default="1,20", help="SSE clients, comma-separated.")
    ap.add_argument("--seconds", type=float, default=15.0, help="Measured seconds per run.")
    ap.add_argument("--warmup", type=float, default=4.0, help="Seconds before measuring.")
    ap.add_argument("--start", default="2019-01-02", help="First replayed day (8 tickers).")
    ap.add_argument("--end", default="2019-01-31", help="Last replayed day (must outlast the run).")
    ap.add_argument("--keep", action="store_true", help="Keep the temporary lake and broker folder.")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="tickerlake-live-bench-"))
    lake = root / "lake"
    settings = Settings(lake=str(lake), state_dir=str(root / "state"), bootstrap_servers="", s3_endpoint="")
    started = False
    try:
        from tickerlake.lake.etl import run_etl
        from tickerlake.lake.ingest import land
        from tickerlake.sources.sim import DATASET_COLUMNS, simulate

        land(
            settings,
            "sim",
            simulate(list(DEFAULT_TICKERS), "2018-12-01", args.end),
            columns=dict(DATASET_COLUMNS),
        )
        run_etl(settings)
        bootstrap = args.bootstrap_servers
        if not bootstrap:
            from tickerlake.services import up

            (kafka,) = up(settings, only="kafka")
            bootstrap, started = kafka.endpoint, True
        runs = []
        for rate in (int(r) for r in args.rates.split(",")):
            for clients in (int(c) for c in args.clients.split(",")):
                result = scenario(lake, settings, bootstrap, rate, clients, args)
                runs.append(result)
                if not args.json:
                    print(json.dumps(result), file=sys.stderr)
        if args.json:
            print(json.dumps({"cpus": os.cpu_count(), "runs": runs}, indent=1))
        else:
            head = (
                f"{'rate/s':>8} {'clients':>7} {'p50 ms':>8} {'p99 ms':>8} {'raw p50':>8} {'raw p99':>8} "
                f"{'p99/raw':>8} {'cores':>6} {'lag p50':>8} {'lag max':>8} {'upd/s':>6}"
            )
            print(head)
            for r in runs:
                print(
                    f"{r['rate']:>8} {r['clients']:>7} {r['p50_ms']!s:>8} {r['p99_ms']!s:>8} "
                    f"{r['baseline_p50_ms']!s:>8} {r['baseline_p99_ms']!s:>8} {r['p99_vs_baseline']!s:>8} "
                    f"{r['server_cores']:>6} {r['lag_p50']!s:>8} {r['lag_max']!s:>8} "
                    f"{r['updates_per_client_per_s']:>6}"
                )
            print("targets: p99 <= 500 ms at 50,000/s with 20 clients; server < 1 core")
    finally:
        if started:
            from tickerlake.services import down

            down(settings, only="kafka")
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
