"""Two sink processes in one consumer group split the partitions and together land every event once."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import time

import pytest
from confluent_kafka import KafkaException

from tickerlake.config import DEFAULT_TICKERS
from tickerlake.lake.catalog import open_catalog
from tickerlake.stream import _kafka
from tickerlake.stream.replay import load_bars, replay
from tickerlake.stream.sink import SINK_PROP, table_state

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _wait_for_members(kit, group: str, procs: list[subprocess.Popen[str]], timeout_s: float = 60) -> None:
    """Until both sinks are in the group with partitions assigned (start-up and the rebalance take a few s)."""
    admin = _kafka.admin_client(kit.settings, kit.bootstrap)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert all(p.poll() is None for p in procs), "a sink exited early"
        try:
            described = admin.describe_consumer_groups([group])[group].result(timeout=10)
        except KafkaException:  # the group's coordinator is still being set up
            time.sleep(0.2)
            continue
        members = [m for m in described.members if m.assignment and m.assignment.topic_partitions]
        if len(members) == 2 and sum(len(m.assignment.topic_partitions) for m in members) == 8:
            return
        time.sleep(0.2)
    raise AssertionError("the two sinks did not both get partitions")


def test_two_sinks_share_the_partitions_exactly_once(kit):
    topic = kit.new_topic("pair")
    _kafka.ensure_topic(_kafka.admin_client(kit.settings, kit.bootstrap), topic, 8, kit.bootstrap)
    group = f"{topic}-g"
    args = kit.cli(
        *("stream", "sink", "--topic", topic, "--bootstrap-servers", kit.bootstrap, "--group", group),
        *("--max-records", "5000", "--max-interval", "0.3", "--json"),
    )
    procs = [
        subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=kit.env())
        for _ in range(2)
    ]
    try:
        _wait_for_members(kit, group, procs)
        bars = load_bars(kit.settings, list(DEFAULT_TICKERS), dt.date(2020, 3, 2), dt.date(2020, 3, 31))
        # Paced, so both members are in the group while records keep arriving.
        sent = replay(
            kit.settings, bars, topic, "ticks", bootstrap=kit.bootstrap, ticks_per_bar=200, rate=5000
        )
        # Long-running members (``--once`` would stop at the empty topic's end seen at start):
        # stopped with SIGTERM once the table holds everything, each committing its open batch.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            table = open_catalog(kit.settings).load_table("stream.ticks")
            if sum(table_state(table).for_topic(topic).values()) >= sent.delivered:
                break
            time.sleep(0.3)
        for p in procs:
            p.send_signal(signal.SIGTERM)
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert sent.delivered == bars.num_rows * 200
    reports = []
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
        reports.append(json.loads(out))
    a, b = reports
    assert a["sink_id"] != b["sink_id"]
    # Both did part of the work, on different partitions (a partition moves at most once, on the first
    # member's exit, and only after its records were committed).
    assert a["accepted"] > 0 and b["accepted"] > 0
    if a["accepted"] + b["accepted"] != sent.delivered:
        table = open_catalog(kit.settings).load_table("stream.ticks")
        for s in table.metadata.snapshots:
            if s.summary is not None and topic in (s.summary.get("tickerlake.stream.batch") or ""):
                print(s.summary.get(SINK_PROP), s.summary.get("tickerlake.stream.batch"), s.timestamp_ms)
        print(
            kit.sql(
                "select kafka_partition, kafka_offset, count(*) from stream.ticks where kafka_topic = ? group by all having count(*) > 1",
                [topic],
            )
        )
        print(a, b, outputs[0][1][-3000:], outputs[1][1][-3000:])
    assert a["accepted"] + b["accepted"] == sent.delivered
    written = {p for p, (_, high) in kit.ranges(topic).items() if high}
    assert set(a["partitions"]) | set(b["partitions"]) == written
    kit.verify_exactly_once(topic)

    table = open_catalog(kit.settings).load_table("stream.ticks")
    writers = {
        s.summary.get(SINK_PROP)
        for s in table.metadata.snapshots
        if s.summary is not None and topic in (s.summary.get("tickerlake.stream.batch") or "")
    }
    assert writers == {a["sink_id"], b["sink_id"]}
