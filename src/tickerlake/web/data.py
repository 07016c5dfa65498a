"""The web server's cache: finished JSON answers per lake state, around the service calls.

Reading the lake is the service layer's job (:class:`~tickerlake.service.market.MarketStore`
keeps each lake state's index and reads bars by the slice, for the CLI and the web alike).
What only a server needs is memory of its answers: a dashboard asks for the same things
over and over, and an answer costs milliseconds to seconds to compute but microseconds to
resend. So :class:`LakeCache` keeps an LRU of encoded answers keyed by the lake state's
fingerprint and the request (the selection, window and options), bounded by bytes, never
the table; any commit (ETL run, stream sink) gives a new fingerprint, and old answers go.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from tickerlake.config import Settings
from tickerlake.insights import Window
from tickerlake.jsonable import jsonable
from tickerlake.service.market import Loader, Market, MarketStore
from tickerlake.service.selection import all_windows

__all__ = ["RESULT_CACHE_BYTES", "LakeCache", "dumps", "dumps_plain"]

#: Encoded answers kept, in bytes (all answers together); a larger answer is sent, not kept.
RESULT_CACHE_BYTES = 64 * 1024 * 1024


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes of :func:`jsonable` ``obj``."""
    return json.dumps(jsonable(obj), separators=(",", ":"), allow_nan=False).encode()


def dumps_plain(obj: Any) -> bytes:
    """Compact JSON bytes of data that is already plain JSON types (the chart series).

    Skips :func:`jsonable`'s walk, which costs more than the encoding for long series;
    falls back to it should a NaN or a non-JSON value be in there after all.
    """
    try:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError):
        return dumps(obj)


class LakeCache:
    """The lake's state (through a :class:`MarketStore`) and finished answers per lake state.

    Thread-safe: the web server answers requests from a thread pool.

    Args:
        settings: Runtime settings.
        loader: Opens the lake's slices; defaults to the lake's Iceberg tables.
    """

    def __init__(self, settings: Settings, loader: Loader | None = None) -> None:
        self.settings = settings
        self.store = MarketStore(settings, loader)
        self._seen: Market | None = None
        self._results: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._results_lock = threading.Lock()
        self._bytes = 0
        self.hits = 0
        self.misses = 0
        self._computing = 0
        self._computed_at = -math.inf

    def idle_s(self) -> float:
        """Seconds since the last answer computed (0 while one is being computed): when
        background work (``serve``'s warm-up) can run without adding to an answer's memory."""
        with self._results_lock:
            return 0.0 if self._computing else time.monotonic() - self._computed_at

    def signature(self) -> Any:
        """The current lake state's fingerprint."""
        return self.store.signature()

    def market(self) -> Market:
        """The current lake state (see :meth:`MarketStore.market`)."""
        market = self.store.market()
        if market is not self._seen:
            # A new lake state: answers of the old one can never be asked for again.
            with self._results_lock:
                self._results.clear()
                self._bytes = 0
                self._seen = market
        return market

    def cached(self, key: tuple[Any, ...], compute: Callable[[Market], Any]) -> bytes:
        """The JSON answer for ``key`` in the current lake state, computed once.

        ``compute`` returns the answer as an object (encoded with :func:`dumps`) or as
        ready JSON bytes. Errors are not cached: they are cheap to recompute and must not
        outlive a fix.
        """
        market = self.market()
        full = (market.signature, *key)
        with self._results_lock:
            hit = self._results.get(full)
            if hit is not None:
                self._results.move_to_end(full)
                self.hits += 1
                return hit
        with self._results_lock:
            self._computing += 1
        try:
            answer = compute(market)
            body = answer if isinstance(answer, bytes) else dumps(answer)
        finally:
            with self._results_lock:
                self._computing -= 1
                self._computed_at = time.monotonic()
        with self._results_lock:
            self.misses += 1
            if len(body) <= RESULT_CACHE_BYTES and full not in self._results:
                self._results[full] = body
                self._bytes += len(body)
                while self._bytes > RESULT_CACHE_BYTES:
                    _, old = self._results.popitem(last=False)
                    self._bytes -= len(old)
        return body

    def windows(self) -> dict[str, Window]:
        """Built-in and user-defined analysis windows."""
        return all_windows(self.settings)
