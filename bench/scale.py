"""Scale benchmark: sink groups of 1/2/3 processes against a strong baseline, visible-in-SQL
latency, commit retries, storage and catalog back ends side by side, and compaction.

Everything runs here as separate processes, as a user would run them, on real services
started in a temporary folder (Kafka, S3Proxy, PostgreSQL):

1. **drain**: a topic pre-filled with ~5 million ticks (8 partitions, one default ticker
   each) is drained into ``stream.ticks`` of a fresh lake by 1, 2 and 3 ``stream sink
   --once`` processes of one group; events/s from the first record received to the last
   commit (and from process launch), commit retries per minute;
2. **baseline**: a consumer that only receives the records (the ceiling any sink here
   is bounded by), and a batched confluent-kafka consumer on the same topic writing Parquet files
   with pyarrow (JSON decoded by Arrow's reader, offsets committed after each file:
   at-least-once, no Iceberg, no validation) — what exactly-once costs;
3. **latency**: visible-in-SQL p50/p99 at a steady 10,000 events/s (``bench/stream.py``'s
   measure: produce time to the first SQL poll that sees the record);
4. **historical**: ``ingest sim`` + ``etl`` + a query of 8 tickers × 10 years on ``file://``
   vs S3Proxy and SQLite vs PostgreSQL catalogs;
5. **compaction**: query latency on ``stream.ticks`` after 5,000 commits of 200 ticks made
   through the sink's commit path (in process, no Kafka), before and after ``tickerlake maintain``.

Usage:
    nice python bench/scale.py [--events 5000000] [--commits 5000] [--json]
    nice python bench/scale.py --only drain --sinks 1    # one sink against the baseline
    nice python bench/scale.py --only latency            # visible-in-SQL latency alone
    nice python bench/scale.py --only compaction         # the compaction figure alone (no Kafka)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from tickerlake.config import DEFAULT_TICKERS, Settings

_spec = importlib.util.spec_from_file_location("bench_stream", Path(__file__).with_name("stream.py"))
assert _spec is not None and _spec.loader is not None
base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(base)

TL = [sys.executable, "-c", "from tickerlake.cli import main; main()"]
TRADING_DAYS_2019 = 252

# The strong baseline: batched confluent-kafka consumer → Parquet (pyarrow), at-least-once.
BASELINE = r"""
import io, json, os, sys, time
import pyarrow as pa, pyarrow.json as pj, pyarrow.parquet as pq
from confluent_kafka import Consumer, TopicPartition
bootstrap, topic, group, out, expected = sys.argv[1:6]
expected = int(expected)
os.makedirs(out, exist_ok=True)
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
              "enable.auto.commit": False, "fetch.max.bytes": 64 << 20,
              "max.partition.fetch.bytes": 16 << 20, "queued.max.messages.kbytes": 1 << 20})
c.subscribe([topic])
n, started, last, buf, offs, opened = 0, None, None, [], {}, time.time()
def flush():
    global buf, offs, last
    if not buf:
        return
    table = pj.read_json(io.BytesIO(b"\n".join(m.value() for m in buf)))
    table = table.append_column("kafka_partition", pa.array([m.partition() for m in buf], pa.int32()))
    table = table.append_column("kafka_offset", pa.array([m.offset() for m in buf], pa.int64()))
    pq.write_table(table, os.path.join(out, f"part-{buf[0].partition()}-{buf[0].offset()}-{len(buf)}.parquet"),
                   compression="zstd")
    c.commit(offsets=[TopicPartition(topic, p, o + 1) for p, o in offs.items()], asynchronous=False)
    buf, offs, last = [], {}, time.time()
while n < expected:
    msgs = c.consume(num_messages=10000, timeout=0.5)
    for m in msgs:
        if m.error():
            continue
        buf.append(m); offs[m.partition()] = m.offset()
    n += sum(1 for m in msgs if not m.error())
    if msgs and started is None:
        started = time.time()
    if len(buf) >= 200000 or (buf and time.time() - opened > 2) or n >= expected:
        flush(); opened = time.time()
flush()
c.close()
print(json.dumps({"records": n, "first_read_at": started, "last_write_at": last}))
"""

# The ceiling: the same consumer receiving every record and doing nothing with it. What
# Kafka and librdkafka deliver to one Python process on this machine bounds any sink.
CEILING = r"""
import json, sys, time
from confluent_kafka import Consumer
bootstrap, topic, group, expected = sys.argv[1:5]
expected = int(expected)
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
              "enable.auto.commit": False, "fetch.max.bytes": 64 << 20,
              "max.partition.fetch.bytes": 16 << 20, "queued.max.messages.kbytes": 1 << 20})
c.subscribe([topic])
n, started = 0, None
while n < expected:
    msgs = c.consume(num_messages=10000, timeout=0.5)
    if msgs and started is None:
        started = time.time()
    n += sum(1 for m in msgs if m.error() is None)
last = time.time()
c.close()
print(json.dumps({"records": n, "first_read_at": started, "last_read_at": last}))
"""


def cli(env: dict[str, str], *args: str, timeout: float = 1800) -> Any:
    """Run the tickerlake CLI with ``--json`` in ``env``; its parsed output."""
    out = subprocess.run([*TL, *args, "--json"], env=env, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {out.stderr.strip()[-800:]}")
    return json.loads(out.stdout)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKERLAKE_")}
    return {**env, **extra}


def prefill(settings: Settings, bootstrap: str, topic: str, events: int) -> dict[str, Any]:
    """Replay ~``events`` ticks of 2019 (8 tickers) as fast as possible into a new 8-partition topic."""
    from tickerlake.stream import _kafka

    _kafka.ensure_topic(_kafka.admin_client(settings, bootstrap), topic, 8, bootstrap)
    ticks = math.ceil(events / (TRADING_DAYS_2019 * len(DEFAULT_TICKERS)))
    replay = base.run_replay(Path(settings.lake), bootstrap, topic, ("2019-01-01", "2019-12-31"), ticks)
    return {"events": replay["delivered"], "events_per_s": replay["events_per_s"]}


def drain(
    root: Path, settings: Settings, bootstrap: str, topic: str, sinks: int, events: int
) -> dict[str, Any]:
    """``sinks`` processes of one group drain the topic (``--once``) into a fresh, empty lake."""
    lake = root / f"drain-{sinks}"
    group = f"{topic}-g{sinks}-{uuid.uuid4().hex[:4]}"
    launched = time.time()
    procs = [
        base.start_sink(
            lake, bootstrap, topic, group, "--once", "--max-records", "200000", "--max-interval", "2"
        )
        for _ in range(sinks)
    ]
    reports = [base.run_json(p, timeout=3600) for p in procs]
    # From the first record any member received to the last commit: process start-up is
    # left out (it is in the second figure), rebalances as members join are in.
    ready = min(r["first_record_at"] for r in reports if r["first_record_at"])
    records = sum(r["records"] for r in reports)
    if records != events:
        raise SystemExit(f"{sinks} sinks committed {records:,} of {events:,} events")
    last = max(r["last_commit_at"] for r in reports if r["last_commit_at"])
    retries = sum(r["commit_retries"] for r in reports)
    shutil.rmtree(lake, ignore_errors=True)
    return {
        "sinks": sinks,
        "events": records,
        "events_per_s": round(records / (last - ready)),
        "events_per_s_incl_start": round(records / (last - launched)),
        "seconds": round(last - ready, 2),
        "commits": sum(r["batches"] for r in reports),
        "commit_retries": retries,
        "commit_retries_per_min": round(retries / ((last - ready) / 60), 1),
    }


def baseline(root: Path, settings: Settings, bootstrap: str, topic: str, events: int) -> dict[str, Any]:
    out = root / "baseline"
    group = f"{topic}-baseline"
    proc = subprocess.Popen(
        [sys.executable, "-c", BASELINE, bootstrap, topic, group, str(out), str(events)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    got, err = proc.communicate(timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"baseline failed: {err[-800:]}")
    body = json.loads(got)
    files = len(list(out.glob("*.parquet")))
    shutil.rmtree(out, ignore_errors=True)
    span = body["last_write_at"] - body["first_read_at"]
    return {
        "events": body["records"],
        "events_per_s": round(body["records"] / span),
        "seconds": round(span, 2),
        "files": files,
    }


def ceiling(bootstrap: str, topic: str, events: int) -> dict[str, Any]:
    """Events/s of a consumer that only receives the records (no decoding, no writing)."""
    argv = [sys.executable, "-c", CEILING, bootstrap, topic, f"{topic}-ceiling", str(events)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise SystemExit(f"consume-only run failed: {out.stderr[-800:]}")
    body = json.loads(out.stdout)
    span = body["last_read_at"] - body["first_read_at"]
    return {
        "events": body["records"],
        "events_per_s": round(body["records"] / span),
        "seconds": round(span, 2),
    }


def historical(root: Path, s3: Any, pg_host_port: str) -> list[dict[str, Any]]:
    """ingest + etl + a query of 8 tickers × 10 years on each storage × catalog."""
    import psycopg

    from tickerlake.services.postgres import DEV_PASSWORD, DEV_USER, catalog_uri

    out = []
    for storage in ("file", "s3"):
        for catalog in ("sqlite", "postgresql"):
            run = uuid.uuid4().hex[:8]
            env = clean_env(TICKERLAKE_STATE_DIR=str(root / f"hist-state-{run}"))
            if storage == "file":
                env["TICKERLAKE_LAKE"] = str(root / f"hist-{run}")
            else:
                env.update(s3.env(), TICKERLAKE_LAKE=f"s3://{s3.bucket}/hist-{run}")
            if catalog == "postgresql":
                host, _, port = pg_host_port.rpartition(":")
                with psycopg.connect(
                    host=host,
                    port=int(port),
                    user=DEV_USER,
                    password=DEV_PASSWORD,
                    dbname="postgres",
                    autocommit=True,
                ) as conn:
                    conn.execute(f"CREATE DATABASE h_{run}")
                env["TICKERLAKE_CATALOG_URI"] = catalog_uri(pg_host_port).rsplit("/", 1)[0] + f"/h_{run}"
            t0 = time.monotonic()
            cli(
                env,
                "ingest",
                "sim",
                "--seed",
                "1",
                "-t",
                ",".join(DEFAULT_TICKERS),
                "--start",
                "2010-01-01",
                "--end",
                "2019-12-31",
            )
            t1 = time.monotonic()
            report = cli(env, "etl")
            t2 = time.monotonic()
            rows = cli(
                env,
                "query",
                "--named",
                "monthly_returns",
                "--param",
                "start=2010-01-01",
                "--param",
                "end=2019-12-31",
            )
            t3 = time.monotonic()
            loaded = next(t["inserted"] for t in report["tables"] if t["table"] == "market.daily_bars")
            out.append(
                {
                    "storage": storage,
                    "catalog": catalog,
                    "rows": loaded,
                    "ingest_s": round(t1 - t0, 2),
                    "etl_s": round(t2 - t1, 2),
                    "query_s": round(t3 - t2, 2),
                    "query_rows": len(rows["rows"]) if isinstance(rows, dict) else len(rows),
                }
            )
    return out


def _timed_queries(settings: Settings, repeats: int = 5) -> dict[str, float]:
    from tickerlake.query.engine import clear_engines, get_engine

    clear_engines()
    engine = get_engine(settings)
    queries = {
        "aggregate": "SELECT ticker, count(*), avg(price) FROM stream.ticks GROUP BY 1",
        "one_ticker_hour": (
            "SELECT count(*), max(price) FROM stream.ticks WHERE ticker = 'AAPL' "
            "AND ts BETWEEN TIMESTAMPTZ '2019-03-01 14:30:00+00' AND TIMESTAMPTZ '2019-03-01 15:30:00+00'"
        ),
    }
    out = {}
    for name, sql in queries.items():
        engine.query(sql, limit=0)  # warm: metadata, extension
        times = []
        for _ in range(repeats):
            t = time.monotonic()
            engine.query(sql, limit=0)
            times.append(time.monotonic() - t)
        out[name] = round(statistics.median(times), 3)
    clear_engines()
    return out


def compaction(root: Path, commits: int, events: int = 200) -> dict[str, Any]:
    """``commits`` commits of ``events`` ticks each, then query latency before/after ``maintain``.

    The commits go through the sink's own commit path (its committer on ``stream.ticks``:
    fencing, offsets in the snapshot summary, one data file per commit, snapshot expiry)
    in this process, without Kafka and raw files: what the table looks like after that many
    sink commits, reached in minutes rather than the hours a sink paced by Kafka would take.
    Eight partitions, one ticker each, ticks 0.2 s apart from 2019-03-01 14:30 UTC.
    """
    import numpy as np

    from tickerlake.lake.maintain import MaintainOptions, maintain
    from tickerlake.lake.storage import LakeStorage
    from tickerlake.stream.schema import Rules, decode_ticks, encode_ticks
    from tickerlake.stream.sink.batch import PartitionBatch
    from tickerlake.stream.sink.committer import Committer
    from tickerlake.stream.sink.iceberg import IcebergSinkTable

    def fenced(*_: object) -> None:
        raise SystemExit("compaction bench: a commit was fenced (another writer on its lake?)")

    lake_settings = Settings(lake=str(root / "compact"), bootstrap_servers="", s3_endpoint="")
    table = IcebergSinkTable(lake_settings, "stream.ticks", LakeStorage(lake_settings))
    committer = Committer(
        table, topic="compact", table_name="stream.ticks", sink_id="bench", on_fenced=fenced
    )
    committer.prepare()
    rules = Rules()
    start_us = 1_551_450_600_000_000  # 2019-03-01T14:30:00Z
    rng = np.random.default_rng(7)
    position: dict[int, int] = {}
    marks: dict[int, dict[str, int]] = {}
    t0 = time.monotonic()
    for i in range(commits):
        p = i % len(DEFAULT_TICKERS)
        first = position.get(p, 0)
        seq = np.arange(first, first + events, dtype=np.int64)
        price = 100.0 + np.round(rng.standard_normal(events).cumsum() * 0.05, 2)
        size = rng.integers(1, 500, events)
        values = encode_ticks([DEFAULT_TICKERS[p]] * events, start_us + seq * 200_000, price, size, seq)
        decoded = decode_ticks(values, rules, marks.get(p, {}))
        committer.commit([PartitionBatch(p, seq, list(values), decoded, start=position.get(p))])
        committer.expire_if_due()
        position[p], marks[p] = first + events, decoded.watermarks
        if (i + 1) % 500 == 0:
            print(
                f"  compaction: {i + 1:,} commits in {time.monotonic() - t0:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    commit_s = time.monotonic() - t0
    before = _timed_queries(lake_settings)
    t = time.monotonic()
    (done,) = maintain(lake_settings, ["stream.ticks"], MaintainOptions(retain_s=0.0))
    maintain_s = time.monotonic() - t
    after = _timed_queries(lake_settings)
    shutil.rmtree(root / "compact", ignore_errors=True)
    return {
        "commits": commits,
        "events": commits * events,
        "commit_s": round(commit_s, 1),
        "commit_ms_avg": round(1000 * commit_s / commits, 1),
        "files_before": done.files_before,
        "files_after": done.files_after,
        "maintain_s": round(maintain_s, 2),
        "query_s_before": before,
        "query_s_after": after,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=5_000_000, help="Events in the pre-filled topic.")
    ap.add_argument("--commits", type=int, default=5000, help="Sink commits before the compaction figure.")
    ap.add_argument("--rate", type=int, default=10_000, help="Events/s of the latency run.")
    ap.add_argument(
        "--skip", default="", help="Comma-separated parts to skip: drain,latency,historical,compaction."
    )
    ap.add_argument(
        "--only",
        default="",
        help="Comma-separated parts to run (the others are skipped): drain,latency,historical,compaction.",
    )
    ap.add_argument("--sinks", default="1,2,3", help="Sink group sizes of the drain part (e.g. 1).")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if args.only:
        skip |= {"drain", "latency", "historical", "compaction"} - set(args.only.split(","))
    group_sizes = [int(n) for n in args.sinks.split(",") if n.strip()]

    root = Path(tempfile.mkdtemp(prefix="tickerlake-scale-bench-"))
    root.chmod(0o755)  # PostgreSQL runs as its own user when this runs as root
    services = Settings(
        lake=str(root / "svc-lake"), state_dir=str(root / "state"), bootstrap_servers="", s3_endpoint=""
    )
    settings = Settings(
        lake=str(root / "bars"), state_dir=str(root / "state"), bootstrap_servers="", s3_endpoint=""
    )
    results: dict[str, Any] = {"cpus": os.cpu_count()}

    def say(msg: str) -> None:
        if not args.json:
            print(msg, file=sys.stderr, flush=True)

    from tickerlake.services import down, up

    try:
        bootstrap, run = "", uuid.uuid4().hex[:6]
        if not {"drain", "latency"} <= skip:  # the parts that replay ticks into Kafka
            base.sim_bars(settings)
            (kafka,) = up(services, only="kafka")
            bootstrap = kafka.endpoint
        if "drain" not in skip:
            topic = f"scale-{run}"
            results["prefill"] = prefill(settings, bootstrap, topic, args.events)
            say(f"pre-filled: {results['prefill']}")
            events = results["prefill"]["events"]
            results["consume_only"] = ceiling(bootstrap, topic, events)
            say(f"consume only: {results['consume_only']}")
            results["baseline"] = baseline(root, settings, bootstrap, topic, events)
            say(f"baseline: {results['baseline']}")
            results["drain"] = []
            for n in group_sizes:
                results["drain"].append(drain(root, settings, bootstrap, topic, n, events))
                say(f"{n} sink(s): {results['drain'][-1]}")
            one = next((d for d in results["drain"] if d["sinks"] == 1), None)
            if one is not None:
                results["ratio_one_sink_to_baseline"] = round(
                    one["events_per_s"] / results["baseline"]["events_per_s"], 2
                )
        if "latency" not in skip:
            ns = argparse.Namespace(
                latency_start="2018-01-02",
                latency_end="2018-02-01",
                ticks=1000,
                rate=args.rate,
                max_interval=0.5,
            )
            results["latency"] = base.ours_latency(Path(settings.lake), settings, bootstrap, ns, run)
            say(f"latency: {results['latency']}")
        if "historical" not in skip:
            _, pg = up(services, only=["s3", "postgres"])
            from tickerlake.services import dev_s3

            s3 = dev_s3(services)
            assert s3 is not None and pg.endpoint is not None
            s3.create_bucket()
            host_port = pg.endpoint.split("://", 1)[1].split("/", 1)[0]
            results["historical"] = historical(root, s3, host_port)
            say(f"historical: {results['historical']}")
        if "compaction" not in skip:
            results["compaction"] = compaction(root, args.commits)
            say(f"compaction: {results['compaction']}")
    finally:
        down(services)
        shutil.rmtree(root, ignore_errors=True)

    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"\n== tickerlake at scale ({results['cpus']} CPUs, shared machine)")
    if "drain" in results:
        p, b = results["prefill"], results["baseline"]
        print(f"pre-filled topic: {p['events']:,} ticks (replay alone {p['events_per_s']:,.0f}/s)")
        print(
            f"  consume only (receive, nothing else): {results['consume_only']['events_per_s']:,.0f} events/s"
        )
        print(f"  baseline (confluent-kafka → Parquet, at-least-once): {b['events_per_s']:,.0f} events/s")
        for d in results["drain"]:
            print(
                f"  {d['sinks']} sink(s): {d['events_per_s']:,.0f} events/s "
                f"({d['events_per_s_incl_start']:,.0f}/s incl. process start; {d['commits']} commits, "
                f"{d['commit_retries_per_min']} commit retries/min)"
            )
        if "ratio_one_sink_to_baseline" in results:
            print(
                f"  ratio 1 sink / baseline: {results['ratio_one_sink_to_baseline']}x "
                "(target >= 0.7; target >= 250,000 events/s for 1 sink)"
            )
    if "latency" in results:
        lat = results["latency"]
        print(
            f"visible in SQL at {lat['rate']:,.0f} events/s: p50 {lat['p50_s']} s, p99 {lat['p99_s']} s, "
            f"max {lat['max_s']} s (target p99 <= 1 s)"
        )
    if "historical" in results:
        print("historical pipeline (8 tickers × 10 years): storage / catalog: ingest, etl, query seconds")
        for h in results["historical"]:
            print(
                f"  {h['storage']:5} {h['catalog']:10} {h['ingest_s']:6.2f} {h['etl_s']:6.2f} {h['query_s']:6.2f}"
            )
    if "compaction" in results:
        c = results["compaction"]
        print(
            f"compaction after {c['commits']:,} commits ({c['commit_ms_avg']} ms each): "
            f"{c['files_before']} → {c['files_after']} files in "
            f"{c['maintain_s']} s; query s before {c['query_s_before']} after {c['query_s_after']}"
        )


if __name__ == "__main__":
    main()
