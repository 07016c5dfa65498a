"""Replay → real Kafka → sink → lake: the ticks add back up to the source daily bars, exactly."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from tickerlake.cli import app
from tickerlake.lake.catalog import open_catalog
from tickerlake.lake.contract import read_table
from tickerlake.stream.replay import load_bars, replay
from tickerlake.stream.sink import OFFSETS_PROP, SinkOptions, raw_file_name, run_sink, table_state

pytestmark = pytest.mark.integration

TICKERS = ["AAPL", "MSFT", "NVDA"]
JAN, FEB_END = dt.date(2020, 1, 1), dt.date(2020, 2, 29)


def test_ticks_aggregate_back_to_the_daily_bars_exactly(kit):
    topic = kit.new_topic("roundtrip")
    bars = load_bars(kit.settings, TICKERS, JAN, FEB_END)
    sent = replay(kit.settings, bars, topic, "ticks", bootstrap=kit.bootstrap, ticks_per_bar=390, seed=11)
    assert sent.failed == 0 and sent.stopped is False
    assert sent.delivered == bars.num_rows * 390 == 3 * 40 * 390
    assert sent.topic_created and sent.partitions == 8

    report = run_sink(
        kit.settings,
        SinkOptions(topic=topic, bootstrap=kit.bootstrap, group=f"{topic}-g", once=True),
        handle_signals=False,
    )
    assert report.stopped_by == "once" and report.offset_gaps == 0
    assert (report.records, report.accepted, report.rejected) == (sent.delivered, sent.delivered, 0)
    kit.verify_exactly_once(topic)

    rebuilt = kit.sql(
        """
        SELECT ticker, CAST(ts AS DATE) AS day,
               arg_min(price, (ts, seq)), max(price), min(price), arg_max(price, (ts, seq)), sum(size)
        FROM stream.ticks WHERE kafka_topic = ?
        GROUP BY ALL ORDER BY ALL
        """,
        [topic],
    )
    source = read_table(kit.settings, "market.daily_bars", TICKERS, JAN, FEB_END)
    expected = [
        (r["ticker"], r["date"], r["open"], r["high"], r["low"], r["close"], r["volume"])
        for r in source.to_pylist()
    ]
    assert [(t, d, o, h, lo, c, int(v)) for t, d, o, h, lo, c, v in rebuilt] == expected

    # Every tick lies inside the regular session (14:30-21:00 UTC in winter).
    first, last = kit.sql(
        "SELECT min(strftime(ts, '%H:%M:%S')), max(strftime(ts, '%H:%M:%S')) FROM stream.ticks WHERE kafka_topic = ?",
        [topic],
    )[0]
    assert first == "14:30:00" and last < "21:00:00"

    # The snapshot summary carries the offsets, equal to the topic's log end.
    table = open_catalog(kit.settings).load_table("stream.ticks")
    state = table_state(table)
    ends = {p: high for p, (_, high) in kit.ranges(topic).items() if high}
    assert state.for_topic(topic) == ends
    assert (
        json.loads(table.current_snapshot().summary[OFFSETS_PROP])[f"{topic}/{min(ends)}"] == ends[min(ends)]
    )

    # Raw files: one per partition (one batch), deterministic names.
    raw = kit.raw_ranges(topic)
    assert {p: [(f, la) for f, la, _ in files] for p, files in raw.items()} == {
        p: [(0, e - 1)] for p, e in ends.items()
    }
    assert raw_file_name(topic, 3, 0, 15599) == f"{topic}-3-00000000000000000000-00000000000000015599.jsonl"

    # A second run finds nothing new: no duplicates, no new snapshot.
    snapshots = len(table.metadata.snapshots)
    again = run_sink(
        kit.settings,
        SinkOptions(topic=topic, bootstrap=kit.bootstrap, group=f"{topic}-g2", once=True),
        handle_signals=False,
    )
    assert again.records == 0 and again.batches == 0
    assert len(open_catalog(kit.settings).load_table("stream.ticks").metadata.snapshots) == snapshots
    kit.verify_exactly_once(topic)


def test_bars_mode_lands_in_stream_bars(kit):
    topic = kit.new_topic("bars")
    bars = load_bars(kit.settings, ["AAPL", "TSLA"], dt.date(2020, 3, 1), dt.date(2020, 3, 31))
    sent = replay(kit.settings, bars, topic, "bars", bootstrap=kit.bootstrap, rate=2000)
    assert sent.delivered == bars.num_rows == 44
    report = run_sink(
        kit.settings,
        SinkOptions(topic=topic, mode="bars", bootstrap=kit.bootstrap, group=f"{topic}-g", once=True),
        handle_signals=False,
    )
    assert report.accepted == 44 and report.table == "stream.bars"
    got = kit.sql(
        'SELECT ticker, date, "open", high, low, "close", volume FROM stream.bars WHERE kafka_topic = ? ORDER BY ALL',
        [topic],
    )
    expected = [
        (r["ticker"], r["date"], r["open"], r["high"], r["low"], r["close"], r["volume"])
        for r in bars.to_pylist()
    ]
    assert got == sorted(expected)
    assert sum(lines for files in kit.raw_ranges(topic, "stream_bars").values() for *_, lines in files) == 44


def test_cli_status_and_topics_report_lag(kit):
    topic = kit.new_topic("status")
    bars = load_bars(kit.settings, ["META"], dt.date(2020, 1, 2), dt.date(2020, 1, 3))
    replay(kit.settings, bars, topic, "ticks", bootstrap=kit.bootstrap, ticks_per_bar=10, partitions=2)
    runner = CliRunner()
    args = ["--lake", kit.settings.lake, "stream"]
    status = runner.invoke(
        app, [*args, "status", "--topic", topic, "--bootstrap-servers", kit.bootstrap, "--json"]
    )
    assert status.exit_code == 0, status.output
    body = json.loads(status.output)
    assert body["lag"] == 20 and body["dead_letters"] is None
    assert sorted((p["partition"], p["table_offset"]) for p in body["partitions"]) == [(0, None), (1, None)]

    sink = runner.invoke(
        app,
        [
            *args,
            "sink",
            "--topic",
            topic,
            "--bootstrap-servers",
            kit.bootstrap,
            "--once",
            "--json",
        ],
    )
    assert sink.exit_code == 0, sink.output
    assert json.loads(sink.output)["accepted"] == 20
    body = json.loads(
        runner.invoke(
            app, [*args, "status", "--topic", topic, "--bootstrap-servers", kit.bootstrap, "--json"]
        ).output
    )
    assert body["lag"] == 0 and body["dead_letters"] == 0
    written = [p for p in body["partitions"] if p["high"]]
    assert all(p["table_offset"] == p["high"] == p["group_offset"] for p in written)

    topics = json.loads(
        runner.invoke(app, [*args, "topics", "--bootstrap-servers", kit.bootstrap, "--json"]).output
    )
    listed = {t["topic"]: t for t in topics["topics"]}
    assert listed[topic]["partitions"] == 2 and listed[topic]["messages"] == 20


def test_cli_errors_are_one_line(kit):
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "--lake",
            kit.settings.lake,
            "stream",
            "sink",
            "--topic",
            "no-such-topic",
            "--bootstrap-servers",
            kit.bootstrap,
        ],
    )
    assert result.exit_code == 3  # a missing topic is not found (tickerlake.errors.NotFoundError)
    assert "topic 'no-such-topic' does not exist" in result.output
    result = runner.invoke(app, ["--lake", kit.settings.lake, "stream", "replay", "--speed", "fast"])
    assert result.exit_code == 2 and "--speed" in result.output
