"""A sink group under churn: three sinks on a 12-partition topic, one SIGKILLed mid-replay and a
fourth added; afterwards every one of > 500,000 events is in the table once and in the raw zone once."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import threading
import time

import pytest
from confluent_kafka import KafkaException

from tickerlake.config import DEFAULT_TICKERS
from tickerlake.lake.catalog import open_catalog
from tickerlake.stream import _kafka
from tickerlake.stream.replay import load_bars, replay, ticker_partition
from tickerlake.stream.sink import table_state

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PARTITIONS = 12
TICKS_PER_BAR = 1024


def _members(kit, group: str) -> list[int]:
    """Partitions held by each member of the group that holds any (empty while it rebalances)."""
    admin = _kafka.admin_client(kit.settings, kit.bootstrap)
    try:
        described = admin.describe_consumer_groups([group])[group].result(timeout=10)
    except KafkaException:
        return []
    return [
        len(m.assignment.topic_partitions)
        for m in described.members
        if m.assignment and m.assignment.topic_partitions
    ]


def _wait_for(
    kit, group: str, members: int, procs: list[subprocess.Popen[str]], timeout_s: float = 90
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert all(p.poll() is None for p in procs), "a sink exited early"
        held = _members(kit, group)
        if len(held) == members and sum(held) == PARTITIONS:
            return
        time.sleep(0.2)
    raise AssertionError(f"the group did not settle on {members} members: {_members(kit, group)}")


def test_three_sinks_a_kill_and_a_join_keep_every_event_once(kit):
    topic = kit.new_topic("churn")
    _kafka.ensure_topic(_kafka.admin_client(kit.settings, kit.bootstrap), topic, PARTITIONS, kit.bootstrap)
    group = f"{topic}-g"
    args = kit.cli(
        *("stream", "sink", "--topic", topic, "--bootstrap-servers", kit.bootstrap, "--group", group),
        *("--max-records", "50000", "--max-interval", "0.5", "--json"),
    )

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=kit.env()
        )

    procs = [start() for _ in range(3)]
    replayer: threading.Thread | None = None
    try:
        _wait_for(kit, group, 3, procs)
        bars = load_bars(kit.settings, list(DEFAULT_TICKERS), dt.date(2020, 1, 1), dt.date(2020, 3, 31))
        expected = bars.num_rows * TICKS_PER_BAR
        assert expected >= 500_000
        sent: dict = {}
        replayer = threading.Thread(
            target=lambda: sent.update(
                report=replay(
                    kit.settings,
                    bars,
                    topic,
                    "ticks",
                    bootstrap=kit.bootstrap,
                    ticks_per_bar=TICKS_PER_BAR,
                    rate=40_000,
                )
            )
        )
        replayer.start()
        time.sleep(4)
        victim = procs[1]
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        assert victim.returncode == -signal.SIGKILL
        time.sleep(1)
        procs.append(start())
        replayer.join(timeout=300)
        report = sent["report"]
        assert report.delivered == expected and report.failed == 0
        # Each default ticker went to its own partition: 8 of the 12 carry 1/8 of the events each.
        per_partition = {p: high - low for p, (low, high) in kit.ranges(topic).items() if high > low}
        assert sorted(per_partition) == sorted(ticker_partition(t, PARTITIONS) for t in DEFAULT_TICKERS)
        assert set(per_partition.values()) == {expected // 8}
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            table = open_catalog(kit.settings).load_table("stream.ticks")
            if sum(table_state(table).for_topic(topic).values()) >= expected:
                break
            assert all(p.poll() is None for p in procs if p is not victim), "a sink exited"
            time.sleep(0.5)
        survivors = [p for p in procs if p is not victim]
        for p in survivors:
            p.send_signal(signal.SIGTERM)
        outputs = [p.communicate(timeout=120) for p in survivors]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        if replayer is not None:
            replayer.join(timeout=60)
    reports = []
    for p, (out, err) in zip(survivors, outputs, strict=True):
        assert p.returncode == 0, err[-2000:]
        reports.append(json.loads(out))
    # The fourth sink took over work: it committed records too.
    assert reports[-1]["accepted"] > 0
    verified = kit.verify_exactly_once(topic)
    assert verified["rows"] == expected
