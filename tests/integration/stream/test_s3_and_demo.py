"""The sink on an S3 lake (the dev S3Proxy server), and the demo's streaming act end to end."""

from __future__ import annotations

import numpy as np
import pytest
from confluent_kafka import Producer

from tickerlake.lake.storage import LakeStorage
from tickerlake.query import clear_engines, run_query
from tickerlake.services import S3Endpoint
from tickerlake.stream import _kafka
from tickerlake.stream.demo import MALFORMED_EVENTS, run_demo
from tickerlake.stream.schema import encode_ticks
from tickerlake.stream.sink import SinkOptions, run_sink

pytestmark = pytest.mark.integration

T0 = 1_577_975_400_000_000


@pytest.mark.slow
def test_sink_into_an_s3_lake_is_exactly_once(kit, s3_endpoint: S3Endpoint, tmp_path):
    settings = s3_endpoint.settings(lake=f"s3://{s3_endpoint.bucket}/streamlake", state_dir=str(tmp_path))
    topic = kit.new_topic("s3")
    _kafka.ensure_topic(_kafka.admin_client(settings, kit.bootstrap), topic, 2, kit.bootstrap)
    n = 3000
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
    # Any ticker-shaped symbol is accepted: this lake has no reference data.
    options = SinkOptions(
        topic=topic,
        bootstrap=kit.bootstrap,
        group=f"{topic}-g",
        max_records=700,
        once=True,
        known_tickers=frozenset(),
    )
    report = run_sink(settings, options, handle_signals=False)
    assert report.accepted == n and report.batches >= 3
    try:
        got = run_query(
            settings,
            "SELECT count(*), count(DISTINCT (kafka_partition, kafka_offset)), sum(seq) FROM stream.ticks "
            "WHERE kafka_topic = ?",
            [topic],
        ).rows()[0]
    finally:
        clear_engines()
    assert got == (n, n, n * (n - 1) // 2)
    storage = LakeStorage(settings)
    raw = storage.list_files(storage.uri("raw", "stream_ticks", f"topic={topic}"))
    assert raw and all(e.uri.startswith(f"s3://{s3_endpoint.bucket}/streamlake/raw/") for e in raw)
    assert sum(storage.read_bytes(e.uri).count(b"\n") for e in raw) == n


def test_demo_act_reconciles(kit):
    report = run_demo(
        kit.settings, ["AAPL", "MSFT", "NVDA"], 3, 50, topic=kit.new_topic("demo"), bootstrap=kit.bootstrap
    )
    assert report.tickers == ["AAPL", "MSFT", "NVDA"]
    assert (report.start, report.end) == ("2020-03-27", "2020-03-31")
    assert report.sent["events"] == 3 * 3 * 50 and report.sent["malformed"] == len(MALFORMED_EVENTS)
    assert report.arrived["table_rows"] == 450
    assert report.arrived["dead_letters"] == len(MALFORMED_EVENTS)
    assert report.arrived["reasons"] == {"invalid_price": 2, "unknown_ticker": 1, "invalid_json": 1}
    assert report.arrived["raw_files"] == 3
    assert report.bars_reproduced == report.bars_expected == 9
    assert report.reconciles
