"""``stream sink --once`` after crashed members: it drains every partition or exits 1 with the lag."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import time

import pytest

from tickerlake.config import DEFAULT_TICKERS
from tickerlake.lake.catalog import load_table_or_none, open_catalog
from tickerlake.stream import _kafka
from tickerlake.stream.replay import load_bars, replay
from tickerlake.stream.sink import table_state

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _replayed(kit, prefix: str) -> tuple[str, int]:
    topic = kit.new_topic(prefix)
    _kafka.ensure_topic(_kafka.admin_client(kit.settings, kit.bootstrap), topic, 4, kit.bootstrap)
    bars = load_bars(kit.settings, list(DEFAULT_TICKERS), dt.date(2020, 1, 1), dt.date(2020, 1, 31))
    sent = replay(kit.settings, bars, topic, "ticks", bootstrap=kit.bootstrap, ticks_per_bar=300)
    assert sent.failed == 0
    return topic, sent.delivered


def _committed(kit, topic: str) -> int:
    table = load_table_or_none(open_catalog(kit.settings), "stream.ticks")
    return sum(table_state(table).for_topic(topic).values()) if table is not None else 0


def _kill_after_first_commit(kit, args: list[str], topic: str) -> None:
    before = _committed(kit, topic)
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=kit.env())
    deadline = time.monotonic() + 60
    while _committed(kit, topic) == before and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def test_once_waits_for_partitions_of_killed_dynamic_members_and_reports_lag_if_it_cannot(kit):
    topic, delivered = _replayed(kit, "once-dyn")
    common = (
        "stream",
        "sink",
        "--topic",
        topic,
        "--bootstrap-servers",
        kit.bootstrap,
        "--group",
        f"{topic}-g",
    )
    dynamic = ("--instance-id", "", "--max-records", "3000", "--max-interval", "0.2")
    for _ in range(3):
        _kill_after_first_commit(kit, kit.cli(*common, *dynamic), topic)
    left = delivered - _committed(kit, topic)
    assert left > 0

    # The dead members hold the group until their sessions expire: a short --once cannot finish.
    short = kit.run_cli(*common, *dynamic, "--once", "--timeout", "2", "--json")
    assert short.returncode == 1
    assert "not drained within 2 s" in short.stderr
    report = json.loads(short.stdout)
    assert report["complete"] is False and report["stopped_by"] == "timeout"
    assert sum(report["lag"].values()) == delivered - _committed(kit, topic) > 0
    assert sum(report["targets"].values()) == delivered

    full = kit.run_cli(*common, *dynamic, "--once", "--json")
    assert full.returncode == 0, full.stderr
    report = json.loads(full.stdout)
    assert report["complete"] is True and report["stopped_by"] == "once"
    assert sum(report["lag"].values()) == 0
    result = kit.verify_exactly_once(topic)
    assert result["produced"] == result["rows"] == delivered


def test_restarted_sink_takes_the_crashed_ones_slot_and_drains_at_once(kit):
    topic, delivered = _replayed(kit, "once-slot")
    common = (
        "stream",
        "sink",
        "--topic",
        topic,
        "--bootstrap-servers",
        kit.bootstrap,
        "--group",
        f"{topic}-g",
    )
    _kill_after_first_commit(kit, kit.cli(*common, "--max-records", "3000", "--max-interval", "0.2"), topic)
    started = time.monotonic()
    final = kit.run_cli(*common, "--once", "--json")
    took = time.monotonic() - started
    assert final.returncode == 0, final.stderr
    report = json.loads(final.stdout)
    host = socket.gethostname()
    # The same static member id as the killed sink: the broker hands its partitions over without
    # waiting for the dead session (10 s) to expire.
    assert report["instance_id"].startswith("tickerlake-") and report["instance_id"].endswith("-0")
    assert host.replace(" ", "_")[:3] in report["instance_id"]
    assert report["complete"] is True
    print(f"--once after a crash took {took:.1f} s for {report['records']:,} records")
    result = kit.verify_exactly_once(topic)
    assert result["produced"] == result["rows"] == delivered
