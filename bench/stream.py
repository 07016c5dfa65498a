"""Streaming benchmark: replay → Kafka → sink into Iceberg, against a tutorial-style consumer.

Everything runs on this machine as separate processes, as a user would run them: the Kafka
broker (the dev broker, or ``--bootstrap-servers``), ``tickerlake stream replay``,
``tickerlake stream sink`` and, for the baseline, a kafka-python consumer that writes one
JSON file per message (the usual "consumer → JSON objects in S3" tutorial).

Measured:

1. sustained throughput: ``replay --speed max`` of >= 2 million tick events while the sink
   runs; events / (last table commit - replay start);
2. end-to-end latency at a steady 10,000 events/s: from each record's produce timestamp
   (Kafka CreateTime) to the first moment a SQL query through the query engine sees it
   (the query is repeated every 100 ms); p50, p99, max;
3. the same two figures for the baseline (a smaller run for throughput, as it writes a file
   per event; "visible in SQL" means a DuckDB ``read_json`` over its folder sees the file);

and the ratios. Targets: >= 100,000 events/s sustained; p99 visible-in-SQL <= 3 s at 10k/s.

Usage:
    python bench/stream.py                    # starts the dev broker in a temporary folder
    python bench/stream.py --bootstrap-servers 127.0.0.1:9092 --json
"""

from __future__ import annotations

import argparse
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
# kafka-python reads lz4 batches only with an extra codec package; the tutorial producer
# would not compress anyway (and uncompressed batches are cheaper for the consumer).
TUTORIAL_REPLAY = ["--compression", "none"]

# The tutorial consumer: kafka-python, one JSON object per message, one file per message.
BASELINE = r"""
import json, os, sys, time
from kafka import KafkaConsumer
bootstrap, topic, group, out, expected, idle = sys.argv[1:7]
expected, idle = int(expected), float(idle)
os.makedirs(out, exist_ok=True)
consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                         enable_auto_commit=True, value_deserializer=lambda v: json.loads(v))
n, first, last = 0, None, time.time()
while n < expected:
    batch = consumer.poll(timeout_ms=500)
    if not batch:
        if n and time.time() - last > idle:
            break
        continue
    for records in batch.values():
        for msg in records:
            with open(os.path.join(out, f"{msg.topic}-{msg.partition}-{msg.offset}.json"), "w") as f:
                json.dump(msg.value, f)
            n += 1
    last = time.time()
    first = first or last
consumer.close()
print(json.dumps({"records": n, "last_write_at": last}))
"""


def tl(lake: Path, *args: str, **popen: Any) -> subprocess.Popen[str]:
    """Start a tickerlake CLI process on the bench lake."""
    return subprocess.Popen([*TL, "--lake", str(lake), *args], text=True, **popen)


def run_json(proc: subprocess.Popen[str], timeout: float = 1800) -> dict[str, Any]:
    """Wait for a ``--json`` CLI process and parse its output."""
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise SystemExit(f"{proc.args[3:]} failed ({proc.returncode}): {err.strip()[-500:]}")
    return json.loads(out)


def wait_for_group(
    settings: Settings, bootstrap: str, group: str, members: int = 1, timeout_s: float = 60
) -> None:
    """Until the consumer group has ``members`` members with partitions."""
    from confluent_kafka import KafkaException

    from tickerlake.stream import _kafka

    admin = _kafka.admin_client(settings, bootstrap)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            g = admin.describe_consumer_groups([group])[group].result(timeout=10)
            if sum(1 for m in g.members if m.assignment and m.assignment.topic_partitions) >= members:
                return
        except KafkaException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"consumer group {group} did not get partitions within {timeout_s:.0f} s")


def produce_times(settings: Settings, bootstrap: str, topic: str) -> dict[int, np.ndarray]:
    """CreateTime (epoch s) of every record, per partition, indexed by offset - low."""
    from tickerlake.stream import _kafka

    admin = _kafka.admin_client(settings, bootstrap)
    parts = _kafka.topic_partitions(admin, topic, bootstrap) or []
    consumer = _kafka.plain_consumer(settings, bootstrap, **{"fetch.max.bytes": 64 * 1024 * 1024})
    try:
        ranges = _kafka.watermarks(consumer, topic, parts, bootstrap)
        msgs = _kafka.read_range(consumer, topic, ranges, timeout_s=300)
    finally:
        consumer.close()
    out = {p: np.full(high - low, np.nan) for p, (low, high) in ranges.items()}
    for m in msgs:
        p = m.partition()
        out[p][m.offset() - ranges[p][0]] = m.timestamp()[1] / 1000.0
    return out


class Poller(threading.Thread):
    """Runs a query every ``every_s`` and records (time the result arrived, max offset per partition)."""

    def __init__(self, query: Any, every_s: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.query = query
        self.every_s = every_s
        self.samples: list[tuple[float, dict[int, int]]] = []
        self.stop = threading.Event()
        self.errors = 0

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.time()
            try:
                seen = self.query()
                self.samples.append((time.time(), seen))
            except Exception:
                self.errors += 1
            time.sleep(max(0.0, self.every_s - (time.time() - started)))


def latencies(
    produced: dict[int, np.ndarray], samples: list[tuple[float, dict[int, int]]]
) -> tuple[np.ndarray, np.ndarray]:
    """Seconds from produce to the first sample that shows each record (NaN if never seen), and
    seconds from produce to the last sample (the lower bound for those never seen)."""
    out, floor = [], []
    last = samples[-1][0] if samples else np.nan
    for p, created in produced.items():
        if not len(created):
            continue
        visible = np.full(len(created), np.nan)
        done = -1
        for at, seen in samples:
            top = seen.get(p, -1)
            if top > done:
                visible[done + 1 : top + 1] = at
                done = top
        out.append(visible - created)
        floor.append(last - created)
    if not out:
        return np.array([]), np.array([])
    return np.concatenate(out), np.concatenate(floor)


def pct(values: np.ndarray, unseen_floor: np.ndarray | None = None) -> dict[str, float | None]:
    """p50/p99/max of latencies.

    Records never seen count with ``unseen_floor`` (their latency when the polling stopped,
    a lower bound), so a consumer that falls behind is not flattered by leaving them out.
    """
    values = values.copy()
    unseen = np.isnan(values)
    if unseen_floor is not None:
        values[unseen] = unseen_floor[unseen]
    seen = values[~np.isnan(values)]
    if not len(seen):
        return {"p50_s": None, "p99_s": None, "max_s": None, "unseen": int(unseen.sum())}
    return {
        "p50_s": round(float(np.percentile(seen, 50)), 3),
        "p99_s": round(float(np.percentile(seen, 99)), 3),
        "max_s": round(float(seen.max()), 3),
        "unseen": int(unseen.sum()),
    }


def run_replay(
    lake: Path, bootstrap: str, topic: str, span: tuple[str, str], ticks: int, *extra: str
) -> dict[str, Any]:
    """``tickerlake stream replay`` of the eight tickers over ``span`` (first, last day) as ticks."""
    args = ("--topic", topic, "--bootstrap-servers", bootstrap, "--from", span[0], "--to", span[1])
    proc = tl(
        lake,
        *("stream", "replay", *args, "--ticks-per-bar", str(ticks), "--json", *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    return run_json(proc)


def start_sink(lake: Path, bootstrap: str, topic: str, group: str, *extra: str) -> subprocess.Popen[str]:
    """A ``tickerlake stream sink`` process (stopped later with SIGTERM, which commits its open batch)."""
    args = ("--topic", topic, "--bootstrap-servers", bootstrap, "--group", group, "--json")
    return tl(lake, "stream", "sink", *args, *extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def stop_when_landed(
    settings: Settings, bootstrap: str, topic: str, sink: subprocess.Popen[str], timeout_s: float = 600
) -> dict[str, Any]:
    """Wait until the table's offsets reach the topic's end, then stop the sink and return its report."""
    from tickerlake.lake.catalog import open_catalog
    from tickerlake.stream import _kafka
    from tickerlake.stream.sink import table_state

    admin = _kafka.admin_client(settings, bootstrap)
    parts = _kafka.topic_partitions(admin, topic, bootstrap) or []
    consumer = _kafka.plain_consumer(settings, bootstrap)
    ends = {p: high for p, (_, high) in _kafka.watermarks(consumer, topic, parts, bootstrap).items()}
    consumer.close()
    catalog = open_catalog(settings)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sink.poll() is not None:
            break
        if catalog.table_exists("stream.ticks"):
            done = table_state(catalog.load_table("stream.ticks")).for_topic(topic)
            if all(done.get(p, 0) >= high for p, high in ends.items() if high):
                break
        time.sleep(0.2)
    if sink.poll() is None:
        sink.send_signal(signal.SIGTERM)
    return run_json(sink)


def ours_throughput(
    lake: Path, settings: Settings, bootstrap: str, args: argparse.Namespace, run: str
) -> dict[str, Any]:
    from tickerlake.stream import _kafka

    topic, group = f"bench-max-{run}", f"bench-sink-max-{run}"
    _kafka.ensure_topic(_kafka.admin_client(settings, bootstrap), topic, 8, bootstrap)
    sink = start_sink(
        lake, bootstrap, topic, group, "--max-records", str(args.max_records), "--max-interval", "2"
    )
    wait_for_group(settings, bootstrap, group)
    t0 = time.time()
    replay = run_replay(lake, bootstrap, topic, (args.start, args.end), args.ticks)
    report = stop_when_landed(settings, bootstrap, topic, sink)
    events = report["records"]
    span = report["last_commit_at"] - t0
    return {
        "events": events,
        "replayed": replay["delivered"],
        "replay_events_per_s": replay["events_per_s"],
        "seconds": round(span, 2),
        "events_per_s": round(events / span, 1),
        "commits": report["batches"],
    }


def sim_bars(settings: Settings, end: str = "2019-12-31") -> None:
    """Land the eight default tickers' simulated daily bars from 2018-01-01 to ``end`` and run
    the ETL: the lake whose bars the replays turn into ticks."""
    from tickerlake.lake.etl import run_etl
    from tickerlake.lake.ingest import land
    from tickerlake.sources.sim import DATASET_COLUMNS, simulate

    land(settings, "sim", simulate(list(DEFAULT_TICKERS), "2018-01-01", end), columns=dict(DATASET_COLUMNS))
    run_etl(settings)


def ours_latency(
    lake: Path, settings: Settings, bootstrap: str, args: argparse.Namespace, run: str
) -> dict[str, Any]:
    from tickerlake.query.engine import get_engine
    from tickerlake.stream import _kafka

    topic, group = f"bench-10k-{run}", f"bench-sink-10k-{run}"
    _kafka.ensure_topic(_kafka.admin_client(settings, bootstrap), topic, 8, bootstrap)
    sink = start_sink(lake, bootstrap, topic, group, "--max-interval", str(args.max_interval))
    wait_for_group(settings, bootstrap, group)
    engine = get_engine(settings)
    sql = "SELECT kafka_partition, max(kafka_offset) FROM stream.ticks WHERE kafka_topic = ? GROUP BY 1"
    poller = Poller(lambda: dict(engine.query(sql, [topic], limit=0).rows()))
    poller.start()
    rate = ("--rate", str(args.rate))
    replay = run_replay(lake, bootstrap, topic, (args.latency_start, args.latency_end), args.ticks, *rate)
    report = stop_when_landed(settings, bootstrap, topic, sink)
    time.sleep(0.5)
    poller.stop.set()
    poller.join()
    lat, floor = latencies(produce_times(settings, bootstrap, topic), poller.samples)
    return {
        "events": replay["delivered"],
        "rate": replay["events_per_s"],
        "commits": report["batches"],
        **pct(lat, floor),
        "polls": len(poller.samples),
    }


def baseline_run(
    bootstrap: str, topic: str, expected: int, out: Path, poll: bool
) -> tuple[subprocess.Popen[str], Poller | None]:
    """Start the tutorial consumer; with ``poll``, also query its folder with SQL every 100 ms."""
    import duckdb

    argv = [
        sys.executable,
        "-c",
        BASELINE,
        bootstrap,
        topic,
        f"{topic}-tutorial",
        str(out),
        str(expected),
        "5",
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not poll:
        return proc, None
    con = duckdb.connect()
    glob = str(out / "*.json")
    sql = (
        "SELECT CAST(regexp_extract(filename, '-(\\d+)-\\d+\\.json$', 1) AS INT) AS p, "
        "max(CAST(regexp_extract(filename, '-(\\d+)\\.json$', 1) AS BIGINT)) "
        f"FROM read_json('{glob}', filename = true, ignore_errors = true) GROUP BY 1"
    )

    def query() -> dict[int, int]:
        if not any(out.glob("*.json")):
            return {}
        return dict(con.execute(sql).fetchall())

    poller = Poller(query)
    poller.start()
    return proc, poller


def baseline(
    settings: Settings, bootstrap: str, lake: Path, args: argparse.Namespace, run: str
) -> dict[str, Any]:
    from tickerlake.stream import _kafka

    results: dict[str, Any] = {}
    # Throughput: a replay at full speed while the tutorial consumer writes one file per event.
    topic = f"bench-tutorial-max-{run}"
    _kafka.ensure_topic(_kafka.admin_client(settings, bootstrap), topic, 8, bootstrap)
    out = lake.parent / "tutorial-max"
    proc, _ = baseline_run(bootstrap, topic, args.baseline_events, out, poll=False)
    wait_for_group(settings, bootstrap, f"{topic}-tutorial")
    t0 = time.time()
    span = (args.baseline_start, args.baseline_end)
    replay = run_replay(lake, bootstrap, topic, span, args.ticks, *TUTORIAL_REPLAY)
    got, err = proc.communicate(timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"baseline consumer failed: {err[-500:]}")
    body = json.loads(got)
    span = body["last_write_at"] - t0
    results["throughput"] = {
        "events": body["records"],
        "replayed": replay["delivered"],
        "seconds": round(span, 2),
        "events_per_s": round(body["records"] / span, 1),
    }
    shutil.rmtree(out, ignore_errors=True)

    # Latency at the same steady rate, "visible" = a DuckDB read_json over the folder sees the file.
    topic = f"bench-tutorial-10k-{run}"
    _kafka.ensure_topic(_kafka.admin_client(settings, bootstrap), topic, 8, bootstrap)
    out = lake.parent / "tutorial-10k"
    out.mkdir(parents=True, exist_ok=True)
    proc, poller = baseline_run(bootstrap, topic, 10**12, out, poll=True)
    assert poller is not None
    wait_for_group(settings, bootstrap, f"{topic}-tutorial")
    span = (args.latency_start, args.latency_end)
    replay = run_replay(lake, bootstrap, topic, span, args.ticks, "--rate", str(args.rate), *TUTORIAL_REPLAY)
    proc.communicate(timeout=3600)
    # Let the poller catch up with the last files (bounded: it may be far behind).
    deadline = time.time() + args.baseline_catch_up
    while time.time() < deadline:
        if poller.samples and sum(v + 1 for v in poller.samples[-1][1].values()) >= replay["delivered"]:
            break
        time.sleep(0.2)
    poller.stop.set()
    poller.join()
    lat, floor = latencies(produce_times(settings, bootstrap, topic), poller.samples)
    results["latency"] = {"events": replay["delivered"], **pct(lat, floor), "polls": len(poller.samples)}
    shutil.rmtree(out, ignore_errors=True)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap-servers", help="Use this Kafka instead of starting the dev broker.")
    ap.add_argument("--start", default="2019-01-01", help="Throughput run: first day (8 tickers).")
    ap.add_argument("--end", default="2019-12-31", help="Throughput run: last day.")
    ap.add_argument("--ticks", type=int, default=1000, help="Ticks per daily bar.")
    ap.add_argument("--max-records", type=int, default=200_000, help="Sink batch size in the throughput run.")
    ap.add_argument("--rate", type=int, default=10_000, help="Events/s of the latency runs.")
    ap.add_argument("--latency-start", default="2018-01-02", help="Latency runs: first day.")
    ap.add_argument("--latency-end", default="2018-02-01", help="Latency runs: last day (~20 s at 10k/s).")
    ap.add_argument("--max-interval", type=float, default=0.5, help="Sink batch interval in the latency run.")
    ap.add_argument("--baseline-start", default="2018-03-01", help="Baseline throughput run: first day.")
    ap.add_argument("--baseline-end", default="2018-03-28", help="Baseline throughput run: last day.")
    ap.add_argument("--baseline-events", type=int, default=10**12, help="Stop the baseline after this many.")
    ap.add_argument(
        "--baseline-catch-up", type=float, default=120, help="Seconds to wait for baseline visibility."
    )
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--keep", action="store_true", help="Keep the temporary lake.")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="tickerlake-stream-bench-"))
    lake = root / "lake"
    settings = Settings(lake=str(lake), state_dir=str(root / "state"), bootstrap_servers="", s3_endpoint="")
    started_broker = False
    try:
        t = time.time()
        sim_bars(settings, args.end)
        if not args.json:
            print(f"lake with daily bars ready in {time.time() - t:.1f} s", file=sys.stderr)
        bootstrap = args.bootstrap_servers
        if not bootstrap:
            from tickerlake.services import up

            (kafka,) = up(settings, only="kafka")
            bootstrap, started_broker = kafka.endpoint, True
        results: dict[str, Any] = {"bootstrap_servers": bootstrap, "cpus": os.cpu_count()}
        run = uuid.uuid4().hex[:6]
        results["ours_throughput"] = ours_throughput(lake, settings, bootstrap, args, run)
        if not args.json:
            print(f"throughput run: {results['ours_throughput']}", file=sys.stderr)
        results["ours_latency"] = ours_latency(lake, settings, bootstrap, args, run)
        if not args.json:
            print(f"latency run: {results['ours_latency']}", file=sys.stderr)
        if not args.skip_baseline:
            results["baseline"] = baseline(settings, bootstrap, lake, args, run)
            b, o = results["baseline"], results
            results["ratios"] = {
                "throughput": round(
                    o["ours_throughput"]["events_per_s"] / b["throughput"]["events_per_s"], 1
                ),
                "p99_latency": (
                    round(b["latency"]["p99_s"] / o["ours_latency"]["p99_s"], 1)
                    if b["latency"]["p99_s"] and o["ours_latency"]["p99_s"]
                    else None
                ),
            }
    finally:
        if started_broker:
            from tickerlake.services import down

            down(settings, only="kafka")
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    if args.json:
        print(json.dumps(results, indent=2))
        return
    o, lat = results["ours_throughput"], results["ours_latency"]
    print(f"\n== tickerlake stream (replay → Kafka → sink → Iceberg), {results['cpus']} CPUs")
    print(
        f"  sustained: {o['events']:,} events in {o['seconds']:.1f} s = {o['events_per_s']:,.0f} events/s "
        f"({o['commits']} commits; replay alone {o['replay_events_per_s']:,.0f}/s)  (target >= 100,000)"
    )
    print(
        f"  visible in SQL at {lat['rate']:,.0f} events/s: p50 {lat['p50_s']} s, p99 {lat['p99_s']} s, "
        f"max {lat['max_s']} s over {lat['events']:,} events  (target p99 <= 3 s)"
    )
    if "baseline" in results:
        b = results["baseline"]
        print("== tutorial baseline (kafka-python, one JSON file per message)")
        print(
            f"  sustained: {b['throughput']['events']:,} events in {b['throughput']['seconds']:.1f} s = "
            f"{b['throughput']['events_per_s']:,.0f} events/s"
        )
        bl = b["latency"]
        print(
            f"  visible in SQL at {args.rate:,} events/s: p50 {bl['p50_s']} s, p99 {bl['p99_s']} s, "
            f"max {bl['max_s']} s ({bl['unseen']:,} never seen within the catch-up window)"
        )
        r = results["ratios"]
        print(f"  ratio throughput tickerlake / baseline: {r['throughput']}x")
        print(f"  ratio p99 latency baseline / tickerlake: {r['p99_latency']}x")


if __name__ == "__main__":
    main()
