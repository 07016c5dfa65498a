"""One lake state, for every operation: its index up front, its bars by the slice.

A 5,700-ticker lake holds 34 million bars; no request needs them all. :class:`Market`
holds what every answer needs (tickers, trading days, corporate actions: a few hundred
kilobytes) and reads the bars each request needs — some tickers, some days, some
columns — through :class:`~tickerlake.lake.pushdown.LakeSlices` (DuckDB SQL over the
table's Parquet files, pruned by ticker and date). Recent slices are kept in an LRU
bounded by rows, so a dashboard that asks about the same selection twice reads it once.

:class:`MarketStore` keeps the :class:`Market` of the current lake state keyed by a cheap
fingerprint of the catalog: any commit (ETL run, stream sink) gives a new fingerprint and
the next call re-indexes. The CLI asks once per command and the web server once per lake
state, through the same store, so both read the same bars the same way.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tickerlake import __version__
from tickerlake.config import Settings
from tickerlake.insights import NoData, UnknownTicker, Window
from tickerlake.insights._panel import window_bounds
from tickerlake.lake.catalog import catalog_fingerprint
from tickerlake.lake.contract import ACTIONS, BAR_COLUMNS, BARS
from tickerlake.lake.pushdown import LakeSlices
from tickerlake.service.selection import all_windows, order_tickers, parse_tickers

__all__ = [
    "SLICE_CACHE_ROWS",
    "LakeMeta",
    "Loader",
    "Market",
    "MarketStore",
    "build_market",
    "lake_meta",
    "open_market",
    "windows",
]

#: Bars kept in a market's slice cache (all slices together): ~100 MB of Arrow at most.
SLICE_CACHE_ROWS = 1_500_000
# Remote catalogs are re-checked at most this often (a local SQLite file is checked every call).
_REMOTE_CHECK_S = 5.0

#: Opens the slices of a lake's current state; defaults to :meth:`LakeSlices.open`.
Loader = Callable[[Settings], LakeSlices]


@dataclass(frozen=True, eq=False)
class Market:
    """One lake state: its index, its corporate actions, and its bars by the slice.

    Attributes:
        signature: The catalog fingerprint the state was read at.
        slices: Reads bars of some tickers and days (SQL, pruned by ticker and date).
        actions: ``market.corporate_actions`` rows.
        tickers: The lake's tickers in display order.
        dates: Sorted trading days (``datetime64[D]``), the union over tickers.
        iso: ``dates`` as ISO strings (built once, reused by every answer).
        first: Each ticker's first day, by ticker.
        bar_count: How many bars the lake holds.
        loaded_at: Wall-clock time of the indexing (ISO).
    """

    signature: Any
    slices: LakeSlices
    actions: pa.Table
    tickers: tuple[str, ...]
    dates: np.ndarray
    iso: list[str]
    first: dict[str, dt.date]
    bar_count: int
    loaded_at: str = ""
    _cache: OrderedDict[tuple[Any, ...], pa.Table] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def empty(self) -> bool:
        """Whether the lake holds no bars."""
        return len(self.tickers) == 0

    @property
    def first_date(self) -> dt.date | None:
        """The first trading day."""
        return None if self.empty else self.dates[0].astype(object)

    @property
    def last_date(self) -> dt.date | None:
        """The last trading day."""
        return None if self.empty else self.dates[-1].astype(object)

    def require(self) -> None:
        """Raise :class:`NoData` when the lake holds no bars."""
        if self.empty:
            raise NoData("the lake holds no daily bars yet: run `tickerlake ingest sim` and `tickerlake etl`")

    def day(self, day: dt.date | None) -> dt.date:
        """``day``, or the last trading day when None.

        Raises:
            NoData: Empty lake.
        """
        self.require()
        last = self.last_date
        assert last is not None  # require() passed
        return day or last

    def date(self, i: int) -> dt.date:
        """Trading day ``i`` (clamped to the data) as a ``datetime.date``."""
        day: dt.date = self.dates[min(max(i, 0), len(self.dates) - 1)].astype(object)
        return day

    def select(self, tickers: str | None) -> tuple[str, ...]:
        """The lake's tickers named in comma-separated ``tickers`` (all when empty).

        Raises:
            NoData: Empty lake.
            BadInput, UnknownTicker: See :func:`~tickerlake.service.selection.parse_tickers`.
        """
        self.require()
        return parse_tickers(tickers, self.tickers)

    def col(self, ticker: str) -> int:
        """The position of ``ticker`` in :attr:`tickers`.

        Raises:
            UnknownTicker: Not in the lake.
        """
        try:
            return self.tickers.index(ticker)
        except ValueError:
            have = ", ".join(self.tickers[:20]) or "none: the lake is empty"
            more = f" and {len(self.tickers) - 20:,} more" if len(self.tickers) > 20 else ""
            raise UnknownTicker(f"unknown ticker {ticker!r} (the lake has {have}{more})") from None

    def rows(self, start: dt.date | None, end: dt.date | None) -> tuple[int, int]:
        """Indices ``[lo, hi)`` of the trading days in ``[start, end]``.

        Raises:
            NoData: Empty lake.
            DateOutsideData: The span does not overlap the data.
            EmptyWindow: The span overlaps the data but holds no trading day.
        """
        self.require()
        return window_bounds(self.dates, start, end)

    def _key(self, tickers: Sequence[str]) -> tuple[str, ...] | None:
        key = tuple(sorted(set(tickers)))
        return None if not key or len(key) == len(self.tickers) else key

    def _span_rows(self, start: dt.date | None, end: dt.date | None) -> int | None:
        """Rows of ``[start, end]`` over every ticker (None: an open start)."""
        if start is None or self.empty:
            return None
        lo = int(np.searchsorted(self.dates, np.datetime64(start, "D"), "left"))
        hi = (
            len(self.dates)
            if end is None
            else int(np.searchsorted(self.dates, np.datetime64(end, "D"), "right"))
        )
        return max(hi - lo, 0) * len(self.tickers)

    def bars_for(
        self,
        tickers: Sequence[str],
        start: dt.date | None = None,
        end: dt.date | None = None,
        columns: Sequence[str] = BAR_COLUMNS,
    ) -> pa.Table:
        """The long bars of some tickers (none or all: every ticker) in ``[start, end]``.

        Read through the slice cache; a slice larger than the cache is read and not kept.
        """
        key = (self._key(tickers), start, end, tuple(columns))
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        out = self.slices.bars(key[0], start, end, columns, self._span_rows(start, end))
        with self._lock:
            if out.num_rows <= SLICE_CACHE_ROWS:
                self._cache[key] = out
                total = sum(t.num_rows for t in self._cache.values())
                while total > SLICE_CACHE_ROWS and len(self._cache) > 1:
                    _, dropped = self._cache.popitem(last=False)
                    total -= dropped.num_rows
        return out

    def present(
        self,
        tickers: Sequence[str],
        start: dt.date | None,
        end: dt.date | None,
        columns: Sequence[str] = BAR_COLUMNS,
    ) -> pa.Table:
        """:meth:`bars_for` in ``[start, end]``, plus the first bar of each ticker without one there.

        An insight lists a ticker it cannot compare as excluded (with why): a ticker only
        present outside the window must still reach it, and one row of it does that
        without changing anything inside the window.
        """
        chosen = list(tickers) or list(self.tickers)
        bars = self.bars_for(chosen, start, end, columns)
        inside = set(pc.unique(bars.column("ticker")).to_pylist()) if bars.num_rows else set()
        absent = [t for t in chosen if t not in inside]
        if not absent:
            return bars
        return pa.concat_tables([bars, self.slices.firsts(absent, columns).cast(bars.schema)])

    def matrix(self, name: str, tickers: Sequence[str], lo: int, hi: int) -> np.ndarray:
        """Trading days ``[lo, hi)`` × ``tickers`` of one column, NaN where there is no value."""
        out = np.full((hi - lo, len(tickers)), np.nan)
        if hi <= lo or not tickers:
            return out
        bars = self.bars_for(tickers, self.date(lo), self.date(hi - 1))
        if bars.num_rows == 0 or name not in bars.column_names:
            return out
        col_of = {t: j for j, t in enumerate(tickers)}
        names = bars.column("ticker").to_numpy(zero_copy_only=False)
        cols = np.fromiter((col_of.get(t, -1) for t in names), dtype=np.int64, count=len(names))
        days = bars.column("date").to_numpy(zero_copy_only=False).astype("datetime64[D]")
        rows = np.searchsorted(self.dates, days) - lo
        raw = pc.cast(bars.column(name), pa.float64()).to_numpy(zero_copy_only=False)
        ok = cols >= 0
        out[rows[ok], cols[ok]] = np.where(np.isfinite(raw[ok]), raw[ok], np.nan)
        return out


def _market(slices: LakeSlices, signature: Any) -> Market:
    index = slices.index()
    loaded = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    tickers = order_tickers(index.tickers)
    first = {t: d.astype(object) for t, d in zip(index.tickers, index.first, strict=True)}
    iso = np.datetime_as_string(index.dates, unit="D").tolist()
    return Market(
        signature, slices, slices.actions(), tickers, index.dates, iso, first, int(index.rows.sum()), loaded
    )


def build_market(bars: pa.Table, actions: pa.Table | None = None, signature: Any = None) -> Market:
    """A :class:`Market` over in-memory bars (rows in the ``market.daily_bars`` schema).

    Raises:
        BadInput: Rows without a ticker or a date.
    """
    from tickerlake.insights import BadInput

    keep = [c for c in BAR_COLUMNS if c in bars.column_names]
    if bars.num_rows and (bars.column("ticker").null_count or bars.column("date").null_count):
        raise BadInput("the daily bars have rows without a ticker or a date")
    return _market(LakeSlices.of_tables(bars.select(keep), actions), signature)


def open_market(settings: Settings, signature: Any = None, loader: Loader | None = None) -> Market:
    """The :class:`Market` of a lake's current state."""
    return _market((loader or LakeSlices.open)(settings), signature)


def _metadata_locations(settings: Settings) -> Any:
    """The current metadata files of the curated tables (a remote catalog's state)."""
    from tickerlake.lake.catalog import load_table_or_none, open_catalog

    catalog = open_catalog(settings)
    out = []
    for name in (BARS.table, ACTIONS.table):
        table = load_table_or_none(catalog, name)
        out.append(table.metadata_location if table is not None else None)
    return tuple(out)


class MarketStore:
    """The :class:`Market` of a lake's current state, indexed on first use and after each commit.

    Thread-safe: the web server asks from a thread pool.

    Args:
        settings: Runtime settings.
        loader: Opens the lake's slices; defaults to :meth:`LakeSlices.open`.
    """

    def __init__(self, settings: Settings, loader: Loader | None = None) -> None:
        self.settings = settings
        self._loader = loader
        self._lock = threading.Lock()
        self._market: Market | None = None
        self._remote_sig: Any = None
        self._remote_checked = -math.inf

    def signature(self) -> Any:
        """The current lake state's fingerprint."""
        local = catalog_fingerprint(self.settings)
        if local is not None:
            return local
        # A remote catalog costs a round trip per check: re-checked at most every few seconds.
        now = time.monotonic()
        if now - self._remote_checked >= _REMOTE_CHECK_S:
            self._remote_sig = _metadata_locations(self.settings)
            self._remote_checked = now
        return self._remote_sig

    def market(self) -> Market:
        """The current lake state.

        Raises:
            NoData: No lake at the configured local path (nothing is created there).
        """
        sig = self.signature()
        current = self._market
        if current is not None and current.signature == sig:
            return current
        with self._lock:
            current = self._market
            if current is not None and current.signature == sig:
                return current
            if self.settings.is_local and not Path(self.settings.lake_uri.removeprefix("file://")).exists():
                raise NoData(
                    f"no lake at {self.settings.lake_uri}, so it holds no daily bars: "
                    "run `tickerlake ingest sim` and `tickerlake etl`"
                )
            # The old state's connection closes with its last reference (a request may still use it).
            self._market = open_market(self.settings, sig, self._loader)
            return self._market


# --------------------------------------------------------------------------- what the lake holds


@dataclass(frozen=True)
class LakeMeta:
    """What a lake holds.

    Attributes:
        version: tickerlake's version.
        lake: The lake's URI.
        tickers: Tickers in display order.
        first_date: First trading day (None: no bars).
        last_date: Last trading day.
        trading_days: Trading days in the union over tickers.
        rows: Daily bars.
        loaded_at: When the bars were read (ISO, UTC).
        windows: The named analysis windows.
    """

    version: str
    lake: str
    tickers: list[str]
    first_date: dt.date | None
    last_date: dt.date | None
    trading_days: int
    rows: int
    loaded_at: str
    windows: list[Window]


def windows(settings: Settings, defined: Sequence[str] = ()) -> list[Window]:
    """Built-in and user-defined analysis windows (``defined``: the CLI's extra definitions)."""
    return list(all_windows(settings, defined).values())


def lake_meta(market: Market, settings: Settings) -> LakeMeta:
    """Tickers, data range and windows of the lake state ``market`` was read at."""
    return LakeMeta(
        version=__version__,
        lake=settings.lake_uri,
        tickers=list(market.tickers),
        first_date=market.first_date,
        last_date=market.last_date,
        trading_days=len(market.dates),
        rows=market.bar_count,
        loaded_at=market.loaded_at,
        windows=windows(settings),
    )
