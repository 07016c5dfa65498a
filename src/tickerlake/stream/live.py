"""Live per-ticker statistics for the web's live page: a reader of the tick topic outside the sink's group.

:func:`apply_ticks` is the pure part: it folds a batch of decoded ticks into the running
statistics of each ticker's current session (trades, volume, open/high/low/last, VWAP,
change since the open); a tick of a later day starts that ticker's session afresh, and
older ticks are ignored. :class:`LiveStats` runs a consumer in a background thread that
reads every partition (assigned directly, so each web process sees all tickers; nothing is
committed) and keeps the statistics for :meth:`LiveStats.snapshot`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa

from tickerlake.config import Settings
from tickerlake.stream import _kafka
from tickerlake.stream.schema import Rules, decode_ticks

__all__ = ["LiveStats", "TickerStats", "apply_ticks"]

_DAY_US = 86_400_000_000


@dataclass(frozen=True)
class TickerStats:
    """One ticker's current session.

    Attributes:
        ticker: Symbol.
        day: Session date (ISO, UTC date of the trades; US sessions do not cross it).
        trades: Ticks seen.
        volume: Shares traded.
        open: First price of the session.
        high: Highest price.
        low: Lowest price.
        last: Latest price.
        vwap: Volume-weighted average price (None while the volume is 0).
        change_pct: Last vs open, in percent.
        last_ts_us: Time of the latest tick, µs since the epoch.
        notional: Sum of price × size (for the VWAP).
    """

    ticker: str
    day: str
    trades: int
    volume: int
    open: float
    high: float
    low: float
    last: float
    vwap: float | None
    change_pct: float
    last_ts_us: int
    notional: float


def _day(us: int) -> str:
    return str(np.datetime64(us // _DAY_US, "D"))


def apply_ticks(stats: Mapping[str, TickerStats], columns: Mapping[str, pa.Array]) -> dict[str, TickerStats]:
    """Fold decoded ticks (``ticker``, ``ts``, ``price``, ``size``; arrival order) into the statistics.

    Returns:
        New statistics per ticker (the input mapping is not changed).
    """
    out = dict(stats)
    if not len(columns["ticker"]):
        return out
    encoded = columns["ticker"].dictionary_encode()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    ts = columns["ts"].cast(pa.int64()).to_numpy(zero_copy_only=False)
    price = columns["price"].to_numpy(zero_copy_only=False)
    size = columns["size"].to_numpy(zero_copy_only=False)
    days = ts // _DAY_US
    for k, name in enumerate(encoded.dictionary.to_pylist()):
        idx = np.flatnonzero(codes == k)
        latest = int(days[idx].max())
        prev = out.get(name)
        prev_day = int(np.datetime64(prev.day, "D").astype(np.int64)) if prev is not None else None
        if prev_day is not None and latest < prev_day:
            continue  # only ticks of an earlier session: history, not live
        idx = idx[days[idx] == latest]
        t, p, s = ts[idx], price[idx], size[idx]
        if prev is None or prev_day != latest:
            base = TickerStats(
                name, _day(int(t[0])), 0, 0, float(p[0]), float(p[0]), float(p[0]), 0.0, None, 0.0, 0, 0.0
            )
        else:
            base = prev
        # The latest tick (the last to arrive among equal times) sets the last price.
        last_i = len(t) - 1 - int(np.argmax(t[::-1])) if t.max() >= base.last_ts_us else -1
        volume = base.volume + int(s.sum())
        notional = base.notional + float((p * s).sum())
        last = float(p[last_i]) if last_i >= 0 else base.last
        out[name] = replace(
            base,
            trades=base.trades + len(idx),
            volume=volume,
            high=max(base.high, float(p.max())),
            low=min(base.low, float(p.min())),
            last=last,
            vwap=notional / volume if volume else None,
            change_pct=(last / base.open - 1.0) * 100.0,
            last_ts_us=max(base.last_ts_us, int(t.max())),
            notional=notional,
        )
    return out


class LiveStats:
    """A background reader of a tick topic that keeps :class:`TickerStats` up to date.

    Args:
        settings: Runtime settings (Kafka security, dev broker state).
        topic: Tick topic.
        bootstrap: Kafka address (default: settings, else the dev broker).
        start: ``latest`` (only new ticks), ``earliest``, or seconds to look back.
    """

    def __init__(
        self,
        settings: Settings,
        topic: str = "ticks",
        bootstrap: str | None = None,
        start: str | float = "latest",
    ) -> None:
        self.settings = settings
        self.topic = topic
        self.bootstrap = _kafka.resolve_bootstrap(settings, bootstrap)
        self.start_at = start
        self._stats: dict[str, TickerStats] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.events = 0
        self.rejected = 0
        self.error: str | None = None

    def snapshot(self) -> list[TickerStats]:
        """The current statistics, by ticker."""
        with self._lock:
            return [self._stats[k] for k in sorted(self._stats)]

    def start(self) -> LiveStats:
        """Start reading in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name=f"live-{self.topic}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop reading."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _positions(self, consumer: Any, parts: list[int]) -> list[Any]:
        from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, TopicPartition

        if self.start_at == "earliest":
            return [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in parts]
        if self.start_at == "latest":
            return [TopicPartition(self.topic, p, OFFSET_END) for p in parts]
        since_ms = int((time.time() - float(self.start_at)) * 1000)
        wanted = [TopicPartition(self.topic, p, since_ms) for p in parts]
        found = consumer.offsets_for_times(wanted, timeout=10)
        return [
            TopicPartition(self.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_END)
            for tp in found
        ]

    def _run(self) -> None:
        admin = _kafka.admin_client(self.settings, self.bootstrap)
        parts = _kafka.topic_partitions(admin, self.topic, self.bootstrap)
        del admin
        if parts is None:
            self.error = f"topic {self.topic!r} does not exist"
            return
        consumer = _kafka.plain_consumer(
            self.settings, self.bootstrap, **{"group.id": "tickerlake-live", "fetch.wait.max.ms": 100}
        )
        rules = Rules(known_tickers=None, max_lateness_us=2**62)
        try:
            consumer.assign(self._positions(consumer, parts))
            while not self._stop.is_set():
                msgs = [m for m in consumer.consume(num_messages=10_000, timeout=0.2) if m.error() is None]
                if not msgs:
                    continue
                decoded = decode_ticks([m.value() for m in msgs], rules)
                with self._lock:
                    self._stats = apply_ticks(self._stats, decoded.columns)
                    self.events += len(decoded)
                    self.rejected += len(decoded.rejected)
        except Exception as e:  # a live view reports its failure instead of dying silently
            self.error = f"{type(e).__name__}: {e}"
        finally:
            with contextlib.suppress(Exception):
                consumer.close()
