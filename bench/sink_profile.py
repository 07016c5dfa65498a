"""Where a sink's time goes: one ``stream sink --once`` run in this process, each part timed.

A topic is pre-filled with ticks (8 partitions), then a sink drains it with wall-clock
counters wrapped around each part of its cycle: Kafka consume, buffering, decoding, dead
letters, raw files, the Iceberg commit (table loads, rows, Parquet write, the data file's
footer read, manifests, table metadata, catalog swap, old-metadata deletion) and the
group-offset commit. Parts run in the loop's thread or in the commit thread; both columns
are wall time, so nested parts are included in their parent (``commit`` holds the rest).

Usage:
    nice python bench/sink_profile.py [--events 1000000] [--json]
    nice python bench/sink_profile.py --events 150000 --rate 10000 --max-records 100000   # latency regime
"""

from __future__ import annotations

import argparse
import collections
import functools
import importlib.util
import json
import math
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tickerlake.config import DEFAULT_TICKERS, Settings

_spec = importlib.util.spec_from_file_location("bench_stream", Path(__file__).with_name("stream.py"))
assert _spec is not None and _spec.loader is not None
base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(base)

TRADING_DAYS_2019 = 252
_TOTALS: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0])
_LOCK = threading.Lock()


def _timed(owner: Any, attr: str, name: str) -> None:
    """Wrap ``owner.attr`` so that each call adds its wall time to ``name``."""
    inner = getattr(owner, attr)
    static = isinstance(owner.__dict__.get(attr), staticmethod) if isinstance(owner, type) else False

    @functools.wraps(inner)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            with _LOCK:
                total = _TOTALS[name]
                total[0] += time.perf_counter() - t
                total[1] += 1

    setattr(owner, attr, staticmethod(wrapper) if static else wrapper)


class _TimedConsumer:
    """A consumer whose ``consume`` is timed (confluent-kafka's methods cannot be wrapped in place)."""

    def __init__(self, consumer: Any) -> None:
        self._consumer = consumer

    def consume(self, *args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return self._consumer.consume(*args, **kwargs)
        finally:
            total = _TOTALS["consume (Kafka)"]
            total[0] += time.perf_counter() - t
            total[1] += 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._consumer, name)


def instrument() -> None:
    """Wrap every part of a sink cycle with a timer."""
    import pyiceberg.catalog
    import pyiceberg.catalog.sql
    import pyiceberg.table
    import pyiceberg.table.update.snapshot

    from tickerlake.stream import _kafka
    from tickerlake.stream.sink import committer, deadletters, iceberg, loop, rawfiles

    new_consumer = loop.StreamSink._new_consumer

    def timed_consumer(self: Any) -> Any:
        return _TimedConsumer(new_consumer(self))

    loop.StreamSink._new_consumer = timed_consumer  # type: ignore[method-assign]
    _timed(loop.StreamSink, "_add", "buffer records")
    _timed(loop.StreamSink, "_decode", "decode")
    _timed(deadletters.DeadLetters, "publish", "dead letters")
    _timed(rawfiles.RawZone, "write", "raw file write")
    _timed(loop.StreamSink, "_flush", "flush (loop thread)")
    _timed(committer.Committer, "commit", "commit")
    _timed(committer.Committer, "expire_if_due", "expire snapshots")
    _timed(iceberg.IcebergSinkTable, "load", "  table load (catalog + metadata read)")
    _timed(committer, "batch_rows", "  rows (Arrow)")
    _timed(iceberg.IcebergVersion, "write_data_file", "  Parquet write")
    _timed(iceberg.IcebergVersion, "append", "  append (pyiceberg)")
    _timed(pyiceberg.table, "_parquet_files_to_data_files", "    data file footer read")
    _timed(pyiceberg.table.update.snapshot._SnapshotProducer, "_commit", "    manifests + manifest list")
    _timed(pyiceberg.catalog.sql.SqlCatalog, "commit_table", "    catalog commit_table")
    _timed(pyiceberg.catalog.sql.SqlCatalog, "load_table", "      catalog load_table")
    _timed(pyiceberg.catalog.MetastoreCatalog, "_update_and_stage_table", "      apply updates")
    _timed(pyiceberg.catalog.MetastoreCatalog, "_write_metadata", "      metadata write")
    _timed(pyiceberg.catalog.Catalog, "_delete_old_metadata", "    old metadata delete")
    _timed(_kafka, "commit_offsets", "group offsets")


def rows(elapsed: float) -> Iterator[dict[str, Any]]:
    for name, (total, calls) in _TOTALS.items():
        yield {
            "part": name,
            "seconds": round(total, 3),
            "calls": int(calls),
            "ms_per_call": round(1000 * total / calls, 2) if calls else 0.0,
            "share": round(total / elapsed, 3),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="Events in the pre-filled topic.")
    ap.add_argument("--max-records", type=int, default=200_000, help="The sink's --max-records.")
    ap.add_argument("--rate", type=int, default=0, help="Pace the events at this rate while the sink runs.")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from tickerlake.services import down, up
    from tickerlake.stream import _kafka
    from tickerlake.stream.sink import SinkOptions, StreamSink

    root = Path(tempfile.mkdtemp(prefix="tickerlake-sink-profile-"))
    services = Settings(
        lake=str(root / "svc"), state_dir=str(root / "state"), bootstrap_servers="", s3_endpoint=""
    )
    bars = Settings(
        lake=str(root / "bars"), state_dir=str(root / "state"), bootstrap_servers="", s3_endpoint=""
    )
    try:
        base.sim_bars(bars)
        (kafka,) = up(services, only="kafka")
        bootstrap = kafka.endpoint
        topic = "profile"
        _kafka.ensure_topic(_kafka.admin_client(bars, bootstrap), topic, 8, bootstrap)
        ticks = math.ceil(args.events / (TRADING_DAYS_2019 * len(DEFAULT_TICKERS)))
        span = ("2019-01-01", "2019-12-31")
        instrument()
        sink_settings = Settings(lake=str(root / "lake"), state_dir=str(root / "state"), bootstrap_servers="")
        options = SinkOptions(
            topic=topic,
            bootstrap=bootstrap,
            group="profile",
            once=not args.rate,
            max_records=args.max_records,
            max_interval_s=0.5 if args.rate else 2.0,
        )
        if not args.rate:
            replay = base.run_replay(Path(bars.lake), bootstrap, topic, span, ticks)
            report = StreamSink(sink_settings, options).run(handle_signals=False)
        else:  # the sink runs while the replay paces the events (the latency regime)
            sink = StreamSink(sink_settings, options)
            done: list[Any] = []
            thread = threading.Thread(target=lambda: done.append(sink.run(handle_signals=False)))
            thread.start()
            replay = base.run_replay(Path(bars.lake), bootstrap, topic, span, ticks, "--rate", str(args.rate))
            deadline = time.monotonic() + 60
            while sink.report.records < replay["delivered"] and time.monotonic() < deadline:
                time.sleep(0.1)
            sink.stop.set()
            thread.join()
            report = done[0]
    finally:
        down(services)
        shutil.rmtree(root, ignore_errors=True)
    assert report.first_record_at is not None and report.last_commit_at is not None
    elapsed = report.last_commit_at - report.first_record_at
    out = {
        "events": replay["delivered"],
        "records": report.records,
        "batches": report.batches,
        "seconds": round(elapsed, 2),
        "events_per_s": round(report.records / elapsed),
        "parts": list(rows(elapsed)),
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(
        f"{out['records']:,} records in {out['batches']} commits, {out['seconds']} s "
        f"(first record to last commit): {out['events_per_s']:,} events/s"
    )
    print(f"{'part':44} {'seconds':>8} {'calls':>7} {'ms/call':>9} {'share':>6}")
    for r in out["parts"]:
        print(f"{r['part']:44} {r['seconds']:8.3f} {r['calls']:7d} {r['ms_per_call']:9.2f} {r['share']:6.1%}")


if __name__ == "__main__":
    sys.exit(main())
