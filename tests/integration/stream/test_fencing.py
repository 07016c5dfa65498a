"""A sink that lost its partition (a zombie) cannot commit it: the table's offsets fence it out."""

from __future__ import annotations

import numpy as np
import pytest
from confluent_kafka import Producer

from tickerlake.config import Settings
from tickerlake.lake.catalog import open_catalog
from tickerlake.stream import _kafka
from tickerlake.stream.schema import encode_ticks
from tickerlake.stream.sink import SinkOptions, StreamSink, run_sink, table_state

pytestmark = pytest.mark.integration

T0 = 1_577_975_400_000_000


def _produce(bootstrap: str, topic: str, first_seq: int, n: int) -> None:
    ts = np.arange(first_seq, first_seq + n, dtype=np.int64) * 1_000_000 + T0
    values = encode_ticks(
        ["AAPL"] * n, ts, np.full(n, 10.5), np.full(n, 1), np.arange(first_seq, first_seq + n)
    )
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for v in values:
        producer.produce(topic, v, b"AAPL")
    assert producer.flush(30) == 0


def test_a_zombie_batch_is_fenced_and_its_raw_file_removed(kit):
    topic = kit.new_topic("fence")
    _kafka.ensure_topic(_kafka.admin_client(kit.settings, kit.bootstrap), topic, 1, kit.bootstrap)
    _produce(kit.bootstrap, topic, 0, 100)
    options = SinkOptions(topic=topic, bootstrap=kit.bootstrap, group=f"{topic}-g", once=True)
    first = run_sink(kit.settings, options, handle_signals=False)
    assert first.offsets == {0: 100}
    _produce(kit.bootstrap, topic, 100, 50)

    # The zombie believes the table is still at offset 50 (it read 50..149 before losing the partition).
    zombie = StreamSink(kit.settings, SinkOptions(topic=topic, bootstrap=kit.bootstrap, sink_id="zombie"))
    zombie._bootstrap = kit.bootstrap
    zombie._consumer = _kafka.plain_consumer(kit.settings, kit.bootstrap)
    try:
        messages = _kafka.read_range(zombie._consumer, topic, {0: (50, 150)})
        zombie.expected[0] = 50
        part = zombie._decode(0, messages)
        assert part is not None and len(part.decoded) == 100
        zombie._write_raw(part)
        assert part.raw_uri is not None and part.raw_uri.endswith(f"{topic}-0-{50:020d}-{149:020d}.jsonl")
        assert zombie._commit([part]) == []
        assert zombie.report.fenced == 100
        # It now follows the table again.
        assert zombie.expected[0] == 100
    finally:
        zombie._consumer.close()
    assert [f[:2] for f in kit.raw_ranges(topic)[0]] == [(0, 99)]

    second = run_sink(kit.settings, options, handle_signals=False)
    assert second.accepted == 50 and second.offsets == {0: 150}
    kit.verify_exactly_once(topic)


def test_old_snapshots_expire_and_the_position_survives(kit, tmp_path):
    settings = Settings(lake=str(tmp_path / "lake"), bootstrap_servers="", s3_endpoint="")
    topic = kit.new_topic("expire")
    _kafka.ensure_topic(_kafka.admin_client(settings, kit.bootstrap), topic, 1, kit.bootstrap)
    _produce(kit.bootstrap, topic, 0, 120)
    options = SinkOptions(
        topic=topic,
        bootstrap=kit.bootstrap,
        group=f"{topic}-g",
        max_records=10,
        once=True,
        keep_snapshots=4,
        known_tickers=frozenset(),
    )
    report = run_sink(settings, options, handle_signals=False)
    assert report.batches == 12 and report.accepted == 120
    table = open_catalog(settings).load_table("stream.ticks")
    assert len(table.metadata.snapshots) <= 4 * 1.1 + 5
    assert table_state(table).for_topic(topic) == {0: 120}
    _produce(kit.bootstrap, topic, 120, 5)
    again = run_sink(settings, options, handle_signals=False)
    assert again.accepted == 5
    rows = open_catalog(settings).load_table("stream.ticks").scan().to_arrow()
    assert sorted(rows.column("kafka_offset").to_pylist()) == list(range(125))
