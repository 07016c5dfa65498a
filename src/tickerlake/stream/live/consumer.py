"""The live view's Kafka reader: every partition of a tick topic, in its own group, in a thread.

It assigns itself every partition of the topic (no group membership, so each web process
sees every ticker and no rebalance ever pauses it), decodes records with the sink's own
decoder (:func:`tickerlake.stream.schema.decode_ticks`) and hands each batch to a
callback. It commits its positions to its own group (``tickerlake-live`` by default),
never the sink's, so ``stream status --group tickerlake-live`` shows how far behind the
live view is. A missing topic or an absent broker is a state it reports and waits out
(retrying every couple of seconds), not an error: the page then says how to start a stream.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tickerlake.config import Settings
from tickerlake.errors import TickerlakeError
from tickerlake.stream import _kafka
from tickerlake.stream.schema import Rules, decode_ticks

__all__ = ["Batch", "ConsumerState", "LiveConsumer", "parse_start"]

LIVE_GROUP = "tickerlake-live"
_RETRY_S = 2.0
_COMMIT_EVERY_S = 5.0
_LOOK_EVERY_S = 0.5


@dataclass
class Batch:
    """Decoded trades of one poll.

    Attributes:
        tickers: Symbol per trade.
        ts_us: Event time, µs since the epoch (int64 array).
        price: Price (float64 array).
        size: Shares (int64 array).
        seq: Per-ticker sequence number (int64 array).
        produced_ms: ``(oldest, newest)`` Kafka record time (the producer's clock) of the poll.
        records: Records read (accepted + rejected).
        rejected: Reasons of the records the decoder rejected.
    """

    tickers: list[str]
    ts_us: np.ndarray
    price: np.ndarray
    size: np.ndarray
    seq: np.ndarray
    produced_ms: tuple[int, int] | None
    records: int
    rejected: list[str] = field(default_factory=list)


@dataclass
class ConsumerState:
    """Where the reader stands.

    Attributes:
        state: ``starting``, ``waiting`` (no broker or no topic yet), ``reading`` or ``stopped``.
        detail: One line on the state (what is missing, the last error).
        partitions: Per partition: ``(next offset, log end)`` as the client last saw them.
        records: Records read since start.
        rejected: Records the decoder rejected.
        last_record_at: Wall-clock time (s since the epoch) of the latest record.
    """

    state: str = "starting"
    detail: str = ""
    partitions: dict[int, tuple[int | None, int | None]] = field(default_factory=dict)
    records: int = 0
    rejected: int = 0
    last_record_at: float | None = None


def parse_start(value: str) -> str | float:
    """``earliest``, ``latest`` or seconds to look back (``300``, ``5m``, ``1h``).

    Raises:
        ValueError: Anything else.
    """
    text = value.strip().lower()
    if text in ("earliest", "latest"):
        return text
    scale = {"s": 1, "m": 60, "h": 3600}.get(text[-1:], 0)
    number = float(text[:-1] if scale else text)
    if not number >= 0:
        raise ValueError(value)
    return number * (scale or 1)


class LiveConsumer:
    """A background reader of a tick topic (see the module docstring).

    Args:
        settings: Runtime settings (Kafka security, dev broker state).
        topic: Tick topic.
        on_batch: Called from the reader's thread with every decoded poll.
        bootstrap: Kafka address (default: settings, else the dev broker).
        start: ``earliest``, ``latest`` or seconds to look back (see :func:`parse_start`).
        group: The group its positions are committed to.
    """

    def __init__(
        self,
        settings: Settings,
        topic: str,
        on_batch: Callable[[Batch], None],
        bootstrap: str | None = None,
        start: str | float = 300.0,
        group: str = LIVE_GROUP,
    ) -> None:
        self.settings = settings
        self.topic = topic
        self.on_batch = on_batch
        self.bootstrap_override = bootstrap
        self.bootstrap: str | None = None
        self.start_at = start
        self.group = group
        self.status = ConsumerState()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> LiveConsumer:
        """Start reading in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name=f"live-{self.topic}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop reading (the thread commits its positions and closes its client)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.status.state = "stopped"

    def _wait(self, state: str, detail: str) -> None:
        self.status.state, self.status.detail = state, detail
        self._stop.wait(_RETRY_S)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.bootstrap = _kafka.resolve_bootstrap(self.settings, self.bootstrap_override)
                admin = _kafka.admin_client(self.settings, self.bootstrap)
                parts = _kafka.topic_partitions(admin, self.topic, self.bootstrap, timeout_s=5.0)
            except TickerlakeError as e:
                self._wait("waiting", str(e))
                continue
            if parts is None:
                self._wait("waiting", f"topic {self.topic!r} does not exist yet on {self.bootstrap}")
                continue
            try:
                self._read(parts)
            except Exception as e:  # the live view reports its failure and reconnects, it never dies silently
                self._wait("waiting", f"{type(e).__name__}: {e}")

    def _start_of(self, start: str | float) -> str | int:
        if isinstance(start, str):
            return start
        return int((time.time() - start) * 1000)

    def _read(self, parts: list[int]) -> None:
        assert self.bootstrap is not None
        consumer = _kafka.plain_consumer(
            self.settings,
            self.bootstrap,
            **{"group.id": self.group, "fetch.wait.max.ms": 50, "fetch.min.bytes": 1},
        )
        rules = Rules(known_tickers=None, max_lateness_us=2**62)
        try:
            # After a reconnect each partition carries on from where this reader stood (the
            # look-back is for partitions it has no position of: all of them at first).
            known = {p: o for p, (o, _) in self.status.partitions.items() if o is not None}
            _kafka.assign_from(consumer, self.topic, parts, self._start_of(self.start_at), resume=known)
            self.status.state, self.status.detail = "reading", f"{self.topic} on {self.bootstrap}"
            last_commit = last_look = time.monotonic()
            while not self._stop.is_set():
                # Small polls: an event waits for at most one poll's worth of others before it is applied.
                msgs = consumer.consume(num_messages=5_000, timeout=0.05)
                good = [m for m in msgs if m.error() is None]
                if good:
                    self._hand_over(good, rules)
                now = time.monotonic()
                if now - last_look >= _LOOK_EVERY_S:
                    self.status.partitions = _kafka.positions(consumer, self.topic, parts)
                    last_look = now
                if now - last_commit >= _COMMIT_EVERY_S:
                    self._commit(consumer)
                    last_commit = now
            self.status.partitions = _kafka.positions(consumer, self.topic, parts)
            self._commit(consumer)
        finally:
            with contextlib.suppress(Exception):
                consumer.close()

    def _commit(self, consumer: Any) -> None:
        done = {p: o for p, (o, _) in self.status.partitions.items() if o is not None}
        if done:
            with contextlib.suppress(Exception):  # monitoring only: a failed commit is retried next time
                _kafka.commit_offsets(consumer, self.topic, done)

    def _hand_over(self, msgs: list[Any], rules: Rules) -> None:
        stamps = [m.timestamp()[1] for m in msgs]
        decoded = decode_ticks([m.value() for m in msgs], rules)
        cols = decoded.columns
        batch = Batch(
            tickers=cols["ticker"].to_pylist(),
            ts_us=cols["ts"].cast("int64").to_numpy(zero_copy_only=False),
            price=cols["price"].to_numpy(zero_copy_only=False),
            size=cols["size"].to_numpy(zero_copy_only=False),
            seq=cols["seq"].to_numpy(zero_copy_only=False),
            produced_ms=(min(stamps), max(stamps)) if stamps else None,
            records=len(msgs),
            rejected=[reason for _, reason in decoded.rejected],
        )
        self.status.records += len(msgs)
        self.status.rejected += len(decoded.rejected)
        self.status.last_record_at = time.time()
        self.on_batch(batch)
