"""Malformed events on the real broker: valid ones land, bad ones reach the DLQ with reasons, counts reconcile."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from confluent_kafka import Producer

from tickerlake.lake.catalog import open_catalog
from tickerlake.stream import _kafka
from tickerlake.stream.schema import encode_ticks
from tickerlake.stream.sink import REJECTED_PROP, SinkOptions, run_sink

pytestmark = pytest.mark.integration

T0 = 1_577_975_400_000_000  # 2020-01-02T14:30:00Z


def _good(ticker: str, seconds: list[float]) -> list[bytes]:
    ts = np.array([T0 + int(s * 1e6) for s in seconds], dtype=np.int64)
    n = len(seconds)
    return encode_ticks([ticker] * n, ts, np.full(n, 100.25), np.full(n, 10), np.arange(1, n + 1))


def test_bad_events_go_to_the_dead_letter_topic_with_reasons(kit):
    topic = kit.new_topic("dlq")
    admin = _kafka.admin_client(kit.settings, kit.bootstrap)
    _kafka.ensure_topic(admin, topic, 4, kit.bootstrap)
    aapl = _good("AAPL", [float(s) for s in range(40)])
    msft = _good("MSFT", [float(s) for s in range(30)])
    # (key, value, expected reason code or None for valid), in produce order per key.
    events: list[tuple[bytes, bytes | None, str | None]] = [(b"AAPL", v, None) for v in aapl[:20]]
    events += [
        (b"AAPL", b'{"ticker": "AAPL", "ts": "2020-01-02T14:30:20Z", "price": 1', "invalid_json"),
        (b"AAPL", b'{"ticker": "AAPL", "ts": "2020-01-02T14:30:20Z", "size": 1, "seq": 1}', "missing_field"),
        (
            b"AAPL",
            b'{"ticker": "AAPL", "ts": "2020-01-02T14:30:20Z", "price": NaN, "size": 1, "seq": 1}',
            "invalid_price",
        ),
        (
            b"AAPL",
            b'{"ticker": "AAPL", "ts": "2020-01-02T14:30:20Z", "price": -3, "size": 1, "seq": 1}',
            "invalid_price",
        ),
        (
            b"AAPL",
            b'{"ticker": "AAPL", "ts": "2020-01-02T14:30:20", "price": 3, "size": 1, "seq": 1}',
            "invalid_timestamp",
        ),
        # 15 s before AAPL's latest event (14:30:19), tolerance 1 s.
        (
            b"AAPL",
            b'{"ticker": "AAPL", "ts": "2020-01-02T14:30:04Z", "price": 3, "size": 1, "seq": 1}',
            "out_of_order",
        ),
        (b"AAPL", None, "invalid_json"),
        (b"AAPL", b"\xff\xfe\x00binary", "invalid_json"),
    ]
    events += [(b"AAPL", v, None) for v in aapl[20:]]
    events += [(b"MSFT", v, None) for v in msft]
    events += [
        (
            b"ZZZZ",
            b'{"ticker": "ZZZZ", "ts": "2020-01-02T14:30:00Z", "price": 3, "size": 1, "seq": 1}',
            "unknown_ticker",
        )
    ]

    where: dict[tuple[int, int], int] = {}

    errors: list[object] = []

    def delivered(index: int):
        def report(err, msg) -> None:
            if err is not None:
                errors.append(err)
            else:
                where[(msg.partition(), msg.offset())] = index

        return report

    producer = Producer(
        {"bootstrap.servers": kit.bootstrap, "enable.idempotence": True, "partitioner": "murmur2_random"}
    )
    for i, (key, value, _) in enumerate(events):
        producer.produce(topic, value, key, on_delivery=delivered(i))
    assert producer.flush(30) == 0 and errors == []
    bad = sum(code is not None for _, _, code in events)
    good = len(events) - bad
    assert (good, bad) == (70, 9)

    # Small batches: the out-of-order check must carry its watermark across batches.
    report = run_sink(
        kit.settings,
        SinkOptions(topic=topic, bootstrap=kit.bootstrap, group=f"{topic}-g", max_records=7, once=True),
        handle_signals=False,
    )
    assert (report.records, report.accepted, report.rejected) == (len(events), good, bad)
    assert report.rejections == {
        "invalid_json": 3,
        "missing_field": 1,
        "invalid_price": 2,
        "invalid_timestamp": 1,
        "out_of_order": 1,
        "unknown_ticker": 1,
    }
    kit.verify_exactly_once(topic, dlq=bad)

    # The DLQ holds each bad record once, with its reason and source position.
    consumer = _kafka.plain_consumer(kit.settings, kit.bootstrap)
    try:
        dlq = f"{topic}.dlq"
        (low, high) = _kafka.watermarks(consumer, dlq, [0], kit.bootstrap)[0]
        letters = _kafka.read_range(consumer, dlq, {0: (low, high)})
    finally:
        consumer.close()
    assert len(letters) == bad
    seen = {}
    for m in letters:
        body = json.loads(m.value())
        headers = {k: v.decode() for k, v in m.headers()}
        src = (body["source_partition"], body["source_offset"])
        assert headers["tickerlake.reason"] == body["reason"]
        assert headers["tickerlake.source.topic"] == body["source_topic"] == topic
        assert (int(headers["tickerlake.source.partition"]), int(headers["tickerlake.source.offset"])) == src
        assert m.key().decode() == f"{topic}/{src[0]}/{src[1]}"
        index = where[src]
        key, value, code = events[index]
        assert body["reason"].split(":")[0] == code
        assert body["key"] == key.decode()
        if value is None:
            assert body["value"] is None and body["value_encoding"] == "none"
        elif body["value_encoding"] == "base64":
            assert base64.b64decode(body["value"]) == value
        else:
            assert body["value"] == value.decode()
        seen[index] = body["reason"]
    assert sorted(seen) == [i for i, (_, _, code) in enumerate(events) if code is not None]
    assert seen[25] == (
        "out_of_order: AAPL at 2020-01-02T14:30:04.000000Z is 15.000 s before its latest event (tolerance 1 s)"
    )

    # The table's history says how many were rejected: in = accepted + rejected.
    table = open_catalog(kit.settings).load_table("stream.ticks")
    rejected = sum(
        int(s.summary.get(REJECTED_PROP, 0))
        for s in table.metadata.snapshots
        if s.summary is not None and topic in (s.summary.get("tickerlake.stream.batch") or "")
    )
    assert rejected == bad
