"""The one retry helper for every network edge (Yahoo, Kafka admin, S3, catalog commits).

Bounded (by attempts, by a deadline, or both), exponential backoff with jitter, and only
for errors a classifier calls transient; anything else propagates at once. When it gives
up it raises a one-line :class:`~tickerlake.errors.TransientError` marked ``exhausted``,
which this helper never retries again, so nested retries cannot multiply the wait.

Only wrap operations that are safe to repeat (reads, whole-object writes, deletes,
commits that are checked or idempotent).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from tickerlake.errors import TransientError

__all__ = ["first_line", "is_transient_error", "retry"]

_T = TypeVar("_T")


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first non-empty line of an error's message, cut to ``limit`` characters."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line[:limit]


def is_transient_error(exc: BaseException) -> bool:
    """The default classifier: a :class:`TransientError` that no retry has given up on yet."""
    return isinstance(exc, TransientError) and not exc.exhausted


def retry(
    fn: Callable[[], _T],
    *,
    what: str,
    on: Callable[[BaseException], bool] = is_transient_error,
    attempts: int | None = None,
    deadline_s: float | None = None,
    base_delay_s: float = 0.25,
    max_delay_s: float = 5.0,
    jitter: float = 0.5,
    gave_up: str | None = None,
    on_retry: Callable[[BaseException, float], None] | None = None,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], None] | None = None,
    rand: Callable[[], float] | None = None,
) -> _T:
    """Call ``fn`` until it succeeds, retrying transient failures with jittered exponential backoff.

    The n-th wait (n = 0, 1, ...) is ``min(max_delay_s, base_delay_s * 2**n)`` shortened by
    up to ``jitter`` of itself at random, so that many clients do not retry in step. No wait
    runs past the deadline: if the next one would, the helper gives up instead.

    Args:
        fn: The operation; must be safe to repeat.
        what: What is being done, for the give-up message (``"reading s3://b/k"``).
        on: Whether an exception is worth another attempt. Exceptions it rejects, and
            exhausted :class:`TransientError`, propagate unchanged.
        attempts: The most calls of ``fn`` (at least 1), or ``None`` for no count limit.
        deadline_s: The most seconds from the first call to giving up, or ``None``.
        base_delay_s: The first wait.
        max_delay_s: The longest wait.
        jitter: The fraction (0..1) by which a wait may be shortened at random.
        gave_up: Why it gave up, for the message; by default how many attempts over how long.
        on_retry: Called with the error and the coming wait before each retry (metrics, logs).
        clock: Monotonic seconds (default ``time.monotonic``; tests pass a fake clock).
        sleep: Waits that many seconds (default ``time.sleep``; tests advance the fake clock).
        rand: A number in [0, 1) for the jitter (default ``random.random``).

    Returns:
        What ``fn`` returned.

    Raises:
        TransientError: Still failing when the attempts or the deadline ran out; one line
            ``"{what}: {gave_up} ({last error})"``, marked ``exhausted``, the last error
            chained as its cause.
        ValueError: Neither ``attempts`` nor ``deadline_s`` bounds the retries (a bug).
        Exception: Whatever ``fn`` raised that ``on`` does not call transient, at once.
    """
    if attempts is None and deadline_s is None:
        raise ValueError("retry needs attempts or deadline_s: unbounded retries are not allowed")
    if attempts is not None and attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    # Looked up per call, not bound at import, so that tests can patch the time module.
    clock = clock or time.monotonic
    sleep = sleep or time.sleep
    rand = rand or random.random
    start = clock()
    tried = 0
    while True:
        tried += 1
        try:
            return fn()
        except Exception as e:
            if (isinstance(e, TransientError) and e.exhausted) or not on(e):
                raise
            delay = min(max_delay_s, base_delay_s * 2 ** (tried - 1))
            delay *= 1.0 - max(0.0, min(jitter, 1.0)) * rand()
            out_of_attempts = attempts is not None and tried >= attempts
            out_of_time = deadline_s is not None and clock() - start + delay > deadline_s
            if out_of_attempts or out_of_time:
                elapsed = clock() - start
                reason = (
                    gave_up or f"gave up after {tried} attempt{'s' if tried != 1 else ''} in {elapsed:.1f} s"
                )
                raise TransientError(f"{what}: {reason} ({first_line(e)})", exhausted=True) from e
            if on_retry is not None:
                on_retry(e, delay)
            sleep(delay)
