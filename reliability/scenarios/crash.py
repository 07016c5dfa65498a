"""Concurrent and killed jobs: the ETL and the sink against their exactly-once promises.

* ``etl-concurrent-*``: two, then three ``tickerlake etl`` processes at once on the same
  lake (local and S3), first on an empty table (bulk load), then after new raw files
  that change existing keys (the merge path). The table must equal, row for row, the
  table of a lake that ran the same ETLs one at a time.
* ``etl-kill``: ``etl`` killed with SIGKILL at seeded points — named crash points inside
  the commit sequence (:mod:`tickerlake.faults`) and random moments — with new raw files
  landing between kills, then re-run: the tables converge to an uninterrupted run's.
* ``sink-kill``: the sink killed at seeded points (after dead letters, after the raw file
  write, after the data file write, after the commit, random moments), restarted at once
  each time, then ``--once``: every event once in ``stream.ticks`` and once in the raw
  zone, and no uncommitted data or raw file left behind.
"""

from __future__ import annotations

import json
import os
import posixpath
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable

from reliability.core import Context, Outcome, scenario
from tickerlake.config import Settings

__all__: list[str] = []

_BAD_CSV = """ticker,date,open,high,low,close,adj_close,volume
AAPL,2021-06-01,10,11,9,-3,-3,100
AAPL,2021-06-02,10,9,11,10,10,100
MSFT,not a date,1,2,1,1,1,1
"""


def _digest(
    settings: Settings, table: str, key: tuple[str, ...], values: tuple[str, ...]
) -> tuple[int, int, int]:
    """Rows, distinct keys and an order-free checksum of a table's values (not its ingestion times)."""
    import duckdb

    from tickerlake.lake.contract import read_table

    data = read_table(settings, table)
    if data.num_rows == 0:
        return (0, 0, 0)
    con = duckdb.connect()
    con.register("t", data)
    cols = ", ".join(f'"{c}"' for c in values)
    keys = ", ".join(f'"{c}"' for c in key)
    rows, distinct, checksum = con.execute(
        f"SELECT count(*), count(DISTINCT ({keys})), sum(hash({cols})::HUGEINT) FROM t"
    ).fetchone()
    con.close()
    return int(rows), int(distinct), int(checksum or 0)


_BARS = (
    ("ticker", "date"),
    ("ticker", "date", "open", "high", "low", "close", "adj_close", "volume", "raw_close"),
)
_ACTIONS_KEY = ("ticker", "date", "action")


def _lake_digest(settings: Settings) -> dict[str, tuple[int, int, int]]:
    from tickerlake.lake.contract import read_table

    actions = read_table(settings, "market.corporate_actions")
    quarantine = read_table(settings, "market.quarantine")
    return {
        "market.daily_bars": _digest(settings, "market.daily_bars", *_BARS),
        "market.corporate_actions": _digest(
            settings,
            "market.corporate_actions",
            _ACTIONS_KEY,
            tuple(c for c in actions.column_names if c != "ingested_at"),
        )
        if actions.num_rows
        else (0, 0, 0),
        # Quarantine rows carry their ingestion time; compare what was quarantined.
        "market.quarantine": _digest(
            settings,
            "market.quarantine",
            ("dataset", "source_file", "source_row"),
            ("dataset", "reason", "record"),
        )
        if quarantine.num_rows
        else (0, 0, 0),
    }


def _ingest_steps(ctx: Context) -> list[list[str]]:
    """What lands in the raw zone, step by step: a market, a file with bad rows, then revisions."""
    tickers = "AAPL,MSFT,NVDA" if ctx.short else "META,AAPL,NFLX,GOOGL,MSFT,AMZN,NVDA,TSLA"
    start = "2016-01-01" if ctx.short else "2004-01-01"
    bad = ctx.root / "bad-rows.csv"
    bad.write_text(_BAD_CSV)
    return [
        ["ingest", "sim", "--seed", "1", "-t", tickers, "--start", start],
        ["ingest", "csv", str(bad)],
        # Another seed revises every existing key (the merge path) and adds none.
        ["ingest", "sim", "--seed", "2", "-t", tickers.split(",")[0], "--start", start],
    ]


def _run_ok(ctx: Context, args: list[str], env: dict[str, str], out: Outcome) -> None:
    proc = ctx.run(args, env)
    if proc.returncode != 0:
        out.errors.append(f"{' '.join(args[:2])}: {proc.stderr.strip().splitlines()[-1:]}")
        raise RuntimeError(f"{' '.join(args[:2])} failed: {proc.stderr.strip()[-300:]}")


def _reference(ctx: Context, steps: list[list[str]], out: Outcome) -> dict[str, tuple[int, int, int]]:
    """The tables of a lake that ran each ingest and one ETL after it, nothing concurrent."""
    env = ctx.env(ctx.root / "reference")
    for step in steps:
        _run_ok(ctx, step, env, out)
        _run_ok(ctx, ["etl", "--json"], env, out)
    return _lake_digest(ctx.settings(env))


def _compare(
    out: Outcome, got: dict[str, tuple[int, int, int]], want: dict[str, tuple[int, int, int]], when: str
) -> None:
    for table, (rows, distinct, checksum) in want.items():
        g_rows, g_distinct, g_checksum = got[table]
        if table == "market.daily_bars":
            out.rows_in = max(out.rows_in, rows)
            out.rows_out = g_distinct
        out.lost += max(rows - g_distinct, 0)
        out.duplicated += max(g_rows - g_distinct, 0)
        out.check(
            g_rows == rows and g_distinct == distinct, f"{when}: {table} has {g_rows} rows, want {rows}"
        )
        out.check(g_checksum == checksum, f"{when}: {table} content differs from the sequential run")


def _concurrent_etl(ctx: Context, env_for: Callable[[str], dict[str, str]], out: Outcome) -> None:
    steps = _ingest_steps(ctx)
    want_after = []
    ref_env = ctx.env(ctx.root / "reference")
    for step in steps:
        _run_ok(ctx, step, ref_env, out)
        _run_ok(ctx, ["etl", "--json"], ref_env, out)
        want_after.append(_lake_digest(ctx.settings(ref_env)))
    conflicts = 0
    for n in (3,) if ctx.short else (2, 3):
        env = env_for(f"lake-{n}")
        for i, step in enumerate(steps):
            _run_ok(ctx, step, env, out)
            procs = [ctx.popen(["etl", "--json"], env, f"etl-{n}-{i}-{k}") for k in range(n)]
            codes = [p.wait(timeout=900) for p in procs]
            for k, code in enumerate(codes):
                log = (ctx.root / f"etl-{n}-{i}-{k}.log").read_text(errors="replace")
                if code != 0:
                    out.errors.append(f"etl exit {code}: {log.strip().splitlines()[-1:]}")
                try:
                    report = json.loads(log[log.index("{") :])
                    conflicts += sum(t["conflicts"] for t in report["tables"])
                except ValueError:
                    pass
            out.check(all(c == 0 for c in codes), f"{n} concurrent etl runs: exit codes {codes}")
            _compare(out, _lake_digest(ctx.settings(env)), want_after[i], f"{n} concurrent, step {i + 1}")
    out.details["commit_conflicts_replanned"] = conflicts
    out.reason = out.reason or f"{conflicts} commit conflicts caught and re-planned"


@scenario("etl-concurrent-local", "2 and 3 `etl` at once, bulk and merge, local lake", short=True)
def etl_concurrent_local(ctx: Context) -> Outcome:
    out = Outcome()
    _concurrent_etl(ctx, lambda name: ctx.env(ctx.root / name), out)
    return out


@scenario("etl-concurrent-s3", "2 and 3 `etl` at once, bulk and merge, S3 lake (S3Proxy)")
def etl_concurrent_s3(ctx: Context) -> Outcome:
    out = Outcome()
    _concurrent_etl(ctx, lambda name: ctx.s3_env(name)[1], out)
    return out


_ETL_POINTS = ("etl.staged", "etl.quarantine-committed", "etl.committed")


@scenario("etl-kill", "SIGKILL of `etl` at seeded points (crash points + random), then re-run", short=True)
def etl_kill(ctx: Context) -> Outcome:
    out = Outcome()
    rng = ctx.rng
    steps = _ingest_steps(ctx)
    want = _reference(ctx, steps, out)
    env = ctx.env(ctx.root / "lake")
    timer_env = dict(env)
    # How long an uninterrupted bulk ETL takes here, to spread random kills over it.
    probe_env = ctx.env(ctx.root / "probe")
    _run_ok(ctx, steps[0], probe_env, out)
    t0 = time.monotonic()
    _run_ok(ctx, ["etl"], probe_env, out)
    duration = time.monotonic() - t0
    kills_per_step = [2, 1, 1] if ctx.short else [5, 3, 4]
    killed = finished = 0
    for i, step in enumerate(steps):
        _run_ok(ctx, step, env, out)
        for k in range(kills_per_step[i]):
            if k % 2 == 0:
                point = rng.choice(_ETL_POINTS)
                proc = ctx.popen(["etl"], {**env, "TICKERLAKE_CRASH_AT": point}, f"etl-kill-{i}-{k}")
                code = proc.wait(timeout=900)
                how = point
            else:
                proc = ctx.popen(["etl"], timer_env, f"etl-kill-{i}-{k}")
                delay = rng.uniform(0.2, max(duration, 0.5))
                try:
                    code = proc.wait(timeout=delay)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    code = proc.wait(timeout=60)
                how = f"{delay:.2f}s"
            if code == -signal.SIGKILL:
                killed += 1
                out.errors.append(f"killed at {how}")
            elif code == 0:
                finished += 1  # nothing left to do at that point, or done before the timer
            else:
                out.check(False, f"etl exited {code} (not a kill) at {how}")
    _run_ok(ctx, ["etl", "--json"], env, out)
    _compare(out, _lake_digest(ctx.settings(env)), want, "after kills and a re-run")
    # Parquet files a killed run wrote but never committed stay until a maintenance run.
    unreferenced = _unreferenced_files(ctx.settings(env), "market.daily_bars")
    out.details.update(
        {"killed": killed, "finished_before_kill": finished, "unreferenced_files": unreferenced}
    )
    kills = f"{killed} kills; unreferenced Parquet files left: {unreferenced}"
    out.errors = [kills, *list(dict.fromkeys(out.errors))[:6]]
    out.check(killed >= (4 if ctx.short else 10), f"only {killed} runs were actually killed")
    return out


def _unreferenced_files(settings: Settings, identifier: str) -> int:
    from tickerlake.lake.catalog import open_catalog
    from tickerlake.lake.storage import LakeStorage

    table = open_catalog(settings).load_table(identifier)
    storage = LakeStorage(settings)
    referenced = {t.file.file_path for t in table.scan().plan_files()} if table.current_snapshot() else set()
    folder = table.location().rstrip("/") + "/data"
    files = [e.uri for e in storage.list_files(folder)] if storage.exists(folder) else []
    return sum(1 for uri in files if uri not in referenced)


# ---------------------------------------------------------------------------------- sink


_SINK_POINTS = ("sink.dead-letters-sent", "sink.raw-written", "sink.data-written", "sink.committed")


def _stream_check(settings: Settings, topic: str, delivered: int, out: Outcome) -> None:
    """Every delivered event once in the table and once in the raw zone; nothing stray."""
    import duckdb

    from tickerlake.lake.contract import read_table
    from tickerlake.lake.storage import LakeStorage

    ticks = read_table(settings, "stream.ticks", columns=["kafka_topic", "kafka_partition", "kafka_offset"])
    con = duckdb.connect()
    con.register("t", ticks)
    rows, distinct = con.execute(
        "SELECT count(*), count(DISTINCT (kafka_partition, kafka_offset)) FROM t WHERE kafka_topic = ?",
        [topic],
    ).fetchone()
    out.rows_in, out.rows_out = delivered, distinct
    out.lost = max(delivered - distinct, 0)
    out.duplicated = rows - distinct
    out.check(
        rows == distinct == delivered, f"stream.ticks holds {rows} rows / {distinct} offsets of {delivered}"
    )
    storage = LakeStorage(settings)
    raw: Counter[tuple[int, int]] = Counter()
    folder = storage.uri("raw", "stream_ticks", f"topic={topic}")
    for entry in storage.list_files(folder):
        p = int(posixpath.basename(posixpath.dirname(entry.uri)).removeprefix("partition="))
        for line in storage.read_bytes(entry.uri).splitlines():
            raw[(p, json.loads(line)["kafka_offset"])] += 1
    twice = sum(1 for n in raw.values() if n > 1)
    out.details["raw_lines"] = sum(raw.values())
    out.check(
        len(raw) == delivered and not twice, f"raw zone: {len(raw)} offsets ({twice} twice) of {delivered}"
    )
    stray = _unreferenced_files(settings, "stream.ticks")
    out.details["unreferenced_data_files"] = stray
    out.check(stray == 0, f"{stray} data files no snapshot references")


def _wait_for_topic(ctx: Context, env: dict[str, str], topic: str, replay: subprocess.Popen[bytes]) -> None:
    """Until the replay has created the topic (a sink started before would refuse to run)."""
    from tickerlake.stream import _kafka

    settings = ctx.settings(env)
    admin = _kafka.admin_client(settings, settings.bootstrap_servers)
    deadline = time.monotonic() + 60
    while _kafka.topic_partitions(admin, topic, settings.bootstrap_servers) is None:
        if replay.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(
                f"the replay did not create {topic}: {(ctx.root / 'replay.log').read_text()[-300:]}"
            )
        time.sleep(0.2)


@scenario(
    "sink-kill",
    "SIGKILL of `stream sink` at seeded points (incl. between raw write and commit), restart, --once",
    short=True,
)
def sink_kill(ctx: Context) -> Outcome:
    out = Outcome()
    rng = ctx.rng
    bootstrap = ctx.services.kafka()
    env = ctx.env(ctx.root / "lake", TICKERLAKE_BOOTSTRAP_SERVERS=bootstrap)
    _run_ok(
        ctx, ["ingest", "sim", "--seed", "3", "-t", "AAPL,MSFT,NVDA,TSLA", "--start", "2019-01-01"], env, out
    )
    _run_ok(ctx, ["etl"], env, out)
    topic = f"rel-{ctx.root.name}-{int(time.time())}"
    # Paced, so that events keep arriving while sinks are killed: a kill then always lands
    # in a batch (a crash point is passed within a fraction of a second of start-up).
    days, rate = (
        (("2020-03-02", "2020-03-31"), "1500") if ctx.short else (("2020-02-03", "2020-05-29"), "2500")
    )
    replay = ctx.popen(
        [
            *("stream", "replay", "--topic", topic, "--from", days[0], "--to", days[1]),
            *("--ticks-per-bar", "300", "--rate", rate, "--partitions", "4", "--json"),
        ],
        env,
        "replay",
    )
    _wait_for_topic(ctx, env, topic, replay)
    sink = ["stream", "sink", "--topic", topic, "--max-records", "2000", "--max-interval", "0.2"]
    kills = 5 if ctx.short else 12
    killed = 0
    for k in range(kills):
        if k % 2 == 0:
            point = f"{rng.choice(_SINK_POINTS)}@{rng.randint(1, 3)}"
            proc = ctx.popen(sink, {**env, "TICKERLAKE_CRASH_AT": point}, f"sink-{k}")
            try:
                code = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                code = proc.wait(timeout=60)
                point += " (not reached: killed after 30 s)"
        else:
            proc = ctx.popen(sink, env, f"sink-{k}")
            point = f"{rng.uniform(1.0, 4.0):.2f}s"
            time.sleep(float(point[:-1]))
            os.kill(proc.pid, signal.SIGKILL)
            code = proc.wait(timeout=60)
        if code == -signal.SIGKILL:
            killed += 1
            out.errors.append(f"killed at {point}")
        else:
            out.check(False, f"sink exited {code} instead of being killed at {point}")
    still_running = replay.poll() is None
    out.details["replay_running_after_kills"] = still_running
    if replay.wait(timeout=600) != 0:
        raise RuntimeError(f"replay failed: {(ctx.root / 'replay.log').read_text()[-300:]}")
    text = (ctx.root / "replay.log").read_text()
    delivered = json.loads(text[text.index("{") :])["delivered"]
    final = ctx.run([*sink, "--once", "--json"], env, timeout=600)
    out.check(final.returncode == 0, f"--once exited {final.returncode}: {final.stderr.strip()[-200:]}")
    if final.returncode == 0:
        report = json.loads(final.stdout)
        out.details["once"] = {
            k: report[k] for k in ("records", "elapsed_s", "orphans_removed", "instance_id")
        }
    _stream_check(ctx.settings(env), topic, delivered, out)
    out.details["killed"] = killed
    out.errors = [f"{killed} kills", *out.errors[:6]]
    out.check(killed >= (4 if ctx.short else 10), f"only {killed} sinks were actually killed")
    return out
