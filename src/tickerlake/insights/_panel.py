"""Long Arrow bars → a dates × tickers panel, keyed by the ticker column. No I/O.

Every insight starts here. The panel's columns are placed by the *value* of each row's
``ticker`` (dictionary codes), never by position in some wide frame, so a ticker's prices
can never be shown under another ticker's name.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tickerlake.insights.errors import (
    BadInput,
    DateOutsideData,
    EmptyWindow,
    NoData,
    NotATradingDay,
    UnknownTicker,
)
from tickerlake.insights.narrative import fmt_date, fmt_num, join_and

__all__ = [
    "MEASURES",
    "PRICE_MEASURES",
    "ActionNote",
    "Basis",
    "BasisInput",
    "Panel",
    "Returns",
    "SplitDay",
    "adjust_splits",
    "adjusted_for",
    "as_date",
    "basis",
    "basis_input",
    "basis_returns",
    "build_panel",
    "log_returns",
    "prev_index",
    "since",
    "split_days",
    "stored_returns",
    "trading_days_of",
    "window_bounds",
]

#: Price measures: levels whose day-to-day ratio is a return.
PRICE_MEASURES: tuple[str, ...] = ("close", "adj_close", "open", "high", "low")
#: Every measure an insight can be asked about.
MEASURES: tuple[str, ...] = (*PRICE_MEASURES, "volume")

# A split day's return is ignored when the raw jump prev/curr is within this log distance
# of the announced ratio (a 2:1 split shows prev/curr ≈ 2 in unadjusted prices; a normal
# day moves far less than 15% on top of it, and a matching crash on a split day is moot).
_SPLIT_LOG_TOLERANCE = 0.15


def as_date(value: object, what: str = "date") -> dt.date:
    """A date from a ``date``, ``datetime``, ``numpy.datetime64`` or ISO ``YYYY-MM-DD`` text.

    Raises:
        BadInput: The value is not a date.
    """
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, np.datetime64):
        day: dt.date = value.astype("datetime64[D]").astype(object)
        return day
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise BadInput(f"bad {what} {value!r}: expected YYYY-MM-DD") from None
    raise BadInput(f"bad {what} {value!r}: expected YYYY-MM-DD")


@dataclass(frozen=True, eq=False)
class Panel:
    """One measure of the bars as a dates × tickers matrix.

    Attributes:
        measure: The column the values come from.
        dates: Sorted trading days (``datetime64[D]``): the union of all tickers' dates.
        tickers: Sorted ticker symbols; column ``j`` of ``values`` belongs to ``tickers[j]``.
        values: ``(len(dates), len(tickers))`` float64; NaN where the ticker has no bar or a null value.
        has_row: Where the ticker has a bar at all (even with a null value).
    """

    measure: str
    dates: np.ndarray
    tickers: tuple[str, ...]
    values: np.ndarray
    has_row: np.ndarray
    _date_objs: list[dt.date] = field(default_factory=list, repr=False)
    _cols: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def valid(self) -> np.ndarray:
        """Where a usable value exists."""
        ok: np.ndarray = ~np.isnan(self.values)
        return ok

    @property
    def first_date(self) -> dt.date:
        """The first trading day."""
        return self.date(0)

    @property
    def last_date(self) -> dt.date:
        """The last trading day."""
        return self.date(len(self.dates) - 1)

    def date(self, i: int) -> dt.date:
        """Trading day ``i`` as a ``datetime.date``."""
        if not self._date_objs:
            self._date_objs.extend(self.dates.astype(object).tolist())
        return self._date_objs[i]

    def col(self, ticker: str) -> int:
        """The column of ``ticker``.

        Raises:
            UnknownTicker: Not in the data.
        """
        if not self._cols and self.tickers:
            # Built once: split_days and _applied look up a column per corporate action.
            self._cols.update((t, j) for j, t in enumerate(self.tickers))
        j = self._cols.get(ticker.strip().upper())
        if j is None:
            known = ", ".join(self.tickers)
            raise UnknownTicker(f"unknown ticker {ticker!r} (the data has {known})")
        return j

    def span(self) -> str:
        """The data range as prose, for error messages."""
        return f"{fmt_date(self.first_date)} to {fmt_date(self.last_date)}"

    def locate(self, d: dt.date) -> int:
        """The index of trading day ``d``.

        Raises:
            DateOutsideData: ``d`` is before the first or after the last bar.
            NotATradingDay: ``d`` is inside the data but nobody traded that day.
        """
        key = np.datetime64(d, "D")
        if key < self.dates[0] or key > self.dates[-1]:
            raise DateOutsideData(f"{fmt_date(d)} is outside the data ({self.span()})")
        i = int(np.searchsorted(self.dates, key))
        if self.dates[i] != key:
            before, after = self.date(i - 1), self.date(i)
            raise NotATradingDay(
                f"{fmt_date(d)} is not a trading day in the data "
                f"(previous: {fmt_date(before)}, next: {fmt_date(after)})"
            )
        return i

    def window(self, start: dt.date | None, end: dt.date | None) -> tuple[int, int]:
        """Indices ``[lo, hi)`` of the trading days with ``start <= date <= end`` (None = open end).

        Raises:
            BadInput: ``start`` is after ``end``.
            DateOutsideData: The window does not overlap the data at all.
            EmptyWindow: The window overlaps the data but holds no trading day.
        """
        if start is not None and end is not None and start > end:
            raise BadInput(f"the window starts ({fmt_date(start)}) after it ends ({fmt_date(end)})")
        return window_bounds(self.dates, start, end)


def window_bounds(dates: np.ndarray, start: dt.date | None, end: dt.date | None) -> tuple[int, int]:
    """Indices ``[lo, hi)`` of the sorted, non-empty ``datetime64[D]`` days within ``[start, end]``.

    Raises:
        DateOutsideData: The window does not overlap the days at all.
        EmptyWindow: The window overlaps the days but holds none of them.
    """
    lo = 0 if start is None else int(np.searchsorted(dates, np.datetime64(start, "D"), "left"))
    hi = len(dates) if end is None else int(np.searchsorted(dates, np.datetime64(end, "D"), "right"))
    if lo >= hi:
        s = fmt_date(start) if start else "the start"
        e = fmt_date(end) if end else "the end"
        first, last = dates[0].astype(object), dates[-1].astype(object)
        if (end is not None and end < first) or (start is not None and start > last):
            raise DateOutsideData(
                f"the window {s} to {e} is outside the data ({fmt_date(first)} to {fmt_date(last)})"
            )
        raise EmptyWindow(f"no trading day between {s} and {e}")
    return lo, hi


def _date_column(bars: pa.Table) -> pa.ChunkedArray:
    col = bars.column("date")
    if pa.types.is_date32(col.type):
        return col
    try:
        if pa.types.is_timestamp(col.type) or pa.types.is_date64(col.type):
            return pc.cast(col, pa.date32())
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            return pc.cast(pc.strptime(col, format="%Y-%m-%d", unit="s"), pa.date32())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise BadInput("the date column holds values that are not YYYY-MM-DD dates") from None
    raise BadInput(f"the date column has type {col.type}, expected date")


def build_panel(bars: pa.Table, measure: str = "close", tickers: Sequence[str] | None = None) -> Panel:
    """Pivot long bars into a panel of one measure, by the ticker column's values.

    Args:
        bars: Rows in the ``market.daily_bars`` schema (at least ticker, date and the measure).
        measure: The value column.
        tickers: Keep only these tickers (each must be present).

    Raises:
        BadInput: Unknown measure, missing column, null ticker/date, duplicate (ticker, date),
            or a non-positive price.
        NoData: No rows.
        UnknownTicker: A requested ticker is not in the data.
    """
    return _panels(bars, (measure,), tickers)[0]


def _panels(bars: pa.Table, measures: Sequence[str], tickers: Sequence[str] | None = None) -> list[Panel]:
    """:func:`build_panel` of each measure, from one layout (the same checks, in order)."""
    for measure in measures:
        if measure not in MEASURES:
            raise BadInput(f"unknown measure {measure!r} (one of {', '.join(MEASURES)})")
        for name in ("ticker", "date", measure):
            if name not in bars.column_names:
                raise BadInput(f"the bars lack the column {name!r}")
    if bars.num_rows == 0:
        raise NoData("no daily bars to analyse (is the lake empty? run ingest and etl first)")
    bars, layout = _layout(bars, tickers)
    return [
        Panel(m, layout.dates, layout.tickers, _scatter(bars, m, layout), layout.has_row) for m in measures
    ]


@dataclass(frozen=True, eq=False)
class _Layout:
    """Where each row of long bars lands in a dates × tickers matrix."""

    dates: np.ndarray
    tickers: tuple[str, ...]
    has_row: np.ndarray
    cell: np.ndarray


def _layout(bars: pa.Table, tickers: Sequence[str] | None) -> tuple[pa.Table, _Layout]:
    """The bars (filtered to ``tickers``) and their cells (see :func:`build_panel`)."""
    tick = bars.column("ticker")
    date = _date_column(bars)
    if tick.null_count or date.null_count:
        raise BadInput("the bars have rows without a ticker or a date")
    if pa.types.is_dictionary(tick.type):
        if not tickers:
            return bars, _place(_dictionary_columns(tick), date)
        tick = tick.cast(pa.string())
    tick_up = pc.utf8_upper(tick).combine_chunks()
    if tickers:
        wanted = sorted({t.strip().upper() for t in tickers})
        have = set(pc.unique(tick_up).to_pylist())
        missing = [t for t in wanted if t not in have]
        if missing:
            raise UnknownTicker(
                f"unknown ticker {', '.join(missing)} (the data has {', '.join(sorted(have))})"
            )
        keep = pc.is_in(tick_up, value_set=pa.array(wanted))
        bars, tick_up, date = bars.filter(keep), tick_up.filter(keep), date.filter(keep)
    encoded = tick_up.dictionary_encode()
    names = np.array(encoded.dictionary.to_pylist(), dtype=object)
    order = np.argsort(names, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    col_of_row = rank[encoded.indices.to_numpy(zero_copy_only=False)]
    return bars, _place((tuple(names[order].tolist()), col_of_row), date)


def _dictionary_columns(tick: pa.ChunkedArray) -> tuple[tuple[str, ...], np.ndarray]:
    """Sorted upper-case tickers and each row's column, from a dictionary-encoded ticker
    column (the names are looked at once each, not once per row)."""
    arr = tick.combine_chunks()
    codes = arr.indices.to_numpy(zero_copy_only=False)
    names = np.array(pc.utf8_upper(arr.dictionary).to_pylist(), dtype=object)
    used = np.zeros(len(names), dtype=bool)
    used[codes] = True
    # Only the names that occur, merged when they differ by case alone, sorted.
    sorted_names, inverse = np.unique(names[used], return_inverse=True)
    column = np.full(len(names), -1, dtype=np.int32)
    column[np.flatnonzero(used)] = inverse
    return tuple(sorted_names.tolist()), column[codes]


def _place(columns: tuple[tuple[str, ...], np.ndarray], date: pa.ChunkedArray) -> _Layout:
    """The layout of rows with these (sorted names, each row's column) and days."""
    names_sorted, col_of_row = columns
    # Days since the epoch (date32's storage): small integers over a span of decades, so a
    # presence table numbers them without the sort np.unique would need (millions of rows).
    ints = date.combine_chunks().view(pa.int32()).to_numpy(zero_copy_only=False)
    first = int(ints.min())
    offset = ints - first
    present = np.zeros(int(ints.max()) - first + 1, dtype=bool)
    present[offset] = True
    uniq_days = (np.flatnonzero(present) + first).astype("datetime64[D]")
    n_t, n_n = len(uniq_days), len(names_sorted)
    # One flat index into the (T, N) matrices: cheaper than two-axis fancy indexing. Built
    # in place from each day's row (a universe has millions of rows: no temporaries).
    cell = (np.cumsum(present, dtype=np.int64) - 1)[offset]
    del offset
    cell *= n_n
    cell += col_of_row
    has_row = np.zeros((n_t, n_n), dtype=bool)
    has_row.ravel()[cell] = True
    if int(np.count_nonzero(has_row)) != len(ints):
        # Only a bad input pays for the sort that names the first duplicate.
        key = np.sort(cell)
        dup = int(key[np.flatnonzero(key[1:] == key[:-1])[0]])
        who, when = names_sorted[dup % n_n], uniq_days[dup // n_n]
        raise BadInput(f"duplicate bar for {who} on {when}: the key (ticker, date) must be unique")
    return _Layout(uniq_days, names_sorted, has_row, cell)


def _scatter(bars: pa.Table, measure: str, layout: _Layout) -> np.ndarray:
    """One column of ``bars`` as the layout's matrix (NaN where no finite value).

    Chunk by chunk: a universe's column is tens of megabytes, and a whole-column copy
    (to combine its chunks, or to turn its nulls into NaN) would double it for nothing.

    Raises:
        BadInput: A non-positive price.
    """
    values = np.full(layout.has_row.shape, np.nan)
    flat = values.ravel()
    at = 0
    for chunk in pc.cast(bars.column(measure), pa.float64()).chunks:
        raw = chunk.to_numpy(zero_copy_only=False)
        bad = ~np.isfinite(raw)
        if bad.any():
            # In place where the conversion made a copy already (nulls).
            raw = raw if raw.flags.writeable else raw.copy()
            raw[bad] = np.nan
        if measure in PRICE_MEASURES and np.any(raw <= 0):
            row, col = divmod(int(layout.cell[at + int(np.argmax(raw <= 0))]), len(layout.tickers))
            who, when = layout.tickers[col], layout.dates[row]
            raise BadInput(f"{who} has a non-positive {measure} on {when}")
        flat[layout.cell[at : at + len(raw)]] = raw
        at += len(raw)
    return values


def since(bars: pa.Table, start: dt.date | None, before: int) -> pa.Table:
    """The bars from ``before`` trading days (of the bars' own days) before ``start`` on.

    All of them when ``start`` is None or the bars start later.
    """
    if start is None or bars.num_rows == 0 or "date" not in bars.column_names:
        return bars
    days = trading_days_of(bars)
    at = int(np.searchsorted(days, np.datetime64(start, "D"))) - before
    if at <= 0:
        return bars
    return bars.filter(pc.greater_equal(_date_column(bars), pa.scalar(days[at].astype(object), pa.date32())))


def trading_days_of(bars: pa.Table) -> np.ndarray:
    """The sorted distinct days of ``bars`` (``datetime64[D]``), numbered without a sort."""
    ints = _date_column(bars).combine_chunks().view(pa.int32()).to_numpy(zero_copy_only=False)
    if len(ints) == 0:
        return np.array([], dtype="datetime64[D]")
    first = int(ints.min())
    present = np.zeros(int(ints.max()) - first + 1, dtype=bool)
    present[ints - first] = True
    out: np.ndarray = (np.flatnonzero(present) + first).astype("datetime64[D]")
    return out


def prev_index(valid: np.ndarray) -> np.ndarray:
    """For each cell, the row of the same column's previous valid value (-1 if none).

    32-bit rows: a (T, N) index of a universe at half the memory (T is days, far below 2^31).
    """
    n_t = valid.shape[0]
    out = np.empty(valid.shape, dtype=np.int32)
    if n_t == 0:
        return out
    # In one (T, N) array: the running last valid row, then shifted down by a row.
    out[1:] = np.where(valid[:-1], np.arange(n_t - 1, dtype=np.int32)[:, None], np.int32(-1))
    out[0] = -1
    np.maximum.accumulate(out, axis=0, out=out)
    return out


@dataclass(frozen=True)
class SplitDay:
    """A split whose raw price jump was recognised and whose return is ignored.

    Attributes:
        ticker: The ticker.
        date: The split's effective date.
        ratio: New shares per old share.
    """

    ticker: str
    date: dt.date
    ratio: float


def split_days(
    panel: Panel, actions: pa.Table | None, prev: np.ndarray | None = None
) -> tuple[np.ndarray, list[SplitDay]]:
    """Cells whose day-over-day jump is explained by an announced split.

    The curated ``close`` is split-adjusted, so normally nothing matches; this guards
    against unadjusted prices reaching the engine. A split only masks a day when the
    unadjusted jump ``previous / current`` matches its ratio.

    Args:
        panel: A price panel.
        actions: Rows in the ``market.corporate_actions`` schema, or None.
        prev: :func:`prev_index` of the panel's valid values, when the caller has it.

    Returns:
        A boolean ``(T, N)`` mask and the matched splits.
    """
    mask = np.zeros(panel.values.shape, dtype=bool)
    found: list[SplitDay] = []
    if actions is None or actions.num_rows == 0 or panel.measure not in PRICE_MEASURES:
        return mask, found
    for name in ("ticker", "date", "action", "ratio"):
        if name not in actions.column_names:
            raise BadInput(f"the corporate actions lack the column {name!r}")
    valid = panel.valid
    prev = prev_index(valid) if prev is None else prev
    dates = _date_column(actions).to_pylist()
    for ticker, day, action, ratio in zip(
        actions.column("ticker").to_pylist(),
        dates,
        actions.column("action").to_pylist(),
        actions.column("ratio").to_pylist(),
        strict=True,
    ):
        if str(action).lower() != "split" or ratio is None or not ratio > 0 or ratio == 1 or day is None:
            continue
        key = np.datetime64(day, "D")
        t = int(np.searchsorted(panel.dates, key))
        if t >= len(panel.dates) or panel.dates[t] != key or ticker is None:
            continue
        try:
            j = panel.col(str(ticker))
        except UnknownTicker:
            continue
        p = prev[t, j]
        if not valid[t, j] or p < 0:
            continue
        jump = math.log(panel.values[p, j] / panel.values[t, j])
        if abs(jump - math.log(float(ratio))) < _SPLIT_LOG_TOLERANCE:
            mask[t, j] = True
            found.append(SplitDay(panel.tickers[j], panel.date(t), float(ratio)))
    return mask, found


@dataclass(frozen=True, eq=False)
class Returns:
    """Daily log returns of a panel.

    Attributes:
        r: ``(T, N)`` log return against the ticker's previous value; NaN on its first day,
            after a gap (when ``allow_gaps`` is off) and on ignored split days.
        prev: ``(T, N)`` row of the previous value (-1 if none).
        splits: Split days whose returns were ignored.
    """

    r: np.ndarray
    prev: np.ndarray
    splits: list[SplitDay]


def log_returns(panel: Panel, actions: pa.Table | None = None, allow_gaps: bool = False) -> Returns:
    """Log returns of each ticker against its own previous value.

    Args:
        panel: A price panel.
        actions: Corporate actions, to ignore split-day jumps in unadjusted prices.
        allow_gaps: Keep returns that span market days on which the ticker had no value.
    """
    v = panel.values
    valid = ~np.isnan(v)
    prev = prev_index(valid)
    rows = np.arange(v.shape[0])[:, None]
    ok = valid & (prev >= 0)
    if not allow_gaps:
        ok &= prev == rows - 1
    # In one (T, N) array: the previous value, the ratio, its log (a universe's panel is
    # tens of megabytes per copy).
    r = np.take_along_axis(v, np.maximum(prev, 0), axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(v, r, out=r)
        np.log(r, out=r)
    r[~ok] = np.nan
    mask, found = split_days(panel, actions, prev)
    r[mask] = np.nan
    return Returns(r, prev, found)


def basis_returns(
    bars: pa.Table, actions: pa.Table | None = None, allow_gaps: bool = False
) -> tuple[Panel, Returns]:
    """Daily log returns on a basis no corporate action can move, with the close panel they belong to.

    The one place that decides what a return is (every return-based insight calls it):

    * ``adj_close`` (split- and dividend-adjusted) wherever a ticker has it on both days,
      so neither a split nor a dividend — a special one included — is a move;
    * else ``close`` (split-adjusted in the curated table), with every split day whose
      raw jump matches its ratio — known, inferred or suspected alike — left without a
      return, in case unadjusted prices reach the engine.

    Args:
        bars: Rows in the ``market.daily_bars`` schema (``adj_close`` optional).
        actions: ``market.corporate_actions`` rows, or None.
        allow_gaps: Keep returns that span market days on which the ticker had no value.

    Returns:
        The ``close`` panel (the levels an insight shows) and the returns aligned with it.
    """
    panel = build_panel(bars, "close")
    rets = log_returns(panel, actions, allow_gaps)
    if "adj_close" in bars.column_names and bars.column("adj_close").null_count < bars.num_rows:
        adj = log_returns(build_panel(bars, "adj_close"), None, allow_gaps).r
        use = ~np.isnan(adj)
        rets.r[use] = adj[use]
    return panel, rets


def stored_returns(
    bars: pa.Table, actions: pa.Table | None, trading_days: np.ndarray
) -> tuple[Panel, Returns]:
    """:func:`basis_returns` from the returns the ETL stored (``market.daily_by_date``'s ``ret``).

    The stored return is the same definition computed once per bar (adj_close's on both
    days, else close's unless a split explains the jump; none after a gap of a market
    day). It counts here only where the panel's previous row is the market's previous
    trading day, as a return computed on the panel would (the panel's first row, and a
    row after days the bars skip, have none).

    Args:
        bars: ``ticker``, ``date``, ``close`` and ``ret`` (the log return on the basis).
        actions: ``market.corporate_actions`` rows (the split days recognised are reported).
        trading_days: The market's sorted trading days (``datetime64[D]``).

    Returns:
        The ``close`` panel and the returns aligned with it.
    """
    for name in ("ticker", "date", "close", "ret"):
        if name not in bars.column_names:
            raise BadInput(f"the bars lack the column {name!r}")
    if bars.num_rows == 0:
        raise NoData("no daily bars to analyse (is the lake empty? run ingest and etl first)")
    bars, layout = _layout(bars, None)
    panel = Panel("close", layout.dates, layout.tickers, _scatter(bars, "close", layout), layout.has_row)
    r = _scatter(bars, "ret", layout)
    at = np.searchsorted(trading_days, panel.dates)
    follows = np.zeros(len(panel.dates), dtype=bool)
    follows[1:] = at[1:] - 1 == at[:-1]
    r[~follows] = np.nan
    prev = prev_index(panel.valid)
    _, found = split_days(panel, actions, prev)
    return panel, Returns(r, prev, found)


def adjust_splits(panel: Panel, actions: pa.Table | None) -> tuple[Panel, list[SplitDay]]:
    """Back-adjust the values before each recognised split (as Yahoo's adjusted close does).

    Only splits whose ratio matches the raw jump are applied, so an already-adjusted
    ``close`` (the curated table's) passes through unchanged. Level-based insights
    (periods, ranks, extremes, recessions) use this; day-over-day ones ignore the day instead.

    Args:
        panel: A price panel.
        actions: Rows in the ``market.corporate_actions`` schema, or None.
    """
    _, found = split_days(panel, actions)
    if not found:
        return panel, found
    values = panel.values.copy()
    for split in found:
        t = int(np.searchsorted(panel.dates, np.datetime64(split.date, "D")))
        j = panel.col(split.ticker)
        values[:t, j] /= split.ratio
    return Panel(panel.measure, panel.dates, panel.tickers, values, panel.has_row), found


@dataclass(frozen=True)
class ActionNote:
    """A corporate action that a change across it was adjusted for.

    Attributes:
        ticker: The ticker.
        date: Its effective (ex-) date.
        action: ``split`` or ``dividend``.
        ratio: New shares per old share (splits).
        amount: Cash per share (dividends), when known.
        source: Where it came from (``inferred``, ``suspected``, a file...), when known.
    """

    ticker: str
    date: dt.date
    action: str
    ratio: float | None
    amount: float | None
    source: str | None

    def describe(self, owned: bool = False) -> str:
        """E.g. ``a $3.03 dividend on Nov 15, 2004``, or with ``owned``
        ``AAPL's suspected 2:1 split on Feb 28, 2005``."""
        if self.action == "split":
            r = self.ratio or 1.0
            ratio = f"{fmt_num(r)}:1" if r >= 1 else f"1:{fmt_num(1 / r)}"
            what = f"{'suspected ' if self.source == 'suspected' else ''}{ratio} split"
        else:
            what = f"${self.amount:.2f} dividend" if self.amount else "dividend"
        return (f"{self.ticker}'s " if owned else "a ") + f"{what} on {fmt_date(self.date)}"


def adjusted_for(notes: Sequence[ActionNote], name_tickers: bool = False, most: int = 3) -> str:
    """A clause ``adjusted for a $3.08 dividend on 15 Nov 2004`` ('' without notes).

    Args:
        notes: The actions.
        name_tickers: Say whose action each is (for totals over several tickers).
        most: List at most this many, then count the rest.
    """
    if not notes:
        return ""
    parts = [n.describe(owned=name_tickers) for n in notes[:most]]
    if len(notes) > most:
        parts.append(f"{len(notes) - most} more")
    return "adjusted for " + join_and(parts)


@dataclass(frozen=True, eq=False)
class Basis:
    """A measure's levels with the corporate-action factor that makes their changes returns.

    ``factor`` is 1 until a ticker's first corporate action and steps on each action day
    by the part of the day's move the action made (adj_close's return against close's, or
    a split's ratio in unadjusted prices), so ``values * factor`` is a series whose ratios
    are the returns of :func:`basis_returns`. A change from row ``t0`` to ``t1`` compares
    ``values[t1]`` (the level as it was) with :meth:`previous` — ``values[t0]`` adjusted for
    the actions in between, as a terminal's adjusted history shows it.

    Attributes:
        panel: The measure's panel (the levels shown).
        factor: ``(T, N)`` cumulative factor; None for volume (split-adjusted by the ETL, no dividends).
        actions: The actions applied, by ticker then date.
    """

    panel: Panel
    factor: np.ndarray | None
    actions: tuple[ActionNote, ...]
    _by_ticker: dict[str, list[ActionNote]] = field(default_factory=dict, repr=False)

    def _of(self, ticker: str) -> list[ActionNote]:
        if not self._by_ticker and self.actions:
            # Grouped once: views ask for one ticker's actions per ticker shown.
            for n in self.actions:
                self._by_ticker.setdefault(n.ticker, []).append(n)
        return self._by_ticker.get(ticker, [])

    def previous(self, t0: np.ndarray | int, t1: np.ndarray | int) -> np.ndarray:
        """Per ticker: the value on row ``t0`` (an int or one row per ticker) on row ``t1``'s basis."""
        cols = np.arange(len(self.panel.tickers))
        a = np.broadcast_to(np.asarray(t0), cols.shape)
        v: np.ndarray = self.panel.values[a, cols]
        if self.factor is None:
            return v.copy()
        b = np.broadcast_to(np.asarray(t1), cols.shape)
        out: np.ndarray = v * (self.factor[a, cols] / self.factor[b, cols])
        return out

    def as_of(self, t1: int) -> np.ndarray:
        """The whole panel on row ``t1``'s basis (row ``t1`` itself unchanged)."""
        if self.factor is None:
            return self.panel.values.copy()
        out: np.ndarray = self.factor / self.factor[t1]
        out *= self.panel.values
        return out

    def between(self, ticker: str, after: dt.date, upto: dt.date) -> tuple[ActionNote, ...]:
        """The ticker's applied actions with ``after < date <= upto``."""
        return tuple(n for n in self._of(ticker) if after < n.date <= upto)

    def across(self, tickers: Sequence[str], after: dt.date, upto: dt.date) -> tuple[ActionNote, ...]:
        """Applied actions of any of ``tickers`` with ``after < date <= upto``, by date."""
        found = [n for t in set(tickers) for n in self._of(t) if after < n.date <= upto]
        return tuple(sorted(found, key=lambda n: (n.date, n.ticker)))


@dataclass(frozen=True, eq=False)
class BasisInput:
    """The panels a :class:`Basis` is computed from (see :func:`basis_input`).

    Attributes:
        panel: The measure's panel.
        ref: The close's panel (the measure's own when it is close, or without a close).
        adj: The adj_close's panel, where the bars have adj_close values (else None).
    """

    panel: Panel
    ref: Panel
    adj: Panel | None


def basis_input(bars: pa.Table, measure: str = "close") -> BasisInput:
    """The panels :func:`basis` reads, from one pivot of ``bars`` (see :func:`build_panel`).

    A caller that holds the bars only for a basis can drop them once this exists: on a
    universe they are hundreds of megabytes.
    """
    if measure not in PRICE_MEASURES or measure == "adj_close":
        panel = build_panel(bars, measure)
        return BasisInput(panel, panel, None)
    with_close = "close" in bars.column_names
    extra = ["close"] if with_close and measure != "close" else []
    if (
        with_close
        and "adj_close" in bars.column_names
        and bars.column("adj_close").null_count < bars.num_rows
    ):
        extra.append("adj_close")
    panels = _panels(bars, [measure, *extra])
    ref = panels[1] if with_close and measure != "close" else panels[0]
    return BasisInput(panels[0], ref, panels[-1] if "adj_close" in extra else None)


def basis(bars: pa.Table | BasisInput, measure: str = "close", actions: pa.Table | None = None) -> Basis:
    """The measure's panel and the factor that puts any two of its days on one basis.

    The factor follows :func:`basis_returns` (the one definition of a return): where a
    ticker has ``adj_close`` on both days the day's return is adj_close's, so a dividend
    (a special one included) moves nothing; else the close's, with a recognised split's
    jump (known, inferred or suspected, in unadjusted prices) taken out — the day keeps
    its move net of the split. Given the corporate actions, the factor steps on their days
    only (elsewhere adj_close and close differ by rounding alone). ``open``, ``high`` and ``low`` share the close's factor
    (the ETL adjusts them together); ``adj_close`` needs none; volume is left as it is.

    Args:
        bars: Rows in the ``market.daily_bars`` schema, or their :func:`basis_input` (of the
            same ``measure``), when the caller would rather not keep the rows meanwhile.
        measure: The measure shown.
        actions: ``market.corporate_actions`` rows, or None.
    """
    data = bars if isinstance(bars, BasisInput) else basis_input(bars, measure)
    panel = data.panel
    if measure not in PRICE_MEASURES or measure == "adj_close":
        return Basis(panel, None, ())
    ref = data.ref
    rets = log_returns(ref, None, allow_gaps=True)
    raw = rets.r
    r = raw.copy()
    mask, found = split_days(ref, actions, rets.prev)
    del rets
    for sp in found:
        t, j = int(np.searchsorted(ref.dates, np.datetime64(sp.date, "D"))), ref.col(sp.ticker)
        r[t, j] = raw[t, j] + math.log(sp.ratio)
    use = np.zeros(r.shape, dtype=bool)
    if data.adj is not None:
        adj = log_returns(data.adj, None, allow_gaps=True).r
        # A recognised split jump in close means unadjusted prices reached the engine: the
        # day's move net of the split stands, whatever adj_close (the same feed) says.
        use = ~np.isnan(adj) & ~mask
        r[use] = adj[use]
        del adj
    # In place where it can be: a universe's panel is tens of megabytes per copy.
    step = np.subtract(r, raw)
    step[np.isnan(r) | np.isnan(raw)] = 0.0
    del r, raw
    notes, cells = _applied(ref, actions, mask, use)
    if actions is not None:
        # The ETL lists every split and dividend it sees in adj_close: on any other day the
        # two columns differ only by rounding, and a close shown as it was stays exact.
        step[~(cells | mask)] = 0.0
    np.cumsum(step, axis=0, out=step)
    np.exp(step, out=step)
    return Basis(panel, step, notes)


def _applied(
    panel: Panel, actions: pa.Table | None, split_mask: np.ndarray, adj_used: np.ndarray
) -> tuple[tuple[ActionNote, ...], np.ndarray]:
    """The actions the factor reflects — splits (the close is split-adjusted, or the jump was
    recognised; a suspected one only then) and dividends on days whose return is adj_close's —
    and the cells of every split or dividend row that falls on a trading day."""
    cells = np.zeros(panel.values.shape, dtype=bool)
    if actions is None or actions.num_rows == 0:
        return (), cells
    n = actions.num_rows

    def column(name: str) -> list[object]:
        # ticker, action and ratio were checked by split_days; amount and source are optional.
        return actions.column(name).to_pylist() if name in actions.column_names else [None] * n

    out: list[ActionNote] = []
    for ticker, day, action, ratio, amount, source in zip(
        column("ticker"),
        _date_column(actions).to_pylist(),
        column("action"),
        column("ratio"),
        column("amount"),
        column("source"),
        strict=True,
    ):
        kind = str(action).lower()
        if ticker is None or day is None or kind not in ("split", "dividend"):
            continue
        try:
            j = panel.col(str(ticker))
        except UnknownTicker:
            continue
        key = np.datetime64(day, "D")
        t = int(np.searchsorted(panel.dates, key))
        on_day = t < len(panel.dates) and panel.dates[t] == key
        if on_day:
            cells[t, j] = True
        if kind == "split" and source == "suspected" and not (on_day and split_mask[t, j]):
            continue
        if kind == "dividend" and not (on_day and adj_used[t, j]):
            continue
        out.append(
            ActionNote(
                panel.tickers[j],
                day,
                kind,
                float(ratio) if isinstance(ratio, (int, float)) else None,
                float(amount) if isinstance(amount, (int, float)) else None,
                str(source) if source is not None else None,
            )
        )
    return tuple(sorted(out, key=lambda a: (a.ticker, a.date))), cells
