"""The curated bars of one lake state, loaded once per state, for every operation.

Reading ``market.daily_bars`` from Iceberg costs a few hundred milliseconds; pivoting it
into dates × tickers matrices a few more. :class:`MarketStore` keeps the resulting
:class:`Market` keyed by a cheap fingerprint of the catalog: any commit (ETL run, stream
sink) gives a new fingerprint and the next call reloads. The CLI asks once per command and
the web server once per lake state, through the same store, so both read the same bars the
same way.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
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
from tickerlake.lake.contract import ACTIONS, BAR_COLUMNS, BARS, read_actions, read_bars
from tickerlake.service.selection import all_windows, order_tickers, parse_tickers

__all__ = [
    "PRICE_COLUMNS",
    "LakeMeta",
    "Loader",
    "Market",
    "MarketStore",
    "build_market",
    "lake_meta",
    "read_lake",
    "windows",
]

#: The price columns of the curated bars (all split-adjusted like ``close``, but adj_close).
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "adj_close")
# Remote catalogs are re-checked at most this often (a local SQLite file is checked every call).
_REMOTE_CHECK_S = 5.0

#: Reads ``(bars, corporate_actions)`` of a lake.
Loader = Callable[[Settings], tuple[pa.Table, pa.Table]]


@dataclass(frozen=True, eq=False)
class Market:
    """The curated bars of one lake state, long and wide.

    Attributes:
        signature: The catalog fingerprint the data was read at.
        bars: Long bars (the ``BAR_COLUMNS``), for the insight functions.
        actions: ``market.corporate_actions`` rows.
        tickers: The lake's tickers in display order; column ``j`` of every matrix is ``tickers[j]``.
        dates: Sorted trading days (``datetime64[D]``), the union over tickers.
        iso: ``dates`` as ISO strings (built once, reused by every answer).
        values: Per column (open, high, low, close, adj_close, volume) a ``(days, tickers)``
            float matrix, NaN where the ticker has no bar or no value.
        loaded_at: Wall-clock time of the load (ISO).
    """

    signature: Any
    bars: pa.Table
    actions: pa.Table
    tickers: tuple[str, ...]
    dates: np.ndarray
    iso: list[str]
    values: dict[str, np.ndarray]
    loaded_at: str = ""
    _subsets: dict[tuple[str, ...], pa.Table] = field(default_factory=dict, repr=False)
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

    def select(self, tickers: str | None) -> tuple[str, ...]:
        """The lake's tickers named in comma-separated ``tickers`` (all when empty).

        Raises:
            NoData: Empty lake.
            BadInput, UnknownTicker: See :func:`~tickerlake.service.selection.parse_tickers`.
        """
        self.require()
        return parse_tickers(tickers, self.tickers)

    def col(self, ticker: str) -> int:
        """The matrix column of ``ticker``.

        Raises:
            UnknownTicker: Not in the lake.
        """
        try:
            return self.tickers.index(ticker)
        except ValueError:
            have = ", ".join(self.tickers) or "none: the lake is empty"
            raise UnknownTicker(f"unknown ticker {ticker!r} (the lake has {have})") from None

    def rows(self, start: dt.date | None, end: dt.date | None) -> tuple[int, int]:
        """Indices ``[lo, hi)`` of the trading days in ``[start, end]``.

        Raises:
            NoData: Empty lake.
            DateOutsideData: The span does not overlap the data.
            EmptyWindow: The span overlaps the data but holds no trading day.
        """
        self.require()
        return window_bounds(self.dates, start, end)

    def bars_for(self, tickers: Sequence[str]) -> pa.Table:
        """The long bars of some tickers (all of them: the whole table), cached per set."""
        key = tuple(sorted(tickers))
        if not key or set(key) == set(self.tickers):
            return self.bars
        with self._lock:
            hit = self._subsets.get(key)
            if hit is None:
                hit = self.bars.filter(pc.is_in(self.bars.column("ticker"), value_set=pa.array(list(key))))
                self._subsets[key] = hit
            return hit


def build_market(bars: pa.Table, actions: pa.Table | None = None, signature: Any = None) -> Market:
    """Pivot long bars into the per-measure matrices of a :class:`Market`.

    Args:
        bars: Rows in the ``market.daily_bars`` schema (key: ticker, date).
        actions: ``market.corporate_actions`` rows, if any.
        signature: The catalog fingerprint to remember.

    Raises:
        BadInput: Rows without a ticker or a date.
    """
    from tickerlake.insights import BadInput

    keep = [c for c in BAR_COLUMNS if c in bars.column_names]
    bars = bars.select(keep)
    actions = actions if actions is not None else pa.table({})
    loaded = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if bars.num_rows == 0:
        empty = np.zeros((0, 0))
        return Market(signature, bars, actions, (), np.array([], dtype="datetime64[D]"), [],
                      {c: empty for c in (*PRICE_COLUMNS, "volume")}, loaded)  # fmt: skip
    if bars.column("ticker").null_count or bars.column("date").null_count:
        raise BadInput("the daily bars have rows without a ticker or a date")
    names = pc.utf8_upper(bars.column("ticker")).to_numpy(zero_copy_only=False)
    tickers = order_tickers(np.unique(names).tolist())
    col_of = {t: j for j, t in enumerate(tickers)}
    cols = np.fromiter((col_of[t] for t in names), dtype=np.int64, count=len(names))
    days = bars.column("date").to_numpy(zero_copy_only=False).astype("datetime64[D]")
    dates, rows = np.unique(days, return_inverse=True)
    values: dict[str, np.ndarray] = {}
    for name in (*PRICE_COLUMNS, "volume"):
        matrix = np.full((len(dates), len(tickers)), np.nan)
        if name in bars.column_names:
            raw = pc.cast(bars.column(name), pa.float64()).to_numpy(zero_copy_only=False)
            matrix[rows, cols] = np.where(np.isfinite(raw), raw, np.nan)
        values[name] = matrix
    iso = np.datetime_as_string(dates, unit="D").tolist()
    return Market(signature, bars, actions, tickers, dates, iso, values, loaded)


def read_lake(settings: Settings) -> tuple[pa.Table, pa.Table]:
    """The curated bars and corporate actions from the lake's Iceberg tables."""
    return read_bars(settings), read_actions(settings)


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
    """The :class:`Market` of a lake's current state, read on first use and after each commit.

    Thread-safe: the web server asks from a thread pool.

    Args:
        settings: Runtime settings.
        loader: Reads ``(bars, corporate_actions)``; defaults to :func:`read_lake`.
    """

    def __init__(self, settings: Settings, loader: Loader | None = None) -> None:
        self.settings = settings
        self._loader = loader or read_lake
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
        """The bars of the current lake state.

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
            bars, actions = self._loader(self.settings)
            self._market = build_market(bars, actions, sig)
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
        rows=market.bars.num_rows,
        loaded_at=market.loaded_at,
        windows=windows(settings),
    )
