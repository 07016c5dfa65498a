"""The dashboard's data layer: the curated bars held in memory per lake state, and the
series the charts draw.

Reading ``market.daily_bars`` from Iceberg costs a few hundred milliseconds, computing an
insight tens of milliseconds; a dashboard asks for the same things over and over. So a
:class:`LakeCache` keeps the bars (long Arrow table for the insight functions, plus a
dates × tickers matrix per measure for the charts) and an LRU of finished JSON answers,
both keyed by a cheap fingerprint of the catalog: any commit (ETL run, stream sink) gives
a new fingerprint and the next request reloads.

The series helpers (:func:`line_series`, :func:`ohlc_series`) are pure functions of a
:class:`Market` and are unit-tested directly.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tickerlake.config import DEFAULT_TICKERS, Settings
from tickerlake.insights import (
    BUILTIN_WINDOWS,
    BadInput,
    NoData,
    UnknownTicker,
    Window,
    parse_windows,
    resolve_window,
)
from tickerlake.insights._panel import window_bounds
from tickerlake.insights.narrative import fmt_date
from tickerlake.jsonable import jsonable
from tickerlake.lake.catalog import catalog_fingerprint
from tickerlake.lake.contract import ACTIONS, BAR_COLUMNS, BARS, normalize_ticker, read_actions, read_bars

__all__ = [
    "BAR_COLUMNS",
    "LINE_MEASURES",
    "OHLC_MEASURES",
    "LakeCache",
    "Market",
    "Span",
    "build_market",
    "dumps",
    "dumps_plain",
    "jsonable",
    "line_series",
    "ohlc_series",
    "order_tickers",
    "parse_tickers",
    "resolve_span",
    "user_windows",
]

#: Measures of the line chart.
LINE_MEASURES: tuple[str, ...] = ("close", "adj_close", "volume", "normalised")
#: Measures a candlestick can be drawn in (volume has no candles).
OHLC_MEASURES: tuple[str, ...] = ("close", "adj_close", "normalised")

_PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close")
# Remote catalogs are re-checked at most this often (a local SQLite file is checked every request).
_REMOTE_CHECK_S = 5.0
_RESULT_CACHE_SIZE = 512


# --------------------------------------------------------------------------- JSON


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


# --------------------------------------------------------------------------- selection


def order_tickers(tickers: Sequence[str]) -> tuple[str, ...]:
    """Tickers in the customary FANGMANT order, then any others alphabetically."""
    rank = {t: i for i, t in enumerate(DEFAULT_TICKERS)}
    return tuple(sorted(set(tickers), key=lambda t: (rank.get(t, len(rank)), t)))


def parse_tickers(text: str | None, known: Sequence[str]) -> tuple[str, ...]:
    """A comma-separated ticker list checked against the lake's tickers.

    Args:
        text: ``"AAPL,msft"``; empty or None means every known ticker.
        known: The lake's tickers in display order.

    Returns:
        The tickers, upper-cased, without repeats, in the order of ``known``.

    Raises:
        BadInput: Text that cannot be a ticker symbol.
        UnknownTicker: A ticker the lake does not hold.
    """
    if text is None or not text.strip():
        return tuple(known)
    wanted: list[str] = []
    for raw in text.split(","):
        if not raw.strip():
            continue
        t = normalize_ticker(raw)
        if t is None:
            raise BadInput(f"bad ticker {raw.strip()[:20]!r}: expected a symbol such as AAPL")
        if t not in wanted:
            wanted.append(t)
    if not wanted:
        return tuple(known)
    missing = [t for t in wanted if t not in known]
    if missing:
        have = ", ".join(known) or "none: the lake is empty"
        raise UnknownTicker(f"unknown ticker {', '.join(missing)} (the lake has {have})")
    return tuple(t for t in known if t in wanted)


def user_windows(settings: Settings) -> dict[str, Window]:
    """User-defined analysis windows from the settings (when the setting exists)."""
    return parse_windows(str(getattr(settings, "recession_windows", "") or ""))


@dataclass(frozen=True)
class Span:
    """A resolved date selection.

    Attributes:
        start: First day asked for (None = the start of the data).
        end: Last day asked for (None = the end of the data).
        window: The named window it came from, if any.
        label: How to call it in prose.
    """

    start: dt.date | None
    end: dt.date | None
    window: str | None = None
    label: str = "the whole history"


def resolve_span(
    window: str | None,
    start: dt.date | None,
    end: dt.date | None,
    windows: Mapping[str, Window] | None = None,
) -> Span:
    """Combine a named window and explicit dates (explicit dates win over the window's).

    Raises:
        UnknownPeriod: Unknown window name.
        BadInput: The span starts after it ends.
    """
    name = None
    label = "the whole history"
    if window and window.strip() and window.strip().lower() not in ("all", "max"):
        w = resolve_window(window, windows)
        name, label = w.name, w.label
        start = start or w.start
        end = end or w.end
    if start is not None and end is not None and start > end:
        raise BadInput(f"the window starts ({fmt_date(start)}) after it ends ({fmt_date(end)})")
    if name is None and (start is not None or end is not None):
        s = fmt_date(start) if start else "the start"
        e = fmt_date(end) if end else "the end"
        label = f"{s} to {e}"
    return Span(start, end, name, label)


# --------------------------------------------------------------------------- market matrix


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
    keep = [c for c in BAR_COLUMNS if c in bars.column_names]
    bars = bars.select(keep)
    actions = actions if actions is not None else pa.table({})
    loaded = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if bars.num_rows == 0:
        empty = np.zeros((0, 0))
        return Market(signature, bars, actions, (), np.array([], dtype="datetime64[D]"), [],
                      {c: empty for c in (*_PRICE_COLUMNS, "volume")}, loaded)  # fmt: skip
    if bars.column("ticker").null_count or bars.column("date").null_count:
        raise BadInput("the daily bars have rows without a ticker or a date")
    names = pc.utf8_upper(bars.column("ticker")).to_numpy(zero_copy_only=False)
    tickers = order_tickers(np.unique(names).tolist())
    col_of = {t: j for j, t in enumerate(tickers)}
    cols = np.fromiter((col_of[t] for t in names), dtype=np.int64, count=len(names))
    days = bars.column("date").to_numpy(zero_copy_only=False).astype("datetime64[D]")
    dates, rows = np.unique(days, return_inverse=True)
    values: dict[str, np.ndarray] = {}
    for name in (*_PRICE_COLUMNS, "volume"):
        matrix = np.full((len(dates), len(tickers)), np.nan)
        if name in bars.column_names:
            raw = pc.cast(bars.column(name), pa.float64()).to_numpy(zero_copy_only=False)
            matrix[rows, cols] = np.where(np.isfinite(raw), raw, np.nan)
        values[name] = matrix
    iso = np.datetime_as_string(dates, unit="D").tolist()
    return Market(signature, bars, actions, tickers, dates, iso, values, loaded)


def _floats(v: np.ndarray, digits: int) -> list[float | None]:
    """Rounded floats as a list, None for NaN."""
    r = np.round(v, digits)
    out: list[float | None] = r.tolist()
    missing = np.flatnonzero(np.isnan(r))
    for i in missing.tolist():
        out[i] = None
    return out


def _ints(v: np.ndarray) -> list[int | None]:
    """Whole numbers as a list, None for NaN."""
    ok = ~np.isnan(v)
    out: list[int | None] = np.where(ok, v, 0).astype(np.int64).tolist()
    for i in np.flatnonzero(~ok).tolist():
        out[i] = None
    return out


def _stats(v: np.ndarray, iso: Sequence[str]) -> dict[str, Any]:
    """First/last value with dates, change, min and max of one series (NaNs skipped)."""
    ok = np.flatnonzero(~np.isnan(v))
    if len(ok) == 0:
        return {"first": None, "first_date": None, "last": None, "last_date": None,
                "change_pct": None, "min": None, "max": None}  # fmt: skip
    a, b = int(ok[0]), int(ok[-1])
    first, last = float(v[a]), float(v[b])
    return {
        "first": first,
        "first_date": iso[a],
        "last": last,
        "last_date": iso[b],
        "change_pct": (last / first - 1.0) * 100.0 if first else None,
        "min": float(np.nanmin(v)),
        "max": float(np.nanmax(v)),
    }


def _rebase(block: np.ndarray) -> np.ndarray:
    """Each column divided by its first value and times 100 (NaN before the first value)."""
    ok = ~np.isnan(block)
    first_row = np.argmax(ok, axis=0)
    base = block[first_row, np.arange(block.shape[1])]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok.any(axis=0) & (base > 0), block / base * 100.0, np.nan)


MEASURE_LABELS: dict[str, str] = {
    "close": "Close (split-adjusted)",
    "adj_close": "Adjusted close (splits and dividends)",
    "volume": "Volume (shares)",
    "normalised": "Close rebased to 100 at the window start",
}


def line_series(
    market: Market,
    tickers: Sequence[str],
    start: dt.date | None,
    end: dt.date | None,
    measure: str = "close",
    total: bool = False,
) -> dict[str, Any]:
    """One series per ticker for the line chart, on a shared date axis.

    Args:
        market: The lake's bars.
        tickers: Tickers to draw (each must be in the market).
        start: First day (None = first in the data).
        end: Last day (None = last in the data).
        measure: close, adj_close, volume, or normalised (close rebased to 100 at each
            ticker's first trading day in the window).
        total: Also return the total across the tickers (QuickSight's SUM) per day, over
            the tickers that have a value that day.

    Returns:
        ``{measure, label, start, end, dates, series: [{ticker, values, first, last, ...}], total}``.

    Raises:
        BadInput: Unknown measure, or a total of normalised values.
        NoData, DateOutsideData, EmptyWindow, UnknownTicker: See :meth:`Market.rows`.
    """
    if measure not in LINE_MEASURES:
        raise BadInput(f"unknown measure {measure!r} (one of {', '.join(LINE_MEASURES)})")
    if total and measure == "normalised":
        raise BadInput("a total of rebased values means nothing: ask for close, adj_close or volume")
    lo, hi = market.rows(start, end)
    cols = [market.col(t) for t in tickers]
    source = "close" if measure == "normalised" else measure
    block = market.values[source][lo:hi][:, cols]
    if measure == "normalised":
        block = _rebase(block)
    iso = market.iso[lo:hi]
    series = []
    for k, ticker in enumerate(tickers):
        v = block[:, k]
        values = _ints(v) if measure == "volume" else _floats(v, 3 if measure == "normalised" else 4)
        series.append({"ticker": ticker, "values": values, **_stats(v, iso)})
    out: dict[str, Any] = {
        "measure": measure,
        "label": MEASURE_LABELS[measure],
        "start": iso[0],
        "end": iso[-1],
        "days": hi - lo,
        "dates": iso,
        "series": series,
        "total": None,
    }
    if total:
        has = (~np.isnan(block)).any(axis=1)
        sums = np.where(has, np.nansum(block, axis=1), np.nan)
        out["total"] = {
            "values": _ints(sums) if measure == "volume" else _floats(sums, 4),
            "tickers": [int(n) for n in (~np.isnan(block)).sum(axis=1).tolist()],
            **_stats(sums, iso),
        }
    return out


def ohlc_series(
    market: Market,
    ticker: str,
    start: dt.date | None,
    end: dt.date | None,
    measure: str = "close",
) -> dict[str, Any]:
    """Open/high/low/close and volume of one ticker for a candlestick chart.

    The curated open/high/low/close are split-adjusted like ``close``. For ``adj_close``
    each day's four prices are scaled by that day's ``adj_close / close`` (as Yahoo's
    adjusted OHLC is); for ``normalised`` by ``100 / first close in the window``.

    Raises:
        BadInput: Unknown measure.
        NoData, DateOutsideData, EmptyWindow, UnknownTicker: See :meth:`Market.rows`.
    """
    if measure not in OHLC_MEASURES:
        raise BadInput(f"candles are drawn in {', '.join(OHLC_MEASURES)}, not {measure!r}")
    lo, hi = market.rows(start, end)
    j = market.col(ticker)
    close = market.values["close"][lo:hi, j]
    factor = np.ones_like(close)
    if measure == "adj_close":
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = market.values["adj_close"][lo:hi, j] / close
    elif measure == "normalised":
        ok = np.flatnonzero(~np.isnan(close))
        factor = factor * (100.0 / close[ok[0]] if len(ok) and close[ok[0]] > 0 else np.nan)
    keep = ~np.isnan(close)
    iso = [d for d, k in zip(market.iso[lo:hi], keep.tolist(), strict=True) if k]
    out: dict[str, Any] = {
        "ticker": ticker,
        "measure": measure,
        "label": MEASURE_LABELS[measure],
        "dates": iso,
    }
    for name in ("open", "high", "low", "close"):
        out[name] = _floats((market.values[name][lo:hi, j] * factor)[keep], 4)
    out["volume"] = _ints(market.values["volume"][lo:hi, j][keep])
    out.update(_stats(close[keep] * factor[keep], iso))
    return out


# --------------------------------------------------------------------------- the cache


class LakeCache:
    """The lake's bars and finished answers, reloaded when the catalog changes.

    Thread-safe: the web server answers requests from a thread pool.

    Args:
        settings: Runtime settings.
        loader: Reads ``(bars, corporate_actions)``; defaults to the lake's Iceberg tables.
    """

    def __init__(
        self,
        settings: Settings,
        loader: Callable[[Settings], tuple[pa.Table, pa.Table]] | None = None,
    ) -> None:
        self.settings = settings
        self._loader = loader or _read_lake
        self._lock = threading.Lock()
        self._market: Market | None = None
        self._remote_sig: Any = None
        self._remote_checked = -math.inf
        self._results: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._results_lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def signature(self) -> Any:
        """The current lake state's fingerprint."""
        local = catalog_fingerprint(self.settings)
        if local is not None:
            return local
        now = time.monotonic()
        if now - self._remote_checked >= _REMOTE_CHECK_S:
            self._remote_sig = _metadata_locations(self.settings)
            self._remote_checked = now
        return self._remote_sig

    def market(self) -> Market:
        """The bars of the current lake state (read on first use and after each commit).

        Raises:
            NoData: No lake at the configured local path.
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
                    f"no lake at {self.settings.lake_uri}: run `tickerlake ingest sim` and `tickerlake etl`"
                )
            bars, actions = self._loader(self.settings)
            self._market = build_market(bars, actions, sig)
            with self._results_lock:
                self._results.clear()
            return self._market

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
        answer = compute(market)
        body = answer if isinstance(answer, bytes) else dumps(answer)
        with self._results_lock:
            self.misses += 1
            self._results[full] = body
            while len(self._results) > _RESULT_CACHE_SIZE:
                self._results.popitem(last=False)
        return body

    def windows(self) -> dict[str, Window]:
        """Built-in and user-defined analysis windows."""
        return {**BUILTIN_WINDOWS, **user_windows(self.settings)}


def _read_lake(settings: Settings) -> tuple[pa.Table, pa.Table]:
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
