"""kill -9 the sink process again and again during a replay: afterwards every event is in the lake exactly once."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import random
import signal
import subprocess
import threading
import time

import pytest

from tickerlake.config import DEFAULT_TICKERS
from tickerlake.lake.catalog import load_table_or_none, open_catalog
from tickerlake.stream import _kafka
from tickerlake.stream.replay import load_bars, replay
from tickerlake.stream.sink import table_state

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KILLS = 6


def test_sink_killed_repeatedly_loses_nothing_and_doubles_nothing(kit):
    topic = kit.new_topic("crash")
    bars = load_bars(kit.settings, list(DEFAULT_TICKERS), dt.date(2020, 1, 1), dt.date(2020, 2, 29))
    _kafka.ensure_topic(_kafka.admin_client(kit.settings, kit.bootstrap), topic, 8, kit.bootstrap)
    expected = bars.num_rows * 320
    assert expected >= 100_000

    # Paced so that the replay is still running while the sink is killed over and over.
    sent: dict[str, object] = {}
    replayer = threading.Thread(
        target=lambda: sent.update(
            report=replay(
                kit.settings, bars, topic, "ticks", bootstrap=kit.bootstrap, ticks_per_bar=320, rate=4000
            )
        )
    )
    replayer.start()
    common = ("--topic", topic, "--bootstrap-servers", kit.bootstrap, "--group", f"{topic}-g")
    sink = kit.cli(
        *("stream", "sink", *common, "--instance-id", "crash-sink"),
        *("--max-records", "4000", "--max-interval", "0.3", "--json"),
    )
    rng = random.Random(20200101)

    def committed() -> int:
        table = load_table_or_none(open_catalog(kit.settings), "stream.ticks")
        return sum(table_state(table).for_topic(topic).values()) if table is not None else 0

    progress = []
    try:
        for i in range(KILLS):
            before = committed()
            proc = subprocess.Popen(sink, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=kit.env())
            if i == 0:
                # Once during start-up (joining the group, reading the table's offsets)...
                time.sleep(rng.uniform(0.5, 1.5))
            else:
                # ...then at a random moment after the restarted sink committed again: mid-batch,
                # while writing raw files, during an Iceberg commit or a group-offset commit.
                deadline = time.monotonic() + 60
                while committed() == before and time.monotonic() < deadline and proc.poll() is None:
                    time.sleep(0.05)
                time.sleep(rng.uniform(0.0, 1.0))
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            assert proc.returncode == -signal.SIGKILL
            progress.append(committed())
    finally:
        replayer.join(timeout=180)
    report = sent["report"]
    assert report.delivered == expected and report.failed == 0  # type: ignore[attr-defined]
    # Every restarted sink resumed from the table and made progress before it was killed.
    assert all(b > a for a, b in itertools.pairwise(progress)), progress

    final = kit.run_cli(*("stream", "sink", *common, "--instance-id", "crash-sink"), *("--once", "--json"))
    assert final.returncode == 0, final.stderr
    last_run = json.loads(final.stdout)
    assert last_run["stopped_by"] == "once"
    print(
        f"table offsets after each kill: {progress}; last run: {last_run['records']} records, "
        f"{last_run['orphans_removed']} orphan raw files removed"
    )

    result = kit.verify_exactly_once(topic)
    assert result["produced"] == result["rows"] == expected

    # Content, not just positions: the ticks still add up to the bars' volumes.
    volumes = dict(
        kit.sql("SELECT ticker, sum(size) FROM stream.ticks WHERE kafka_topic = ? GROUP BY 1", [topic])
    )
    for ticker in DEFAULT_TICKERS:
        rows = [r for r in bars.to_pylist() if r["ticker"] == ticker]
        assert int(volumes[ticker]) == sum(r["volume"] for r in rows)

    # Group offsets follow the table (committed after each table commit, for monitoring).
    status = kit.run_cli("stream", "status", *common, "--json")
    body = json.loads(status.stdout)
    assert body["lag"] == 0
    assert all(p["group_offset"] == p["table_offset"] == p["high"] for p in body["partitions"] if p["high"])
