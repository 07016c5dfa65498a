"""``maintain`` runs over and over while a real sink commits: every event is still in the
table exactly once and in the raw zone once, and the sink's own periodic maintenance runs."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import threading
import time

import pytest

from tickerlake.config import DEFAULT_TICKERS
from tickerlake.lake.catalog import ensure_table, open_catalog
from tickerlake.lake.maintain import MaintainOptions, maintain
from tickerlake.stream import _kafka
from tickerlake.stream.replay import load_bars, replay
from tickerlake.stream.sink import table_state

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_maintain_while_a_sink_commits_keeps_every_event_once(kit):
    topic = kit.new_topic("maint")
    ensure_table(
        open_catalog(kit.settings), "stream.ticks"
    )  # maintain needs it before the sink's first commit
    _kafka.ensure_topic(_kafka.admin_client(kit.settings, kit.bootstrap), topic, 4, kit.bootstrap)
    sink = subprocess.Popen(
        kit.cli(
            *("stream", "sink", "--topic", topic, "--bootstrap-servers", kit.bootstrap),
            *("--max-records", "2000", "--max-interval", "0.3", "--maintain-every", "1", "--json"),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=kit.env(),
    )
    stop = threading.Event()
    runs: list = []
    errors: list[BaseException] = []

    def maintain_loop() -> None:
        # Aggressive: every snapshot but the current expires at once; unreferenced files go
        # after 30 s (a sink's written-but-uncommitted file is younger than that).
        options = MaintainOptions(retain_s=0.0, orphan_age_s=30.0)
        while not stop.is_set():
            try:
                runs.extend(maintain(kit.settings, ["stream.ticks"], options))
            except BaseException as e:
                errors.append(e)
                return
            time.sleep(0.2)

    worker = threading.Thread(target=maintain_loop)
    try:
        bars = load_bars(kit.settings, list(DEFAULT_TICKERS), dt.date(2020, 3, 2), dt.date(2020, 3, 31))
        worker.start()
        sent = replay(
            kit.settings, bars, topic, "ticks", bootstrap=kit.bootstrap, ticks_per_bar=200, rate=5000
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            table = open_catalog(kit.settings).load_table("stream.ticks")
            if sum(table_state(table).for_topic(topic).values()) >= sent.delivered:
                break
            time.sleep(0.3)
        time.sleep(1.5)  # one more periodic run of the sink's own maintenance
        sink.send_signal(signal.SIGTERM)
        out, err = sink.communicate(timeout=120)
    finally:
        stop.set()
        worker.join(timeout=120)
        if sink.poll() is None:
            sink.kill()
    assert not errors, errors
    assert sink.returncode == 0, err[-2000:]
    report = json.loads(out)
    assert sent.delivered == bars.num_rows * 200 == report["records"]
    assert report["batches"] >= 5 and report["maintain_runs"] >= 1 and report["maintain_errors"] == 0
    compactions = [r for r in runs if r.files_rewritten]
    assert compactions, [(r.files_before, r.files_rewritten, r.commit_retries) for r in runs]
    kit.verify_exactly_once(topic)
    # The position survived the maintenance commits and expiry: a restarted sink resumes at the end.
    table = open_catalog(kit.settings).load_table("stream.ticks")
    assert table_state(table).for_topic(topic) == {p: high for p, (_, high) in kit.ranges(topic).items()}
