"""A producer written for Kafka, unchanged: the original project's row-shaped events land in stream.bars.

The original project's producer is kafka-python sending each CSV row as ``json.dumps`` of
the row (the file's own labels: ``stock symbol``, ``Date``, ``Adj Close``...), to a topic it
never creates. Before issue 14 the dev broker did not create the topic (the producer
hung for 60 s) and the sink sent all 200 records to the dead-letter topic as
``missing_field``.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess

import pytest
from kafka import KafkaProducer

from tickerlake.stream.sink import SinkOptions, run_sink

pytestmark = pytest.mark.integration


def _rows() -> list[dict[str, object]]:
    """200 CSV rows as the original producer reads them: two tickers, 100 weekdays each."""
    days = [dt.date(2022, 1, 3) + dt.timedelta(days=k) for k in range(140)]
    days = [d for d in days if d.weekday() < 5][:100]
    rows: list[dict[str, object]] = []
    for symbol, base in (("AMZN", 142.800003), ("AAPL", 171.5)):
        for k, day in enumerate(days):
            close = round(base + 0.25 * k, 6)
            rows.append(
                {
                    "Date": day.isoformat(),
                    "Open": round(close - 0.5, 6),
                    "High": round(close + 1.0, 6),
                    "Low": round(close - 1.0, 6),
                    "Close": close,
                    "Adj Close": close,
                    "Volume": 39014600 + k,
                    "stock symbol": symbol,
                }
            )
    return rows


def test_row_shaped_events_from_kafka_python_land_in_stream_bars(kit) -> None:
    topic = kit.new_topic("producer-rows")  # never created: the broker creates it on first send
    rows = _rows()
    producer = KafkaProducer(
        bootstrap_servers=kit.bootstrap,
        value_serializer=lambda v: json.dumps(v).encode("utf-8"),
        # A broker that does not create topics would block here; fail in seconds, not 60.
        max_block_ms=15_000,
    )
    try:
        for row in rows:
            producer.send(topic, row)
        producer.flush(timeout=30)
    finally:
        producer.close()

    report = run_sink(
        kit.settings,
        SinkOptions(topic=topic, mode="bars", bootstrap=kit.bootstrap, group=f"{topic}-g", once=True),
        handle_signals=False,
    )
    assert (report.accepted, report.rejected) == (200, 0)
    got = kit.sql(
        'SELECT ticker, date, "open", high, low, "close", adj_close, volume FROM stream.bars '
        "WHERE kafka_topic = ? ORDER BY ticker, date",
        [topic],
    )
    expected = sorted(
        (
            r["stock symbol"],
            dt.date.fromisoformat(str(r["Date"])),
            r["Open"],
            r["High"],
            r["Low"],
            r["Close"],
            r["Adj Close"],
            r["Volume"],
        )
        for r in rows
    )
    assert got == expected
    # The topic was created as the dev broker creates topics: with the default partitions.
    assert len(kit.ranges(topic)) == 8


def test_a_topic_field_mapping_reads_keys_no_synonym_covers(kit) -> None:
    topic = kit.new_topic("producer-mapped")
    producer = KafkaProducer(
        bootstrap_servers=kit.bootstrap,
        value_serializer=lambda v: json.dumps(v).encode(),
        max_block_ms=15_000,
    )
    try:
        for k in range(3):
            producer.send(
                topic, {"sym": "AMZN", "d": f"2022-06-0{k + 1}", "px_last": 120.5 + k, "px_vol": "1,000"}
            )
        producer.flush(timeout=30)
    finally:
        producer.close()
    result = subprocess.run(
        kit.cli(
            "stream", "sink", "--topic", topic, "--mode", "bars", "--once", "--json",
            "--bootstrap-servers", kit.bootstrap, "--group", f"{topic}-g",
            "--fields", "ticker=sym,date=d,close=px_last,volume=px_vol",
        ),
        capture_output=True, text=True, timeout=180, env=kit.env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["accepted"] == 3
    got = kit.sql(
        'SELECT ticker, date, "close", volume FROM stream.bars WHERE kafka_topic = ? ORDER BY date', [topic]
    )
    assert got == [("AMZN", dt.date(2022, 6, k + 1), 120.5 + k, 1000) for k in range(3)]
