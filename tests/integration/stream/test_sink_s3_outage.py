"""The sink rides out a frozen S3 store: it backs off, retries, and still writes every record once."""

from __future__ import annotations

import os
import signal
import threading

import numpy as np
import pytest
from confluent_kafka import Producer

from tickerlake.config import Settings
from tickerlake.lake.storage import LakeStorage
from tickerlake.query import clear_engines, run_query
from tickerlake.services import S3Endpoint, status
from tickerlake.stream import _kafka
from tickerlake.stream.schema import encode_ticks
from tickerlake.stream.sink import SinkOptions, run_sink

pytestmark = pytest.mark.integration

T0 = 1_577_975_400_000_000


@pytest.mark.slow
def test_sink_rides_out_a_frozen_s3_store(
    kit, services_settings: Settings, s3_endpoint: S3Endpoint, tmp_path
):
    settings = s3_endpoint.settings(
        lake=f"s3://{s3_endpoint.bucket}/frozen-{tmp_path.name}", state_dir=str(tmp_path)
    )
    topic = kit.new_topic("s3-frozen")
    _kafka.ensure_topic(_kafka.admin_client(settings, kit.bootstrap), topic, 2, kit.bootstrap)
    n = 4000
    ts = T0 + np.arange(n, dtype=np.int64) * 1000
    tickers = ["AAPL" if i % 3 else "MSFT" for i in range(n)]
    producer = Producer({"bootstrap.servers": kit.bootstrap, "enable.idempotence": True})
    for t, v in zip(
        tickers,
        encode_ticks(tickers, ts, np.full(n, 12.5), np.ones(n, dtype=np.int64), np.arange(n)),
        strict=True,
    ):
        producer.produce(topic, v, t.encode())
    assert producer.flush(30) == 0
    (s3,) = status(services_settings, only="s3")
    assert s3.pid is not None
    first_commit = threading.Event()
    # Small batches: the store freezes between and inside many commits.
    options = SinkOptions(
        topic=topic,
        bootstrap=kit.bootstrap,
        group=f"{topic}-g",
        max_records=100,
        max_interval_s=0.1,
        once=True,
        once_timeout_s=240,
        known_tickers=frozenset(),
    )
    result: dict[str, object] = {}

    def sink() -> None:
        try:
            result["report"] = run_sink(
                settings,
                options,
                on_commit=lambda r: first_commit.set() if r.batches else None,
                handle_signals=False,
            )
        except BaseException as e:  # reported by the assertion below
            result["error"] = e

    worker = threading.Thread(target=sink)
    worker.start()
    try:
        assert first_commit.wait(120)
        os.kill(s3.pid, signal.SIGSTOP)
        worker.join(8)  # the store stays frozen for 8 s (or until the sink gives up)
    finally:
        os.kill(s3.pid, signal.SIGCONT)
    worker.join(300)
    assert "error" not in result, f"the sink gave up: {result.get('error')}"
    report = result["report"]
    assert report.complete and report.accepted == n
    try:
        got = run_query(
            settings,
            "SELECT count(*), count(DISTINCT (kafka_partition, kafka_offset)), sum(seq) FROM stream.ticks",
        ).rows()[0]
    finally:
        clear_engines()
    assert got == (n, n, n * (n - 1) // 2)
    storage = LakeStorage(settings)
    lines = sum(
        len(storage.read_bytes(f.uri).splitlines())
        for f in storage.list_files(storage.uri("raw", "stream_ticks", f"topic={topic}"))
    )
    assert lines == n
