"""The live view as an operation: a feed that reads a tick topic, keeps the live book and
pushes coalesced updates to its subscribers (``stream live`` in the terminal, ``serve
--live`` to browsers).

:class:`LiveFeed` couples the Kafka reader (:class:`tickerlake.stream.live.consumer.LiveConsumer`)
with the pure :class:`~tickerlake.stream.live.core.LiveBook` under one lock, and a
publisher thread that, at most ``publish_hz`` times a second, drains what changed into one
JSON-ready update (quotes of the tickers that traded, their open bars and the bars that
closed, new alerts, where the reader stands) and hands it to every subscriber. Bursts are
thereby coalesced on the server: a client never gets more than ``publish_hz`` updates a
second, however fast the topic runs. Each update carries the producer-side Kafka record
times of the oldest and newest event it covers, so a client can measure produce-to-screen
latency (``bench/live.py`` does).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tickerlake.config import Settings
from tickerlake.stream.live.core import Alert, Bar, LiveBook, LiveConfig, Quote

if TYPE_CHECKING:
    from tickerlake.stream.live.consumer import Batch

__all__ = [
    "DEFAULT_LOOKBACK_S",
    "LiveFeed",
    "LiveOptions",
    "alert_json",
    "bar_json",
    "quote_json",
]

DEFAULT_LOOKBACK_S = 300.0
#: An update with no trade is still sent this often, so clients see the reader's state.
_HEARTBEAT_S = 1.0

Subscriber = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class LiveOptions:
    """What a live feed reads and how it publishes.

    Attributes:
        topic: Tick topic.
        bootstrap: Kafka address (None: settings, else the dev broker).
        start: ``earliest``, ``latest`` or seconds to look back.
        group: Consumer group its positions are committed to (never the sink's).
        publish_hz: Updates per second at most.
        previous_close_from_lake: Ask ``market.daily_bars`` for the close before a ticker's first session.
        config: Windows, lateness, scoring and bounds.
    """

    topic: str = "ticks"
    bootstrap: str | None = None
    start: str | float = DEFAULT_LOOKBACK_S
    group: str = "tickerlake-live"
    publish_hz: float = 10.0
    previous_close_from_lake: bool = True
    config: LiveConfig = field(default_factory=LiveConfig)


def _ms(us: int) -> int:
    return us // 1000


def quote_json(q: Quote) -> dict[str, Any]:
    """A quote for the tape (times in ms since the epoch)."""
    return {
        "ticker": q.ticker,
        "day": (dt.date(1970, 1, 1) + dt.timedelta(days=q.day)).isoformat(),
        "open": q.open,
        "high": q.high,
        "low": q.low,
        "last": q.last,
        "previous_close": q.previous_close,
        "change": q.change,
        "change_pct": q.change_pct,
        "vwap": q.vwap,
        "volume": q.volume,
        "trades": q.trades,
        "t": _ms(q.last_ts_us),
        "z": q.z,
        "late": q.late,
        "quiet": q.quiet,
    }


def bar_json(b: Bar) -> dict[str, Any]:
    """A bar for the charts (``t``: window start, ms since the epoch)."""
    return {
        "t": _ms(b.start_us),
        "o": b.open,
        "h": b.high,
        "l": b.low,
        "c": b.close,
        "v": b.volume,
        "n": b.trades,
        "vwap": b.vwap,
        "final": b.final,
        "z": b.z,
    }


def alert_json(a: Alert) -> dict[str, Any]:
    """An alert for the feed."""
    return {
        "ticker": a.ticker,
        "timeframe_s": a.timeframe_s,
        "t": _ms(a.start_us),
        "close": a.close,
        "previous_close": a.previous_close,
        "ret_pct": a.ret_pct,
        "z": a.z,
        "median_pct": a.median_pct,
        "sigma_pct": a.sigma_pct,
    }


class LiveFeed:
    """A live view of a tick topic with subscribers (see the module docstring).

    Args:
        settings: Runtime settings.
        options: Topic, start, publishing rate, windows.
    """

    def __init__(self, settings: Settings, options: LiveOptions | None = None) -> None:
        from tickerlake.stream.live.consumer import LiveConsumer

        self.settings = settings
        self.options = options or LiveOptions()
        lookup = self._lake_previous_close if self.options.previous_close_from_lake else None
        self.book = LiveBook(self.options.config, previous_close=lookup)
        self.consumer = LiveConsumer(
            settings,
            self.options.topic,
            self._apply,
            bootstrap=self.options.bootstrap,
            start=self.options.start,
            group=self.options.group,
        )
        self._lock = threading.Lock()
        self._subscribers: list[Subscriber] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._produced: tuple[int, int] | None = None
        self._seq = 0
        self.rejections: deque[str] = deque(maxlen=20)
        # (monotonic time, records read) samples for the events/s figure.
        self._rate: deque[tuple[float, int]] = deque(maxlen=32)

    # ------------------------------------------------------------------ life cycle

    def start(self) -> LiveFeed:
        """Start reading and publishing (daemon threads)."""
        self.consumer.start()
        self._thread = threading.Thread(target=self._publish_loop, name="live-publisher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop reading and publishing."""
        self._stop.set()
        self.consumer.stop()
        if self._thread is not None:
            self._thread.join(5)

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Call ``fn`` with every update (from the publisher thread); returns the unsubscribe function."""
        with self._lock:
            self._subscribers.append(fn)

        def unsubscribe() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._subscribers.remove(fn)

        return unsubscribe

    # ------------------------------------------------------------------ reading side

    def _lake_previous_close(self, ticker: str, day: int) -> float | None:
        """The close of the trading day before ``day`` in ``market.daily_bars`` (None if none or unreadable)."""
        with contextlib.suppress(Exception):  # a lake without bars leaves the change unknown, nothing more
            from tickerlake.query.engine import get_engine

            date = dt.date(1970, 1, 1) + dt.timedelta(days=day)
            rows = (
                get_engine(self.settings)
                .query(
                    "SELECT close FROM market.daily_bars WHERE ticker = ? AND date < ? ORDER BY date DESC LIMIT 1",
                    [ticker, date],
                    limit=1,
                )
                .rows()
            )
            return float(rows[0][0]) if rows else None
        return None

    def _apply(self, batch: Batch) -> None:
        with self._lock:
            self.book.apply(batch.tickers, batch.ts_us, batch.price, batch.size, batch.seq)
            if batch.produced_ms is not None:
                lo, hi = batch.produced_ms
                self._produced = (
                    (min(lo, self._produced[0]), max(hi, self._produced[1])) if self._produced else (lo, hi)
                )
            self.rejections.extend(batch.rejected)

    # ------------------------------------------------------------------ publishing side

    def status(self) -> dict[str, Any]:
        """Where the reader stands: state, topic, records, lag per partition, events/s."""
        with self._lock:
            return self._status()

    def _status(self) -> dict[str, Any]:
        c = self.consumer.status
        parts = {
            p: {"offset": o, "end": e, "lag": (e - o) if o is not None and e is not None else None}
            for p, (o, e) in sorted(c.partitions.items())
        }
        lags = [v["lag"] for v in parts.values() if v["lag"] is not None]
        now = time.monotonic()
        self._rate.append((now, c.records))
        # A copy: the publisher and request threads append while this looks.
        old = next((s for s in list(self._rate) if now - s[0] <= 5.0), None)
        rate = (c.records - old[1]) / (now - old[0]) if old is not None and now - old[0] > 0.2 else None
        idle = c.last_record_at is None or time.time() - c.last_record_at > 10.0
        return {
            "state": c.state,
            "detail": c.detail,
            "topic": self.options.topic,
            "group": self.options.group,
            "bootstrap_servers": self.consumer.bootstrap,
            "records": c.records,
            "rejected": c.rejected,
            "events": self.book.events,
            "late": self.book.late,
            "stale": self.book.stale,
            "dropped": self.book.dropped,
            "events_per_s": round(rate, 1) if rate is not None else None,
            "lag": sum(lags) if lags else None,
            "partitions": parts,
            "idle": idle,
            "last_record_at": c.last_record_at,
            "watermark_ms": _ms(clock) if (clock := self.book.clock_us) is not None else None,
        }

    def snapshot(self, bars_per_ticker: int | None = None) -> dict[str, Any]:
        """Everything a page needs to draw from scratch: quotes, bars per timeframe, alerts, status."""
        with self._lock:
            names = self.book.tickers()
            bars: dict[str, dict[str, list[dict[str, Any]]]] = {}
            for tf in self.options.config.timeframes_s:
                bars[str(tf)] = {}
                for name in names:
                    got = self.book.bars(name, tf)
                    if bars_per_ticker is not None:
                        got = got[-bars_per_ticker:]
                    bars[str(tf)][name] = [bar_json(b) for b in got]
            return {
                "type": "snapshot",
                "seq": self._seq,
                "sent_ms": int(time.time() * 1000),
                "status": self._status(),
                "timeframes_s": list(self.options.config.timeframes_s),
                "alert_z": self.options.config.alert_z,
                "quotes": [quote_json(self.book.quote(n)) for n in names],
                "bars": bars,
                "alerts": [alert_json(a) for a in reversed(self.book.alerts)],
                "rejections": list(self.rejections)[-5:],
            }

    def _update(self) -> dict[str, Any] | None:
        """Drain the book into one update (None when nothing changed and no heartbeat is due)."""
        with self._lock:
            changes = self.book.drain()
            produced, self._produced = self._produced, None
            if not (changes.events or changes.late or changes.closed or changes.alerts):
                return None
            bars: dict[str, dict[str, list[dict[str, Any]]]] = {
                str(tf): {} for tf in self.options.config.timeframes_s
            }
            for name, tf, bar in changes.closed:
                bars[str(tf)].setdefault(name, []).append(bar_json(bar))
            for name in changes.tickers:
                for tf, bar in self.book.open_bars(name):
                    bars[str(tf)].setdefault(name, []).append(bar_json(bar))
            quotes = [quote_json(self.book.quote(n)) for n in changes.tickers]
            self._seq += 1
            return {
                "type": "update",
                "seq": self._seq,
                "events": changes.events,
                "late": changes.late,
                "produced_ms": list(produced) if produced else None,
                "quotes": quotes,
                "bars": bars,
                "alerts": [alert_json(a) for a in changes.alerts],
            }

    def _publish_loop(self) -> None:
        period = 1.0 / max(self.options.publish_hz, 0.1)
        last_beat = 0.0
        while not self._stop.wait(period):
            message = self._update()
            now = time.monotonic()
            if message is None and now - last_beat < _HEARTBEAT_S:
                continue
            if message is None:
                message = {"type": "status"}
            if now - last_beat >= _HEARTBEAT_S or message["type"] == "status":
                message["status"] = self.status()
                last_beat = now
            message["sent_ms"] = int(time.time() * 1000)
            with self._lock:
                subscribers = list(self._subscribers)
            for fn in subscribers:
                with contextlib.suppress(Exception):  # one broken subscriber never stops the others
                    fn(message)
