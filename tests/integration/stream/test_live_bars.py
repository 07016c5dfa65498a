"""The live view on the real broker: its bars equal, to the cent and share, the bars SQL
computes from ``stream.ticks`` after the sink landed the same events; its reader never
touches the sink's group; the pipeline health reads both groups."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from tickerlake.config import Settings
from tickerlake.lake.contract import read_table
from tickerlake.service.live import LiveFeed, LiveOptions
from tickerlake.service.pipeline import pipeline_health
from tickerlake.stream import _kafka
from tickerlake.stream.live import LiveConfig
from tickerlake.stream.replay import load_bars, replay
from tickerlake.stream.sink import SinkOptions, run_sink

pytestmark = pytest.mark.integration

TICKERS = ["AAPL", "NVDA", "TSLA"]
DAY1, DAY2 = dt.date(2020, 3, 16), dt.date(2020, 3, 17)


def _wait(predicate, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _sql_bars(kit, topic: str, width_s: int) -> dict[tuple[str, int], tuple]:
    rows = kit.sql(
        f"""
        SELECT ticker, epoch_us(ts) // {width_s * 1_000_000} * {width_s * 1_000_000} AS start,
               arg_min(price, (ts, seq)), max(price), min(price), arg_max(price, (ts, seq)),
               sum(size), count(*), sum(price * size) / nullif(sum(size), 0)
        FROM stream.ticks WHERE kafka_topic = ? GROUP BY ALL ORDER BY ALL
        """,
        [topic],
    )
    return {(t, int(s)): (o, h, lo, c, int(v), int(n), vw) for t, s, o, h, lo, c, v, n, vw in rows}


def test_live_bars_equal_the_sql_bars_of_the_landed_ticks(kit):
    topic = kit.new_topic("live")
    bars = load_bars(kit.settings, TICKERS, DAY1, DAY2)
    sent = replay(kit.settings, bars, topic, "ticks", bootstrap=kit.bootstrap, ticks_per_bar=390, seed=5)
    assert sent.failed == 0 and sent.delivered == 2 * 3 * 390
    # Two malformed events: the live view counts them as rejected, the sink dead-letters them.
    producer = _kafka.new_producer(kit.settings, kit.bootstrap, {})
    producer.produce(topic, b"not json", b"AAPL")
    producer.produce(
        topic, b'{"ticker":"AAPL","ts":"2020-03-17T15:00:00Z","price":-1,"size":1,"seq":9999}', b"AAPL"
    )
    assert producer.flush(10) == 0

    feed = LiveFeed(
        kit.settings,
        LiveOptions(
            topic=topic,
            bootstrap=kit.bootstrap,
            start="earliest",
            group=f"{topic}-live",
            config=LiveConfig(allowed_lateness_us=0, bars_kept=1000),
        ),
    ).start()
    try:
        _wait(lambda: feed.consumer.status.records == sent.delivered + 2 and feed.status()["lag"] == 0)
        snap = feed.snapshot()
    finally:
        feed.stop()

    report = run_sink(
        kit.settings,
        SinkOptions(topic=topic, bootstrap=kit.bootstrap, group=f"{topic}-sink", once=True),
        handle_signals=False,
    )
    assert (report.accepted, report.rejected) == (sent.delivered, 2)
    kit.verify_exactly_once(topic, dlq=2)

    for width in (60, 300):
        expected = _sql_bars(kit, topic, width)
        live = {(ticker, b["t"] * 1000): b for ticker, got in snap["bars"][str(width)].items() for b in got}
        assert live.keys() == expected.keys()
        for key, b in live.items():
            o, h, lo, c, v, n, vw = expected[key]
            # To the cent and the share (the prices are the same doubles, so in fact exactly).
            for mine, theirs in ((b["o"], o), (b["h"], h), (b["l"], lo), (b["c"], c)):
                assert round(mine, 2) == round(theirs, 2) and mine == pytest.approx(theirs, abs=1e-9), key
            assert (b["v"], b["n"]) == (v, n), key
            if vw is not None:
                assert b["vwap"] == pytest.approx(vw, rel=1e-12), key
    # Every window but each ticker's last is final once the next one started.
    assert sum(not b["final"] for got in snap["bars"]["60"].values() for b in got) == len(TICKERS)

    # The session: the day's open/high/low/last are the source bar's, the change is against
    # the previous day's close in the lake.
    source = {
        r["ticker"]: r for r in read_table(kit.settings, "market.daily_bars", TICKERS, DAY2, DAY2).to_pylist()
    }
    before = {
        r["ticker"]: r["close"]
        for r in read_table(kit.settings, "market.daily_bars", TICKERS, DAY1, DAY1).to_pylist()
    }
    for q in snap["quotes"]:
        bar = source[q["ticker"]]
        assert q["day"] == DAY2.isoformat()
        assert (q["open"], q["high"], q["low"], q["last"], q["volume"]) == (
            bar["open"],
            bar["high"],
            bar["low"],
            bar["close"],
            bar["volume"],
        )
        assert q["previous_close"] == before[q["ticker"]]
        assert q["change_pct"] == pytest.approx((bar["close"] / before[q["ticker"]] - 1) * 100)
    assert (snap["status"]["events"], snap["status"]["late"], snap["status"]["rejected"]) == (
        sent.delivered,
        0,
        2,
    )
    assert sorted(r.split(":")[0] for r in snap["rejections"]) == ["invalid_json", "invalid_price"]

    # Its own group holds its positions; the sink's group is the sink's alone.
    ends = {p: hi for p, (_, hi) in kit.ranges(topic).items()}
    consumer = _kafka.plain_consumer(kit.settings, kit.bootstrap, **{"group.id": f"{topic}-live"})
    try:
        committed = _kafka.committed_offsets(consumer, topic, list(ends))
    finally:
        consumer.close()
    assert {p: o for p, o in committed.items() if ends[p]} == {p: e for p, e in ends.items() if e}

    health = pipeline_health(
        kit.settings, topic, sink_group=f"{topic}-sink", live_group=f"{topic}-live", bootstrap=kit.bootstrap
    )
    s = health.stream
    assert s.problem is None and (s.sink_lag, s.live_lag, s.records) == (0, 0, sent.delivered + 2)
    assert s.commit_age_s is not None and s.commit_age_s < 120
    assert s.dead_letters == 2
    assert sorted(d.reason.split(":")[0] for d in s.latest_dead_letters) == ["invalid_json", "invalid_price"]
    # The lake's ETL run (the fixture's) and its crawl are listed.
    assert health.etl_runs and health.etl_runs[-1].tables[0].table == "market.daily_bars"
    assert health.crawls and health.crawls[-1].tables["daily_bars"] == "new"


def test_stream_live_command_prints_the_final_state(kit):
    import json

    topic = kit.new_topic("live-cli")
    bars = load_bars(kit.settings, ["MSFT"], DAY2, DAY2)
    sent = replay(kit.settings, bars, topic, "ticks", bootstrap=kit.bootstrap, ticks_per_bar=50, seed=1)
    assert sent.delivered == 50
    done = kit.run_cli(
        "stream", "live", "--topic", topic, "--from", "earliest", "--duration", "6",
        "--bootstrap-servers", kit.bootstrap, "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    snap = json.loads(done.stdout)
    (q,) = snap["quotes"]
    bar = bars.to_pylist()[0]
    assert (q["ticker"], q["trades"], q["volume"], q["last"]) == ("MSFT", 50, bar["volume"], bar["close"])
    assert snap["status"]["events"] == 50 and snap["status"]["group"] == "tickerlake-live"
    # A reader that reconnects carries on from its positions (here: the last record of each partition).
    ends = {p: hi for p, (_, hi) in kit.ranges(topic).items() if hi}
    consumer = _kafka.plain_consumer(kit.settings, kit.bootstrap)
    try:
        _kafka.assign_from(
            consumer, topic, list(ends), "earliest", resume={p: e - 1 for p, e in ends.items()}
        )
        got: list = []
        deadline = time.monotonic() + 20
        while len(got) < len(ends) and time.monotonic() < deadline:
            got += [m for m in consumer.consume(100, timeout=0.5) if m.error() is None]
    finally:
        consumer.close()
    assert sorted((m.partition(), m.offset()) for m in got) == sorted((p, e - 1) for p, e in ends.items())
    # The sink's group is refused.
    refused = kit.run_cli("stream", "live", "--topic", topic, "--group", "tickerlake-sink", "--json")
    assert refused.returncode == 2 and "sink" in refused.stderr


def test_pipeline_health_of_a_missing_lake_says_so_and_creates_nothing(kit, tmp_path):
    topic = kit.new_topic("health-nolake")
    missing = tmp_path / "typo"
    health = pipeline_health(Settings(lake=str(missing)), topic, bootstrap=kit.bootstrap)
    assert health.problem is not None and health.problem.startswith("no lake at ")
    assert (health.crawls, health.etl_runs, health.stream.last_commit_at) == ([], [], None)
    assert not missing.exists()
