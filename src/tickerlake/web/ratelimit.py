"""Per-client token buckets: one client of the SQL endpoint cannot starve the others.

Pure logic with an injectable clock, no I/O: the web app keys the buckets by token name
(or by client address when access control is off) and answers 429 with ``Retry-After``
when :meth:`RateLimiter.acquire` says no.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Decision", "RateLimiter", "TokenBucket"]


@dataclass(slots=True)
class TokenBucket:
    """A bucket of ``burst`` tokens refilled at ``rate`` tokens per second.

    Attributes:
        rate: Refill rate in tokens per second (> 0).
        burst: Capacity: how many requests may arrive at once after a quiet spell (>= 1).
        tokens: Tokens available at ``stamp``.
        stamp: Clock reading of the last update.
    """

    rate: float
    burst: float
    tokens: float
    stamp: float

    def refill(self, now: float) -> None:
        """Add what accrued since the last update, up to ``burst``."""
        # A clock that goes backwards (it should not: callers pass a monotonic one) adds nothing.
        elapsed = max(0.0, now - self.stamp)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.stamp = max(self.stamp, now)

    def take(self, now: float) -> float:
        """Take one token if there is one.

        Returns:
            0.0 when a token was taken, else the seconds until one will be available.
        """
        self.refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one request.

    Attributes:
        allowed: Whether the request may proceed.
        retry_after_s: When refused, seconds until the client's next token (else 0).
    """

    allowed: bool
    retry_after_s: float = 0.0

    @property
    def retry_after_header(self) -> str:
        """``Retry-After`` as HTTP wants it: whole seconds, at least 1."""
        return str(max(1, math.ceil(self.retry_after_s)))


class RateLimiter:
    """Token buckets by client key, thread-safe, with a bounded number of buckets.

    Args:
        rate: Requests per second each client may sustain; ``<= 0`` disables the limit.
        burst: Requests a client may make at once; at least 1.
        clock: Monotonic clock in seconds (tests pass a fake one).
        max_clients: Buckets kept before idle (full) ones are forgotten; a forgotten client
            starts again with a full bucket, which is exactly what it would have had.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.rate = float(rate)
        self.burst = float(max(1, burst))
        self._clock = clock
        self._max_clients = max(1, max_clients)
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """Whether requests are limited at all."""
        return self.rate > 0

    def acquire(self, key: str) -> Decision:
        """Spend one of ``key``'s tokens, or say how long to wait."""
        if not self.enabled:
            return Decision(True)
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self._max_clients:
                    self._forget_idle(now)
                bucket = TokenBucket(self.rate, self.burst, self.burst, now)
                self._buckets[key] = bucket
            wait = bucket.take(now)
        return Decision(wait == 0.0, wait)

    def __len__(self) -> int:
        """How many clients have a bucket (for tests and diagnostics)."""
        return len(self._buckets)

    def _forget_idle(self, now: float) -> None:
        """Drop the buckets that refilled completely; if none did, the oldest half.

        Dropping a full bucket changes nothing for its client. Dropping a partly used one
        (only when more than ``max_clients`` clients are busy at once) is generous to that
        client, never unfair to the others, and keeps memory bounded.
        """
        for key, bucket in list(self._buckets.items()):
            bucket.refill(now)
            if bucket.tokens >= bucket.burst:
                del self._buckets[key]
        if len(self._buckets) >= self._max_clients:
            by_age = sorted(self._buckets, key=lambda k: self._buckets[k].stamp)
            for key in by_age[: len(by_age) // 2 + 1]:
                del self._buckets[key]
