"""``stream replay``: publish daily bars, or intraday ticks synthesized from them, to Kafka.

The producer is idempotent with ``acks=all`` (no duplicates or reordering on retries),
compresses batches, keys every event by ticker and lingers a little so that batches fill
up. Each ticker's events go to one partition, so their order holds: the default tickers
are spread evenly over the partitions (:func:`ticker_partition`; hashing eight keys onto
eight partitions leaves some empty and others doubled), any other ticker goes where
murmur2 of its key sends it, like the Java client.

Pacing:

* bars: ``rate`` events per second (None: as fast as possible), in (date, ticker) order;
* ticks: a simulated market clock at ``speed`` times real time (None: as fast as
  possible). Only session time counts: the clock jumps from one day's 16:00 to the next
  day's 09:30, so ``--speed 60`` plays a 6.5-hour session in 6.5 minutes. ``rate`` may be
  given instead to emit a fixed number of ticks per second.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from tickerlake.config import DEFAULT_TICKERS, Settings
from tickerlake.errors import InputFileError, NotFoundError, UserError
from tickerlake.stream import _kafka
from tickerlake.stream.schema import encode_bars, encode_ticks
from tickerlake.stream.ticks import DEFAULT_TICKS_PER_BAR, SESSION_US, bars_to_ticks, session_open_us

__all__ = [
    "COMPRESSIONS",
    "DEFAULT_PARTITIONS",
    "DEFAULT_TOPIC",
    "MODES",
    "ReplayReport",
    "load_bars",
    "producer_config",
    "replay",
    "ticker_partition",
]

DEFAULT_TOPIC = "ticks"
DEFAULT_PARTITIONS = 8
MODES = ("ticks", "bars")
COMPRESSIONS = ("lz4", "zstd", "snappy", "gzip", "none")
# Ticks are synthesized in chunks of about this many, so memory stays flat for long ranges.
_CHUNK_TICKS = 250_000
_DAY_US = 86_400_000_000


@dataclass
class ReplayReport:
    """What a replay sent.

    Attributes:
        topic: Topic written.
        mode: ``ticks`` or ``bars``.
        bootstrap_servers: Cluster address.
        partitions: Partitions of the topic.
        topic_created: Whether this run created the topic.
        bars: Bars read.
        skipped_bars: Bars that could not become ticks (with reasons, first few).
        events: Events handed to the producer.
        delivered: Events the cluster acknowledged.
        failed: Events that could not be delivered.
        errors: First few delivery errors.
        by_ticker: Events per ticker.
        first_event: First event time (ISO) or date.
        last_event: Last event time (ISO) or date.
        offsets_before: High watermark per partition before the run.
        offsets_after: High watermark per partition after the run.
        elapsed_s: Wall-clock seconds from the first send to the last acknowledgement.
        events_per_s: Delivered events per second.
        stopped: Whether the run was interrupted before sending everything.
    """

    topic: str
    mode: str
    bootstrap_servers: str
    partitions: int = 0
    topic_created: bool = False
    bars: int = 0
    skipped_bars: list[str] = field(default_factory=list)
    events: int = 0
    delivered: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    by_ticker: dict[str, int] = field(default_factory=dict)
    first_event: str | None = None
    last_event: str | None = None
    offsets_before: dict[int, int] = field(default_factory=dict)
    offsets_after: dict[int, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    events_per_s: float = 0.0
    stopped: bool = False


def load_bars(
    settings: Settings,
    tickers: Sequence[str] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    csv_path: str | Path | None = None,
) -> pa.Table:
    """Daily bars from ``market.daily_bars`` or a long-format CSV, sorted by (ticker, date).

    The CSV needs a header with ``ticker``, ``date`` and ``close`` (``open``, ``high``,
    ``low`` and ``volume`` too for ticks); names are matched case-insensitively.

    Raises:
        InputFileError: Missing CSV, or one without the needed columns.
        NotFoundError: No bars in the selection.
    """
    if csv_path is None:
        from tickerlake.lake.contract import read_bars

        table = read_bars(settings, tickers, start, end)
        where = "market.daily_bars"
    else:
        table = _read_csv(Path(csv_path), tickers, start, end)
        where = str(csv_path)
    if table.num_rows == 0:
        what = f" for {', '.join(tickers)}" if tickers else ""
        span = f" between {start or '…'} and {end or '…'}" if start or end else ""
        hint = " (run `tickerlake ingest sim` and `tickerlake etl` first)" if csv_path is None else ""
        raise NotFoundError(f"no bars in {where}{what}{span}{hint}")
    return table.sort_by([("ticker", "ascending"), ("date", "ascending")])


def _read_csv(
    path: Path, tickers: Sequence[str] | None, start: dt.date | None, end: dt.date | None
) -> pa.Table:
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    if not path.is_file():
        raise InputFileError(str(path), "no such file")
    try:
        raw = pacsv.read_csv(path)
    except pa.ArrowInvalid as e:
        raise InputFileError(str(path), f"not a readable CSV ({str(e).splitlines()[0]})") from None
    names = {c.strip().lower(): c for c in raw.column_names}
    missing = [c for c in ("ticker", "date", "close") if c not in names]
    if missing:
        raise InputFileError(str(path), f"missing column(s) {', '.join(missing)} (need ticker, date, close)")
    from tickerlake.lake.contract import BAR_COLUMNS, DAILY_BARS, arrow_schema

    # The same columns and types as bars read from the lake.
    schema = arrow_schema(DAILY_BARS)
    types = {name: schema.field(name).type for name in BAR_COLUMNS}
    cols = {}
    for name, typ in types.items():
        if name in names:
            try:
                cols[name] = raw.column(names[name]).cast(typ)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise InputFileError(str(path), f"column {name}: {str(e).splitlines()[0]}") from None
        else:
            cols[name] = pa.nulls(raw.num_rows, typ)
    table = pa.table(cols)
    table = table.set_column(0, "ticker", pc.utf8_upper(pc.utf8_trim_whitespace(table.column("ticker"))))
    mask = pc.is_valid(table.column("ticker"))
    if tickers:
        mask = pc.and_(mask, pc.is_in(table.column("ticker"), pa.array([t.upper() for t in tickers])))
    if start is not None:
        mask = pc.and_(mask, pc.greater_equal(table.column("date"), pa.scalar(start, pa.date32())))
    if end is not None:
        mask = pc.and_(mask, pc.less_equal(table.column("date"), pa.scalar(end, pa.date32())))
    return table.filter(mask)


def ticker_partition(ticker: str, partitions: int) -> int:
    """The partition of a default ticker's events: the eight spread evenly over the partitions.

    With at least as many partitions as default tickers, each gets its own, spaced out
    (12 partitions: 0, 1, 3, 4, 6, 7, 9, 10); with fewer, they take turns (3 partitions:
    3, 3 and 2 tickers). The placement depends only on the ticker and the partition count,
    so every replay into a topic puts a ticker on the same partition.

    Raises:
        ValueError: ``ticker`` is not a default ticker, or ``partitions`` < 1.
    """
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    i, n = DEFAULT_TICKERS.index(ticker), len(DEFAULT_TICKERS)
    return i * partitions // n if partitions >= n else i % partitions


def producer_config(
    settings: Settings, bootstrap: str, paced: bool, compression: str = "lz4"
) -> dict[str, object]:
    """Producer settings: idempotent, acks=all, compressed, murmur2 keys, batching for throughput.

    A paced replay lingers less so events reach the broker soon after their market time.
    """
    conf = _kafka.base_config(settings, bootstrap)
    conf.update(
        {
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": compression,
            "partitioner": "murmur2_random",
            "linger.ms": 5 if paced else 25,
            "batch.size": 1_000_000,
            "batch.num.messages": 100_000,
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1_048_576,
            "delivery.report.only.error": True,
        }
    )
    return conf


class _Sender:
    """Hands encoded events to the producer, counting failures reported by the client."""

    def __init__(
        self, producer: object, topic: str, report: ReplayReport, placement: dict[bytes, int] | None = None
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.report = report
        self.placement = placement or {}

    def on_delivery(self, err: object, msg: object) -> None:
        if err is not None:
            self.report.failed += 1
            if len(self.report.errors) < 5:
                self.report.errors.append(str(err))

    def send(self, keys: Sequence[bytes], values: Sequence[bytes]) -> None:
        produce = self.producer.produce  # type: ignore[attr-defined]
        poll = self.producer.poll  # type: ignore[attr-defined]
        topic, cb, placement = self.topic, self.on_delivery, self.placement
        for key, value in zip(keys, values, strict=True):
            # -1: the partitioner (murmur2 of the key) decides.
            part = placement.get(key, -1)
            try:
                produce(topic, value, key, part, on_delivery=cb)
            except BufferError:
                # The local queue is full: let the client drain it, then try again.
                poll(0.05)
                produce(topic, value, key, part, on_delivery=cb)
        poll(0)
        self.report.events += len(values)


def _tick_chunks(
    bars: pa.Table, ticks_per_bar: int, seed: int, report: ReplayReport
) -> Iterator[tuple[np.ndarray, list[bytes], list[bytes], np.ndarray]]:
    """(session-clock µs, keys, values, ts) per chunk of trading days, in market-time order."""
    days = np.asarray(bars.column("date").cast(pa.int32()).to_numpy(zero_copy_only=False), dtype=np.int64)
    unique_days = np.unique(days)
    per_day = max(1, bars.num_rows // max(len(unique_days), 1)) * ticks_per_bar
    days_per_chunk = max(1, _CHUNK_TICKS // max(per_day, 1))
    next_seq: dict[str, int] = {}
    for i in range(0, len(unique_days), days_per_chunk):
        chunk_days = unique_days[i : i + days_per_chunk]
        mask = (days >= chunk_days[0]) & (days <= chunk_days[-1])
        result = bars_to_ticks(bars.filter(pa.array(mask)), ticks_per_bar, seed, next_seq)
        next_seq = result.next_seq
        for s in result.skipped:
            if len(report.skipped_bars) < 20:
                report.skipped_bars.append(f"{s.ticker} {s.date}: {s.reason}")
        report.bars += result.bars + len(result.skipped)
        ticks = result.ticks
        if not len(ticks):
            continue
        # Session clock: trading days before this one (in the replay) times the session
        # length, plus time since this day's open.
        tick_day = (ticks.ts - (ticks.ts % _DAY_US)) // _DAY_US
        rank = np.searchsorted(unique_days, tick_day)
        clock = rank * SESSION_US + (ticks.ts - session_open_us(tick_day))
        names = ticks.tickers()
        keys = [n.encode() for n in names]
        values = encode_ticks(names, ticks.ts, ticks.price, ticks.size, ticks.seq)
        for name, count in zip(*np.unique(np.asarray(names, dtype=object), return_counts=True), strict=True):
            report.by_ticker[name] = report.by_ticker.get(name, 0) + int(count)
        yield clock, keys, values, ticks.ts


def _pace(
    due_s: np.ndarray,
    keys: Sequence[bytes],
    values: Sequence[bytes],
    sender: _Sender,
    t0: float,
    stop: threading.Event,
    on_progress: Callable[[int], None] | None,
) -> bool:
    """Send events when their due time (seconds after ``t0``) comes. False if stopped."""
    i, n = 0, len(values)
    while i < n:
        if stop.is_set():
            return False
        now = time.monotonic() - t0
        j = int(np.searchsorted(due_s, now + 0.002, side="right"))
        j = min(max(j, i), n)
        if j > i:
            j = min(j, i + 20_000)
            sender.send(keys[i:j], values[i:j])
            i = j
            if on_progress is not None:
                on_progress(sender.report.events)
        else:
            sender.producer.poll(min(max(due_s[i] - now, 0.0), 0.05))  # type: ignore[attr-defined]
    return True


def replay(
    settings: Settings,
    bars: pa.Table,
    topic: str = DEFAULT_TOPIC,
    mode: str = "ticks",
    *,
    bootstrap: str | None = None,
    partitions: int = DEFAULT_PARTITIONS,
    rate: float | None = None,
    speed: float | None = None,
    ticks_per_bar: int = DEFAULT_TICKS_PER_BAR,
    seed: int = 42,
    compression: str = "lz4",
    stop: threading.Event | None = None,
    on_progress: Callable[[int], None] | None = None,
    flush_timeout_s: float = 120.0,
) -> ReplayReport:
    """Publish bars or synthesized ticks to a topic, creating it when missing.

    Args:
        settings: Runtime settings (Kafka security, dev broker state).
        bars: Daily bars (see :func:`load_bars`).
        topic: Topic name.
        mode: ``ticks`` or ``bars``.
        bootstrap: Kafka address (default: settings or the dev broker).
        partitions: Partitions when the topic is created.
        rate: Events per second (bars, or ticks instead of ``speed``); None: no limit.
        speed: Market-clock speed-up for ticks (60.0 for 60x); None: as fast as possible.
        ticks_per_bar: Trades per daily bar.
        seed: Seed of the tick paths.
        compression: ``lz4``, ``zstd``, ``snappy``, ``gzip`` or ``none``.
        stop: Set it to stop early (what was sent is flushed and counted).
        on_progress: Called with the number of events sent so far.
        flush_timeout_s: How long to wait for the last acknowledgements.

    Returns:
        The counts.

    Raises:
        UserError: Bad arguments.
        TickerlakeError: The topic cannot be created.
        TransientError: Kafka does not answer.
    """
    from confluent_kafka import Producer

    if mode not in MODES:
        raise UserError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if rate is not None and rate <= 0:
        raise UserError(f"rate must be positive, got {rate}")
    if speed is not None and speed <= 0:
        raise UserError(f"speed must be positive, got {speed}")
    if mode == "bars" and speed is not None:
        raise UserError("--speed applies to ticks; use --rate for bars")
    if rate is not None and speed is not None:
        raise UserError("give either --rate or --speed, not both")
    if compression not in COMPRESSIONS:
        raise UserError(f"compression must be one of {', '.join(COMPRESSIONS)}, got {compression!r}")
    stop = stop or threading.Event()
    address = _kafka.resolve_bootstrap(settings, bootstrap)
    report = ReplayReport(topic=topic, mode=mode, bootstrap_servers=address)
    admin = _kafka.admin_client(settings, address)
    report.topic_created, report.partitions = _kafka.ensure_topic(admin, topic, partitions, address)
    inspector = _kafka.plain_consumer(settings, address)
    try:
        parts = list(range(report.partitions))
        report.offsets_before = {
            p: hi for p, (_, hi) in _kafka.watermarks(inspector, topic, parts, address).items()
        }
        producer = Producer(
            producer_config(
                settings, address, paced=rate is not None or speed is not None, compression=compression
            )
        )
        placement = {t.encode(): ticker_partition(t, report.partitions) for t in DEFAULT_TICKERS}
        sender = _Sender(producer, topic, report, placement)
        t0 = time.monotonic()
        if mode == "bars":
            finished = _replay_bars(bars, sender, rate, t0, stop, on_progress, report)
        else:
            finished = _replay_ticks(bars, sender, rate, speed, ticks_per_bar, seed, t0, stop, on_progress)
        left = producer.flush(flush_timeout_s)
        report.elapsed_s = round(time.monotonic() - t0, 3)
        if left:
            report.failed += left
            report.errors.append(f"{left} events not acknowledged within {flush_timeout_s:g} s")
        report.delivered = report.events - report.failed
        report.events_per_s = round(report.delivered / report.elapsed_s, 1) if report.elapsed_s > 0 else 0.0
        report.stopped = not finished
        report.offsets_after = {
            p: hi for p, (_, hi) in _kafka.watermarks(inspector, topic, parts, address).items()
        }
    finally:
        inspector.close()
    return report


def _replay_bars(
    bars: pa.Table,
    sender: _Sender,
    rate: float | None,
    t0: float,
    stop: threading.Event,
    on_progress: Callable[[int], None] | None,
    report: ReplayReport,
) -> bool:
    ordered = bars.sort_by([("date", "ascending"), ("ticker", "ascending")])
    report.bars = ordered.num_rows
    tickers = ordered.column("ticker").to_pylist()
    values = encode_bars(ordered)
    keys = [t.encode() for t in tickers]
    for t in tickers:
        report.by_ticker[t] = report.by_ticker.get(t, 0) + 1
    dates = ordered.column("date")
    if len(dates):
        report.first_event, report.last_event = str(dates[0].as_py()), str(dates[-1].as_py())
    due = np.arange(len(values), dtype=np.float64) / rate if rate else np.zeros(len(values))
    return _pace(due, keys, values, sender, t0, stop, on_progress)


def _replay_ticks(
    bars: pa.Table,
    sender: _Sender,
    rate: float | None,
    speed: float | None,
    ticks_per_bar: int,
    seed: int,
    t0: float,
    stop: threading.Event,
    on_progress: Callable[[int], None] | None,
) -> bool:
    from tickerlake.stream.schema import format_ts

    report = sender.report
    clock0: int | None = None
    sent_before = 0
    for clock, keys, values, ts in _tick_chunks(bars, ticks_per_bar, seed, report):
        if report.first_event is None:
            report.first_event = format_ts(ts[:1])[0]
        report.last_event = format_ts(ts[-1:])[0]
        if clock0 is None:
            clock0 = int(clock[0])
        if speed is not None:
            due = (clock - clock0) / (speed * 1e6)
        elif rate is not None:
            due = (sent_before + np.arange(len(values), dtype=np.float64)) / rate
        else:
            due = np.zeros(len(values))
        if not _pace(due, keys, values, sender, t0, stop, on_progress):
            return False
        sent_before += len(values)
    return True
