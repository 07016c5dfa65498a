"""Service outages: the broker, the object store or the lake's disk going away mid-run.

Every scenario drives the real ``tickerlake`` CLI as subprocesses against the dev
services, breaks a service by pid (SIGKILL then restart, or SIGSTOP then SIGCONT) while a
command runs, then checks the lake against the ground truth:

* the Kafka topic's offsets (what the broker holds) against ``stream.ticks`` and the raw
  zone, per (partition, offset): 0 lost, 0 duplicated, nothing that is not in the topic;
* the synthesized events' identity (ticker, per-ticker seq), so an event the broker took
  twice would show as a duplicate too;
* for the ETL, the table's rows against an uninterrupted run on another lake;
* a command that cannot finish says so in one line (no traceback) with a non-zero exit.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from reliability.core import Context, Outcome, cli_command, scenario

# The simulated lake every streaming scenario replays: 2 tickers x ~62 sessions x 390 ticks.
_SIM = ["ingest", "sim", "--seed", "1", "-t", "AAPL,MSFT", "--start", "2020-01-01", "--end", "2020-03-31"]
_PARTITIONS = "4"


# ---------------------------------------------------------------- process helpers


def _last_line(text: str) -> str:
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else ""


def _clean_failure(out: Outcome, what: str, proc: subprocess.CompletedProcess[str]) -> str:
    """Check that a failed command said why in one line (no traceback); returns that line."""
    err = (proc.stderr or "").strip()
    line = _last_line(err) or _last_line(proc.stdout)
    out.check(proc.returncode != 0, f"{what}: exit 0 although it could not work")
    out.check(
        "Traceback" not in err and "Traceback" not in (proc.stdout or ""), f"{what}: printed a traceback"
    )
    out.check(bool(line), f"{what}: failed without a message")
    out.errors.append(f"{what}: {line[:150]}")
    return line


def _run_ok(
    ctx: Context, out: Outcome, what: str, args: list[str], env: dict[str, str], timeout: float = 300
) -> bool:
    proc = ctx.run(args, env, timeout=timeout)
    ok = proc.returncode == 0
    if not ok:
        out.errors.append(f"{what}: {_last_line(proc.stderr) or _last_line(proc.stdout)}"[:200])
    return out.check(ok, f"{what} exited {proc.returncode}: {_last_line(proc.stderr)[:150]}")


class _Bg:
    """A CLI command running in the background, JSON on stdout, stderr kept apart."""

    def __init__(self, ctx: Context, args: list[str], env: dict[str, str], name: str) -> None:
        self.stdout_path = ctx.root / f"{name}.out"
        self.stderr_path = ctx.root / f"{name}.err"
        with open(self.stdout_path, "wb") as so, open(self.stderr_path, "wb") as se:
            self.proc = subprocess.Popen(cli_command() + args, env=env, stdout=so, stderr=se)

    def wait(self, timeout: float) -> int:
        """Exit code; the process is killed (and the check fails upstream) past ``timeout``."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return -9

    def terminate(self, timeout: float) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def report(self) -> dict[str, Any] | None:
        text = self.stdout_path.read_text(errors="replace").strip()
        if not text:
            return None
        try:
            return json.loads(text[text.index("{") :])
        except ValueError:
            return None


def _cont_if_stopped(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGCONT)


@contextlib.contextmanager
def _frozen(ctx: Context, service: str) -> Iterator[int]:
    """SIGSTOP a service for the block; SIGCONT it whatever happens."""
    pid = ctx.services.record(service).pid
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        _cont_if_stopped(pid)


def _kill_service(ctx: Context, service: str) -> int:
    pid = ctx.services.record(service).pid
    os.kill(pid, signal.SIGKILL)
    # Reap-free wait: the launcher started it detached, so poll until the pid is gone.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    return pid


def _wait_for(cond: Callable[[], bool], timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if cond():
                return True
        time.sleep(step)
    return False


# ---------------------------------------------------------------- ground truth


def _topic_offsets(bootstrap: str, topic: str) -> dict[int, tuple[int, int]]:
    """Low and high watermark per partition, straight from the broker."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "reliability-inspect", "log_level": 3})
    try:
        md = c.list_topics(topic, timeout=20)
        parts = sorted(md.topics[topic].partitions)
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=20, cached=False) for p in parts}
    finally:
        c.close()


def _table_rows(ctx: Context, env: dict[str, str], identifier: str, columns: list[str]) -> Any:
    """The table's current rows (selected columns) read in-process through the catalog."""
    from tickerlake.lake.catalog import load_table_or_none, open_catalog

    table = load_table_or_none(open_catalog(ctx.settings(env)), identifier)
    if table is None:
        return None
    return table.scan(selected_fields=tuple(columns)).to_arrow()


def _table_count(ctx: Context, env: dict[str, str], identifier: str) -> int:
    from tickerlake.lake.catalog import load_table_or_none, open_catalog

    table = load_table_or_none(open_catalog(ctx.settings(env)), identifier)
    snap = table.current_snapshot() if table is not None else None
    return int(snap.summary.get("total-records", "0")) if snap is not None and snap.summary else 0


def _raw_offsets(ctx: Context, env: dict[str, str], topic: str) -> collections.Counter[tuple[int, int]]:
    """(partition, offset) of every line in the raw zone's stream files."""
    from tickerlake.lake.storage import LakeStorage

    storage = LakeStorage(ctx.settings(env))
    seen: collections.Counter[tuple[int, int]] = collections.Counter()
    for entry in storage.list_files(storage.uri("raw", "stream_ticks", f"topic={topic}")):
        part = int(entry.uri.split("partition=")[1].split("/")[0])
        for line in storage.read_bytes(entry.uri).splitlines():
            if line.strip():
                seen[(part, int(json.loads(line)["kafka_offset"]))] += 1
    return seen


def _check_stream(
    ctx: Context, out: Outcome, env: dict[str, str], bootstrap: str, topic: str, raw: bool
) -> None:
    """Every record the topic holds is in ``stream.ticks`` (and the raw zone) exactly once."""
    marks = _topic_offsets(bootstrap, topic)
    expected = {(p, o) for p, (lo, hi) in marks.items() for o in range(lo, hi)}
    out.details["topic_records"] = len(expected)
    rows = _table_rows(
        ctx, env, "stream.ticks", ["kafka_topic", "kafka_partition", "kafka_offset", "ticker", "seq"]
    )
    out.check(rows is not None, "stream.ticks does not exist")
    if rows is None:
        out.lost = len(expected)
        return
    rows = rows.to_pydict()
    keys = collections.Counter(
        (p, o)
        for t, p, o in zip(rows["kafka_topic"], rows["kafka_partition"], rows["kafka_offset"], strict=True)
        if t == topic
    )
    events = collections.Counter(zip(rows["ticker"], rows["seq"], strict=True))
    out.rows_out = len(keys)
    lost = len(expected - keys.keys())
    # An event written to the topic twice (new offset, same ticker/seq) counts as a duplicate too.
    dup_events = sum(c - 1 for c in events.values())
    dup_offsets = sum(c - 1 for c in keys.values())
    dup = max(dup_offsets, dup_events)
    stray = len(keys.keys() - expected)
    out.lost += lost
    out.duplicated += dup
    out.details.update(
        table_rows=sum(keys.values()), duplicate_offsets=dup_offsets, duplicate_events=dup_events
    )
    out.check(lost == 0, f"{lost} topic record(s) missing from stream.ticks")
    out.check(dup_offsets == 0, f"{dup_offsets} record(s) twice in stream.ticks")
    out.check(dup_events == 0, f"{dup_events} event(s) (ticker, seq) twice in stream.ticks")
    out.check(stray == 0, f"{stray} row(s) with offsets the topic does not hold")
    if raw:
        lines = _raw_offsets(ctx, env, topic)
        raw_lost = len(expected - lines.keys())
        raw_dup = sum(c - 1 for c in lines.values())
        out.details.update(raw_lines=sum(lines.values()), raw_lost=raw_lost, raw_duplicated=raw_dup)
        out.lost += raw_lost
        out.duplicated += raw_dup
        out.check(raw_lost == 0, f"{raw_lost} topic record(s) missing from the raw zone")
        out.check(raw_dup == 0, f"{raw_dup} record(s) twice in the raw zone")
        out.check(not (lines.keys() - expected), "raw lines with offsets the topic does not hold")


def _replay_all(ctx: Context, out: Outcome, env: dict[str, str], topic: str) -> dict[str, Any] | None:
    """Replay the sim lake's ticks to ``topic`` as fast as possible; the replay's report."""
    bg = _Bg(
        ctx, ["stream", "replay", "--topic", topic, "--partitions", _PARTITIONS, "--json"], env, "replay"
    )
    rc = bg.wait(180)
    rep = bg.report()
    out.check(rc == 0 and rep is not None, f"replay exited {rc}: {_last_line(bg.stderr)[:150]}")
    if rep is not None:
        out.rows_in = int(rep["events"])
        out.check(
            rep["delivered"] == rep["events"], f"replay delivered {rep['delivered']} of {rep['events']}"
        )
    return rep


def _sink_once(
    ctx: Context, out: Outcome, env: dict[str, str], topic: str, what: str
) -> dict[str, Any] | None:
    proc = ctx.run(
        ["stream", "sink", "--topic", topic, "--once", "--timeout", "120", "--json"], env, timeout=200
    )
    rep = None
    with contextlib.suppress(ValueError):
        rep = json.loads(proc.stdout[proc.stdout.index("{") :])
    out.check(proc.returncode == 0, f"{what} exited {proc.returncode}: {_last_line(proc.stderr)[:150]}")
    if rep is not None:
        out.check(rep.get("complete") is True, f"{what} did not drain the topic (lag {rep.get('lag')})")
        out.check(rep.get("rejected", 0) == 0, f"{what} rejected {rep.get('rejected')} valid record(s)")
    return rep


def _kafka_lake(ctx: Context, out: Outcome) -> tuple[dict[str, str], str]:
    bootstrap = ctx.services.kafka()
    env = ctx.env(ctx.root / "lake", TICKERLAKE_BOOTSTRAP_SERVERS=bootstrap)
    _run_ok(ctx, out, "ingest sim", _SIM, env)
    _run_ok(ctx, out, "etl", ["etl"], env)
    return env, bootstrap


# ---------------------------------------------------------------- scenarios


@scenario("kafka-restart-during-replay", "broker SIGKILLed mid-replay, restarted 4 s later")
def kafka_restart_during_replay(ctx: Context) -> Outcome:
    out = Outcome()
    env, bootstrap = _kafka_lake(ctx, out)
    if not out.passed:
        return out
    topic = "outage-replay"
    # ~48k ticks paced to ~14 s, so the kill lands in the middle of the run.
    bg = _Bg(
        ctx,
        ["stream", "replay", "--topic", topic, "--partitions", _PARTITIONS, "--rate", "3500", "--json"],
        env,
        "replay",
    )
    time.sleep(5)
    out.check(bg.proc.poll() is None, "replay finished before the broker was killed (pace it slower)")
    _kill_service(ctx, "kafka")
    time.sleep(4)
    ctx.services.restart("kafka")
    rc = bg.wait(240)
    rep = bg.report()
    out.check(rep is not None, f"replay printed no report (exit {rc}): {_last_line(bg.stderr)[:150]}")
    if rep is None:
        return out
    events, delivered, failed = int(rep["events"]), int(rep["delivered"]), int(rep["failed"])
    out.rows_in = events
    out.errors += [f"replay: {e}"[:150] for e in rep.get("errors", [])]
    out.details["replay"] = {k: rep.get(k) for k in ("events", "delivered", "failed", "errors", "elapsed_s")}
    out.details["replay_exit"] = rc
    generated = sum(int(v) for v in rep.get("by_ticker", {}).values())
    out.check(not rep.get("stopped"), "replay stopped before sending everything")
    out.check(generated == events, f"replay generated {generated} events but handed {events} to the producer")
    out.check(delivered + failed == events, f"delivered {delivered} + failed {failed} != {events} events")
    out.check((rc == 0) == (failed == 0), f"replay exit {rc} with {failed} failed event(s)")
    out.check(failed == 0 or bool(rep.get("errors")), "failed events without an error message")
    _sink_once(ctx, out, env, topic, "sink --once")
    _check_stream(ctx, out, env, bootstrap, topic, raw=True)
    # Every acknowledged event must be in the topic (and so, checked above, in the table once).
    held = out.details.get("topic_records", 0)
    out.check(held >= delivered, f"topic holds {held} records but the replay reported {delivered} delivered")
    out.check(held <= events, f"topic holds {held} records, more than the {events} events sent")
    if failed == 0:
        missing = events - out.rows_out
        out.lost = max(out.lost, missing)
        out.check(missing == 0, f"{missing} delivered event(s) not in stream.ticks")
    if out.passed:
        out.reason = f"replay exit {rc}: {delivered:,} delivered, {failed:,} failed of {events:,}"
    return out


@scenario("kafka-restart-during-sink", "broker SIGKILLed while a sink commits, restarted 4 s later")
def kafka_restart_during_sink(ctx: Context) -> Outcome:
    out = Outcome()
    env, bootstrap = _kafka_lake(ctx, out)
    topic = "outage-sink"
    if not out.passed or _replay_all(ctx, out, env, topic) is None:
        return out
    total = sum(hi - lo for lo, hi in _topic_offsets(bootstrap, topic).values())
    # Small batches: many commits, so the broker dies between and during them.
    sink = _Bg(
        ctx,
        ["stream", "sink", "--topic", topic, "--max-records", "400", "--max-interval", "0.2", "--json"],
        env,
        "sink",
    )
    started = _wait_for(lambda: _table_count(ctx, env, "stream.ticks") >= total // 10, 60)
    out.check(started, "the sink committed nothing within 60 s")
    out.details["rows_at_kill"] = _table_count(ctx, env, "stream.ticks")
    _kill_service(ctx, "kafka")
    time.sleep(4)
    ctx.services.restart("kafka")
    caught_up = _wait_for(
        lambda: sink.proc.poll() is not None or _table_count(ctx, env, "stream.ticks") >= total, 90, 0.5
    )
    caught_up = caught_up and sink.proc.poll() is None
    out.details["caught_up_while_running"] = caught_up
    rc = sink.terminate(60)
    out.details["sink_exit"] = rc
    if rc != 0:
        out.errors.append(f"sink: {_last_line(sink.stderr)[:150]}")
        out.check("Traceback" not in sink.stderr, "the sink printed a traceback")
    _sink_once(ctx, out, env, topic, "sink --once after restart")
    _check_stream(ctx, out, env, bootstrap, topic, raw=True)
    if out.passed:
        how = "caught up while running" if caught_up else "caught up by sink --once"
        out.reason = f"sink exit {rc}, {how}"
    return out


@scenario("s3-outage-during-sink", "S3Proxy frozen (SIGSTOP) 10 s while a sink commits to an S3 lake")
def s3_outage_during_sink(ctx: Context) -> Outcome:
    out = Outcome()
    bootstrap = ctx.services.kafka()
    _, env = ctx.s3_env("lake")
    env["TICKERLAKE_BOOTSTRAP_SERVERS"] = bootstrap
    _run_ok(ctx, out, "ingest sim", _SIM, env)
    _run_ok(ctx, out, "etl", ["etl"], env)
    topic = "outage-s3-sink"
    if not out.passed or _replay_all(ctx, out, env, topic) is None:
        return out
    total = sum(hi - lo for lo, hi in _topic_offsets(bootstrap, topic).values())
    sink = _Bg(
        ctx,
        ["stream", "sink", "--topic", topic, "--max-records", "1500", "--max-interval", "0.2", "--json"],
        env,
        "sink",
    )
    started = _wait_for(lambda: _table_count(ctx, env, "stream.ticks") >= total // 10, 90)
    out.check(started, "the sink committed nothing within 90 s")
    out.details["rows_at_freeze"] = _table_count(ctx, env, "stream.ticks")
    with _frozen(ctx, "s3"):
        time.sleep(10)
        out.details["sink_alive_after_freeze"] = sink.proc.poll() is None
    caught_up = _wait_for(
        lambda: sink.proc.poll() is not None or _table_count(ctx, env, "stream.ticks") >= total, 120, 0.5
    )
    caught_up = caught_up and sink.proc.poll() is None
    out.details["caught_up_while_running"] = caught_up
    rc = sink.terminate(60)
    out.details["sink_exit"] = rc
    if rc != 0:
        out.errors.append(f"sink: {_last_line(sink.stderr)[:150]}")
        out.check("Traceback" not in sink.stderr, "the sink printed a traceback")
    _sink_once(ctx, out, env, topic, "sink --once after the outage")
    _check_stream(ctx, out, env, bootstrap, topic, raw=True)
    if out.passed:
        how = "rode it out and caught up" if caught_up and rc == 0 else "exited, a restart caught up"
        out.reason = f"sink exit {rc}: {how}"
    return out


def _bars_digest(ctx: Context, env: dict[str, str]) -> tuple[int, int, int, str]:
    """(rows, distinct keys, duplicated keys, digest of the sorted rows) of market.daily_bars."""
    import hashlib

    cols = ["ticker", "date", "open", "high", "low", "close", "adj_close", "volume"]
    rows = _table_rows(ctx, env, "market.daily_bars", cols)
    if rows is None:
        return 0, 0, 0, ""
    rows = rows.sort_by([("ticker", "ascending"), ("date", "ascending")])
    keys = collections.Counter(
        zip(rows.column("ticker").to_pylist(), rows.column("date").to_pylist(), strict=True)
    )
    h = hashlib.sha256()
    for rec in zip(*(rows.column(c).to_pylist() for c in cols), strict=True):
        h.update(repr(rec).encode())
    return rows.num_rows, len(keys), sum(c - 1 for c in keys.values()), h.hexdigest()[:16]


@scenario("s3-outage-during-etl", "S3Proxy SIGKILLed mid-etl, restarted 5 s later; etl re-run")
def s3_outage_during_etl(ctx: Context) -> Outcome:
    out = Outcome()
    sim = ["ingest", "sim", "--seed", "7", "-t", "AAPL,MSFT,GOOGL,AMZN,NVDA,META", "--start", "2005-01-01",
           "--end", "2019-12-31"]  # fmt: skip
    _, env = ctx.s3_env("lake")
    _, ref_env = ctx.s3_env("reference")
    for e, tag in ((env, ""), (ref_env, " (reference)")):
        _run_ok(ctx, out, f"ingest sim{tag}", sim, e)
    t0 = time.monotonic()
    _run_ok(ctx, out, "etl (reference)", ["etl"], ref_env)
    ref_s = time.monotonic() - t0
    ref = _bars_digest(ctx, ref_env)
    out.rows_in = ref[0]
    out.details["reference"] = {"rows": ref[0], "digest": ref[3], "etl_s": round(ref_s, 2)}
    if not out.passed:
        return out
    etl = _Bg(ctx, ["etl", "--json"], env, "etl")
    # Kill the store about a third of the way into an ETL as long as the reference one.
    time.sleep(max(0.3, ref_s / 3))
    alive = etl.proc.poll() is None
    out.details["etl_running_at_kill"] = alive
    out.check(alive, f"etl finished in under {ref_s / 3:.1f} s, before S3 was stopped")
    _kill_service(ctx, "s3")
    time.sleep(5)
    ctx.services.restart("s3")
    rc = etl.wait(300)
    err = etl.stderr
    out.details["etl_exit"] = rc
    if rc != 0:
        proc = subprocess.CompletedProcess([], rc, etl.stdout_path.read_text(errors="replace"), err)
        _clean_failure(out, "etl during the outage", proc)
    _run_ok(ctx, out, "etl re-run", ["etl"], env)
    got = _bars_digest(ctx, env)
    out.rows_out = got[1]
    out.duplicated = got[2]
    out.lost = max(ref[0] - got[1], 0)
    out.details["after"] = {"rows": got[0], "digest": got[3]}
    out.check(got[2] == 0, f"{got[2]} key(s) twice in market.daily_bars")
    out.check(got[0] == ref[0], f"{got[0]} rows after the re-run, {ref[0]} in the uninterrupted lake")
    out.check(got[3] == ref[3], "rows differ from the uninterrupted lake")
    if out.passed:
        out.reason = "etl " + (
            "rode out the outage" if rc == 0 else f"failed cleanly (exit {rc}), re-run converged"
        )
    return out


# ---------------------------------------------------------------- the lake's own disk


def _mount_tmpfs(path: Path, size: str) -> str | None:
    """Mount a small tmpfs at ``path``; None if this host does not let us (the reason is raised)."""
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if proc.returncode != 0:
        raise OSError(f"cannot mount a tmpfs ({_last_line(proc.stderr) or proc.returncode})")
    return str(path)


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30, check=False)


def _writes_blocked(folder: Path) -> bool:
    probe = folder / ".reliability-probe"
    try:
        probe.write_bytes(b"x")
    except OSError:
        return True
    probe.unlink()
    return False


@contextlib.contextmanager
def _read_only(lake: Path) -> Iterator[str]:
    """Make ``lake`` refuse writes for the block; yields the method used.

    Raises:
        OSError: No method works here (root ignores file modes and mounting is refused).
    """
    if os.geteuid() != 0:
        subprocess.run(["chmod", "-R", "a-w", str(lake)], check=True, timeout=30)
        try:
            if not _writes_blocked(lake):
                raise OSError("chmod -R a-w did not stop writes")
            yield "chmod -R a-w"
        finally:
            subprocess.run(["chmod", "-R", "u+w", str(lake)], check=False, timeout=30)
        return
    # Root ignores file modes: lay a read-only bind mount of the lake over the lake itself.
    bind = subprocess.run(
        ["mount", "--bind", str(lake), str(lake)], capture_output=True, text=True, check=False
    )
    if bind.returncode != 0:
        raise OSError(f"running as root and cannot bind-mount the lake ({_last_line(bind.stderr)})")
    try:
        ro = subprocess.run(
            ["mount", "-o", "remount,ro,bind", str(lake)], capture_output=True, text=True, check=False
        )
        if ro.returncode != 0:
            raise OSError(f"running as root and cannot remount the bind read-only ({_last_line(ro.stderr)})")
        if not _writes_blocked(lake):
            raise OSError("the read-only bind mount did not stop writes")
        yield "read-only bind mount over the lake (running as root)"
    finally:
        # Lazy: this process may still hold the catalog database open through the bind.
        subprocess.run(["umount", "-l", str(lake)], capture_output=True, check=False)


def _fill(folder: Path) -> int:
    """Write a filler file until the filesystem is full; its size."""
    chunk = b"\0" * 65536
    size = 0
    with open(folder / "filler.bin", "wb", buffering=0) as f:
        with contextlib.suppress(OSError):
            while True:
                size += f.write(chunk)
        with contextlib.suppress(OSError):
            while True:
                size += f.write(b"\0" * 512)
    return size


def _lake_state(ctx: Context, env: dict[str, str]) -> tuple[int, int, int, str]:
    return _bars_digest(ctx, env)


def _disk_scenario(ctx: Context, kind: str) -> Outcome:
    """Shared body of lake-readonly and lake-full."""
    out = Outcome()
    use_root_fs = kind == "full"
    mnt = ctx.root / "mnt"
    mounted = False
    try:
        if use_root_fs:
            try:
                _mount_tmpfs(mnt, "12m")
                mounted = True
            except OSError as e:
                out.check(False, f"cannot run: {e}")
                return out
            lake = mnt / "lake"
        else:
            lake = ctx.root / "lake"
        lake.mkdir()
        bootstrap = ctx.services.kafka()
        env = ctx.env(lake, TICKERLAKE_BOOTSTRAP_SERVERS=bootstrap)
        _run_ok(ctx, out, "ingest sim", _SIM, env)
        _run_ok(ctx, out, "etl", ["etl"], env)
        topic = f"outage-{kind}-{os.getpid()}"
        # The stream to sink: a few days of ticks, replayed before the disk goes bad.
        _run_ok(
            ctx,
            out,
            "replay",
            [
                "stream",
                "replay",
                "--topic",
                topic,
                "--partitions",
                "2",
                "--from",
                "2020-03-01",
                "--to",
                "2020-03-31",
            ],
            env,
        )
        if not out.passed:
            return out
        before = _lake_state(ctx, env)
        out.rows_in = before[0]
        more = [
            "ingest",
            "sim",
            "--seed",
            "1",
            "-t",
            "AAPL,MSFT,NVDA",
            "--start",
            "2020-01-01",
            "--end",
            "2020-06-30",
        ]
        attempts = [
            ("ingest sim", more),
            ("etl", ["etl"]),
            ("stream sink", ["stream", "sink", "--topic", topic, "--once", "--timeout", "60"]),
        ]
        with contextlib.ExitStack() as stack:
            if kind == "readonly":
                try:
                    method = stack.enter_context(_read_only(lake))
                except OSError as e:
                    out.check(False, f"cannot make the lake read-only: {e}")
                    return out
            else:
                method = f"tmpfs filled ({_fill(mnt) // 1024} KiB filler)"
            out.details["method"] = method
            for what, args in attempts:
                proc = ctx.run(args, env, timeout=180)
                _clean_failure(out, what, proc)
            during = _lake_state(ctx, env)
            out.check(
                during == before, f"market.daily_bars changed while the lake was {kind}: {before} -> {during}"
            )
            sink_rows = _table_count(ctx, env, "stream.ticks")
            out.check(sink_rows == 0, f"stream.ticks has {sink_rows} rows from a failed sink")
        if kind == "full":
            (mnt / "filler.bin").unlink()
        # Restored: the same commands now succeed and converge.
        for what, args in attempts:
            _run_ok(ctx, out, f"{what} (restored)", args, env, timeout=240)
        after = _lake_state(ctx, env)
        ref_env = ctx.env(ctx.root / "reference")
        _run_ok(ctx, out, "ingest sim (reference)", _SIM, ref_env)
        _run_ok(ctx, out, "ingest sim (reference)", more, ref_env)
        _run_ok(ctx, out, "etl (reference)", ["etl"], ref_env)
        ref = _lake_state(ctx, ref_env)
        out.rows_out = after[1]
        out.duplicated = after[2]
        out.lost = max(ref[0] - after[1], 0)
        out.check(after[2] == 0, f"{after[2]} key(s) twice after the restored run")
        out.check(
            after[0] == ref[0] and after[3] == ref[3], f"restored lake {after[:2]} != reference {ref[:2]}"
        )
        _check_stream(ctx, out, env, bootstrap, topic, raw=True)
        if out.passed:
            out.reason = f"{method}; 3 commands refused cleanly, restored run converged"
        return out
    finally:
        if mounted:
            _umount(mnt)


@scenario("lake-readonly", "lake folder made read-only after a first ingest", short=True)
def lake_readonly(ctx: Context) -> Outcome:
    return _disk_scenario(ctx, "readonly")


@scenario("lake-full", "lake on a 12 MB filesystem filled to the last byte", short=True)
def lake_full(ctx: Context) -> Outcome:
    return _disk_scenario(ctx, "full")
