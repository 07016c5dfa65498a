"""The streaming act of the demo: replay a slice of ticks through Kafka into the lake and show what arrived.

:func:`run_demo` starts the dev broker if needed, replays the last few trading days of a
few tickers as ticks (plus a handful of deliberately malformed events), runs the sink until
the slice has landed, and reports what was sent next to what arrived: table rows, raw
files, dead letters with their reasons, and whether the ticks add back up to the daily bars.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tickerlake.config import Settings
from tickerlake.errors import TickerlakeError
from tickerlake.stream import _kafka

__all__ = ["DEMO_GROUP", "DEMO_TOPIC", "MALFORMED_EVENTS", "DemoReport", "run_demo"]

#: Prefix of the demo's topics: each run gets its own (``demo.ticks.<UTC time>``), since
#: replaying the same slice into a topic the sink has seen would be out of order.
DEMO_TOPIC = "demo.ticks"
DEMO_GROUP = "tickerlake-demo"

#: Events the demo slips into the stream to show the dead-letter path: (key, value).
MALFORMED_EVENTS: tuple[tuple[bytes, bytes], ...] = (
    (b"AAPL", b'{"ticker": "AAPL", "ts": "2023-12-11T15:00:00Z", "price": NaN, "size": 100, "seq": 0}'),
    (b"ZZZZ", b'{"ticker": "ZZZZ", "ts": "2023-12-11T15:00:00Z", "price": 10.0, "size": 100, "seq": 0}'),
    (b"MSFT", b'{"ticker": "MSFT", "ts": "2023-12-11T15:00:00Z", "price": 370.1, "size": 100'),
    (b"NVDA", b'{"ticker": "NVDA", "ts": "2023-12-11T15:00:00Z", "price": -1, "size": 100, "seq": 0}'),
)


@dataclass
class DemoReport:
    """Sent vs arrived.

    Attributes:
        topic: Topic used.
        bootstrap_servers: Cluster address.
        services_started: Whether the demo started the dev broker.
        tickers: Tickers replayed.
        start: First day of the slice.
        end: Last day of the slice.
        sent: Events replayed, malformed events, total, per ticker, replay rate.
        arrived: Sink counts, table rows and raw files of the slice, dead letters and reasons.
        bars_reproduced: Daily bars rebuilt from the ticks in SQL that equal the source bars.
        bars_expected: Daily bars in the slice.
        reconciles: Whether sent == table rows + dead letters.
        seconds: Wall-clock time of the act.
    """

    topic: str
    bootstrap_servers: str
    services_started: bool
    tickers: list[str]
    start: str
    end: str
    sent: dict[str, Any] = field(default_factory=dict)
    arrived: dict[str, Any] = field(default_factory=dict)
    bars_reproduced: int = 0
    bars_expected: int = 0
    reconciles: bool = False
    seconds: float = 0.0


def _bootstrap(settings: Settings, bootstrap: str | None) -> tuple[str, bool]:
    if bootstrap or settings.bootstrap_servers.strip():
        return _kafka.resolve_bootstrap(settings, bootstrap), False
    from tickerlake.services import up

    (kafka,) = up(settings, only="kafka")
    assert kafka.endpoint is not None
    return kafka.endpoint, kafka.action == "started"


def _slice(settings: Settings, tickers: Sequence[str] | None, days: int) -> Any:
    from tickerlake.lake.contract import read_bars

    bars = read_bars(settings, columns=("ticker", "date"))
    if bars.num_rows == 0:
        raise TickerlakeError(
            "market.daily_bars is empty: run `tickerlake ingest sim` and `tickerlake etl` first"
        )
    present = sorted(set(bars.column("ticker").to_pylist()))
    wanted = [t for t in (tickers or ("AAPL", "MSFT", "NVDA")) if t in present] or present[:3]
    dates = sorted(
        {
            d
            for t, d in zip(*(bars.column(c).to_pylist() for c in ("ticker", "date")), strict=True)
            if t in wanted
        }
    )
    chosen = dates[-days:]
    return wanted, chosen[0], chosen[-1]


def run_demo(
    settings: Settings,
    tickers: Sequence[str] | None = None,
    days: int = 5,
    ticks_per_bar: int = 390,
    topic: str | None = None,
    bootstrap: str | None = None,
    malformed: bool = True,
    on_step: Callable[[str], None] | None = None,
) -> DemoReport:
    """Replay a slice of ticks through Kafka into ``stream.ticks`` and compare both ends.

    Args:
        settings: Runtime settings; the lake must hold ``market.daily_bars``.
        tickers: Tickers to replay (default AAPL, MSFT, NVDA, or the first three in the lake).
        days: Trading days in the slice (the latest ones).
        ticks_per_bar: Trades per daily bar.
        topic: Topic (default: a new ``demo.ticks.<UTC time>`` per run).
        bootstrap: Kafka address (default: settings, else the dev broker, started if needed).
        malformed: Also send :data:`MALFORMED_EVENTS` to show the dead-letter path.
        on_step: Called with a short description of each step.

    Returns:
        What was sent and what arrived.
    """
    from confluent_kafka import Producer

    from tickerlake.query.engine import get_engine
    from tickerlake.stream.replay import load_bars, producer_config, replay
    from tickerlake.stream.sink import MODES, SinkOptions, raw_file_name, run_sink

    step = on_step or (lambda _s: None)
    t0 = time.monotonic()
    topic = topic or f"{DEMO_TOPIC}.{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}"
    step("starting Kafka")
    address, started = _bootstrap(settings, bootstrap)
    wanted, start, end = _slice(settings, tickers, days)
    bars = load_bars(settings, wanted, start, end)
    report = DemoReport(
        topic, address, started, list(wanted), str(start), str(end), bars_expected=bars.num_rows
    )

    step(f"replaying {len(wanted)} tickers, {start} to {end}, as ticks")
    sent = replay(settings, bars, topic, "ticks", bootstrap=address, ticks_per_bar=ticks_per_bar)
    if sent.failed:
        raise TickerlakeError(f"{sent.failed} events were not delivered: {'; '.join(sent.errors[:2])}")
    bad = 0
    if malformed:
        producer = Producer(producer_config(settings, address, paced=True))
        for key, value in MALFORMED_EVENTS:
            producer.produce(topic, value, key)
            bad += 1
        if producer.flush(30):
            raise TickerlakeError("the malformed demo events were not delivered")
    admin = _kafka.admin_client(settings, address)
    parts = _kafka.topic_partitions(admin, topic, address) or []
    inspector = _kafka.plain_consumer(settings, address)
    dlq = f"{topic}.dlq"
    try:
        after = {p: hi for p, (_, hi) in _kafka.watermarks(inspector, topic, parts, address).items()}
        dlq_parts = _kafka.topic_partitions(admin, dlq, address)
        dlq_before = (
            {p: hi for p, (_, hi) in _kafka.watermarks(inspector, dlq, dlq_parts, address).items()}
            if dlq_parts
            else {}
        )
        report.sent = {
            "events": sent.delivered,
            "malformed": bad,
            "total": sent.delivered + bad,
            "by_ticker": sent.by_ticker,
            "first_event": sent.first_event,
            "last_event": sent.last_event,
            "events_per_s": sent.events_per_s,
        }

        step("sinking into stream.ticks")
        sunk = run_sink(
            settings,
            SinkOptions(topic=topic, group=DEMO_GROUP, bootstrap=address, once=True),
            handle_signals=False,
        )
        before = sent.offsets_before
        cases = (
            " ".join(f"WHEN {p} THEN kafka_offset >= {before.get(p, 0)}" for p in parts)
            or "WHEN -1 THEN false"
        )
        engine = get_engine(settings)
        engine.refresh(force=True)
        rows = engine.query(
            f"SELECT count(*) FROM stream.ticks WHERE kafka_topic = ? AND (CASE kafka_partition {cases} ELSE false END)",
            [topic],
        ).rows()[0][0]
        lo, hi = dt.datetime.combine(start, dt.time()), dt.datetime.combine(end, dt.time(23, 59, 59))
        reproduced = engine.query(
            f"""
            WITH t AS (
                SELECT ticker, CAST(ts AS DATE) AS day,
                       arg_min(price, (ts, seq)) AS o, max(price) AS h, min(price) AS l,
                       arg_max(price, (ts, seq)) AS c, sum(size) AS v
                FROM stream.ticks
                WHERE kafka_topic = ? AND (CASE kafka_partition {cases} ELSE false END)
                GROUP BY ALL
            )
            SELECT count(*) FROM t JOIN market.daily_bars b ON b.ticker = t.ticker AND b.date = t.day
            WHERE b.date BETWEEN ? AND ? AND b.open = t.o AND b.high = t.h AND b.low = t.l
              AND b.close = t.c AND b.volume = t.v
            """,
            [topic, lo.date(), hi.date()],
        ).rows()[0][0]
        report.bars_reproduced = int(reproduced)
        from tickerlake.lake.contract import LakeLayout

        layout = LakeLayout.of(settings)
        raw_files = 0
        for p in parts:
            folder = layout.stream_partition(MODES["ticks"].dataset, topic, p)
            for entry in layout.storage.list_files(folder):
                name = entry.uri.rsplit("/", 1)[-1]
                if name.startswith(f"{topic}-{p}-") and name >= raw_file_name(topic, p, before.get(p, 0), 0):
                    raw_files += 1
        dlq_parts = _kafka.topic_partitions(admin, dlq, address) or []
        dlq_after = {p: hi for p, (_, hi) in _kafka.watermarks(inspector, dlq, dlq_parts, address).items()}
        letters = _kafka.read_range(
            inspector, dlq, {p: (dlq_before.get(p, 0), h) for p, h in dlq_after.items()}
        )
        reasons: dict[str, int] = {}
        examples = []
        for m in letters:
            letter = m.value()
            if letter is None:  # not a dead letter of the sink, which always writes a body
                continue
            body = json.loads(letter)
            code = body["reason"].split(":", 1)[0]
            reasons[code] = reasons.get(code, 0) + 1
            examples.append(
                {
                    "partition": body["source_partition"],
                    "offset": body["source_offset"],
                    "reason": body["reason"],
                }
            )
        report.arrived = {
            "read": sunk.records,
            "accepted": sunk.accepted,
            "table_rows": int(rows),
            "raw_files": raw_files,
            "dead_letters": len(letters),
            "reasons": reasons,
            "examples": examples[:10],
            "batches": sunk.batches,
            "topic_offsets": after,
        }
        report.reconciles = report.sent["total"] == int(rows) + len(letters)
    finally:
        inspector.close()
    report.seconds = round(time.monotonic() - t0, 2)
    return report
