"""Daily bars → synthetic intraday trades that add back up to the bars exactly. Pure numpy, no I/O.

For each valid bar with ``n`` ticks (``n >= 4``):

* the first tick trades at the open, at exactly 09:30:00 America/New_York; the last at the
  close, before 16:00; two distinct ticks in between trade exactly at the high and the low
  (which comes first is random);
* between those four anchors the price follows a Brownian bridge around the straight line
  joining them, clipped to ``[low, high]`` and rounded to 4 decimals, so the day's
  first/max/min/last prices are exactly open/high/low/close;
* times are strictly increasing microseconds inside the regular session (random gaps),
  converted to UTC with the day's own offset (EST or EDT);
* sizes are positive (heavy-tailed) and sum exactly to the bar's volume; when the volume
  is smaller than ``n`` some sizes are 0;
* ``seq`` counts each ticker's ticks, 1, 2, 3... from ``seq_start``.

Randomness is a counter-based hash (SplitMix64) of ``(seed, ticker, date, tick index)``,
so a day's ticks are the same whichever date range or ticker set is asked for, and the
whole computation is vectorised over a ``bars × n`` matrix (millions of ticks per second).
Early-close days are simulated as full sessions.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

__all__ = [
    "DEFAULT_TICKS_PER_BAR",
    "MARKET_TZ",
    "MIN_TICKS_PER_BAR",
    "SESSION_CLOSE",
    "SESSION_OPEN",
    "SESSION_US",
    "SkippedBar",
    "TickResult",
    "Ticks",
    "bars_to_ticks",
    "session_open_us",
]

MARKET_TZ = "America/New_York"
SESSION_OPEN = dt.time(9, 30)
SESSION_CLOSE = dt.time(16, 0)
#: Length of the regular session in microseconds (6.5 hours).
SESSION_US = 23_400_000_000
MIN_TICKS_PER_BAR = 4
#: One tick per session minute.
DEFAULT_TICKS_PER_BAR = 390

_EPOCH = dt.date(1970, 1, 1)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
# How far the bridge wanders between anchors, relative to the day's range.
_NOISE = 0.5
_SIZE_SPREAD = 1.2


@dataclass(frozen=True)
class Ticks:
    """Trades in emission order (by time, then ticker).

    Attributes:
        names: Ticker symbols; ``ticker`` indexes into them.
        ticker: int32 code of each tick's ticker.
        ts: Trade time, µs since the epoch (UTC).
        price: Trade price.
        size: Shares.
        seq: Per-ticker sequence number.
    """

    names: tuple[str, ...]
    ticker: np.ndarray
    ts: np.ndarray
    price: np.ndarray
    size: np.ndarray
    seq: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)

    def tickers(self) -> list[str]:
        """The ticker symbol of every tick."""
        return np.asarray(self.names, dtype=object)[self.ticker].tolist() if len(self) else []

    def slice(self, start: int, stop: int) -> Ticks:
        """Ticks ``start:stop``."""
        return Ticks(
            self.names,
            self.ticker[start:stop],
            self.ts[start:stop],
            self.price[start:stop],
            self.size[start:stop],
            self.seq[start:stop],
        )

    def to_arrow(self) -> pa.Table:
        """As an Arrow table: ticker, ts (timestamp[us, UTC]), price, size, seq."""
        return pa.table(
            {
                "ticker": pa.array(self.tickers(), pa.string()),
                "ts": pa.array(self.ts, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
                "price": pa.array(self.price, pa.float64()),
                "size": pa.array(self.size, pa.int64()),
                "seq": pa.array(self.seq, pa.int64()),
            }
        )


@dataclass(frozen=True)
class SkippedBar:
    """A bar that cannot be turned into ticks.

    Attributes:
        ticker: Its ticker.
        date: Its date.
        reason: Why (one line).
    """

    ticker: str
    date: dt.date | None
    reason: str


@dataclass(frozen=True)
class TickResult:
    """The output of :func:`bars_to_ticks`.

    Attributes:
        ticks: The trades, in emission order.
        next_seq: Per ticker, the ``seq`` the next tick would get (for the next chunk).
        skipped: Bars that were not used, with reasons.
        bars: Number of bars used.
    """

    ticks: Ticks
    next_seq: dict[str, int]
    skipped: list[SkippedBar]
    bars: int


# --------------------------------------------------------------------------- randomness


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, elementwise (uint64 arithmetic wraps, as intended)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    mixed: np.ndarray = x ^ (x >> np.uint64(31))
    return mixed


def _uniform(keys: np.ndarray, counters: np.ndarray) -> np.ndarray:
    """Uniform doubles in [0, 1), one per (key, counter) pair (broadcast)."""
    bits = _mix(keys + counters * _GOLDEN) >> np.uint64(11)
    return bits.astype(np.float64) * (1.0 / 9007199254740992.0)


def _ticker_key(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")


def _bar_keys(seed: int, ticker_keys: np.ndarray, days: np.ndarray) -> np.ndarray:
    seed_key = _mix(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))
    return _mix(_mix(seed_key ^ ticker_keys) + days.astype(np.uint64) * _GOLDEN)


# --------------------------------------------------------------------------- calendar


@lru_cache(maxsize=65536)
def _open_us(day: int) -> int:
    date = _EPOCH + dt.timedelta(days=day)
    local = dt.datetime.combine(date, SESSION_OPEN, tzinfo=ZoneInfo(MARKET_TZ))
    return int(local.timestamp()) * 1_000_000


def session_open_us(days: np.ndarray) -> np.ndarray:
    """09:30 America/New_York of each day (days since the epoch) as µs since the epoch, UTC."""
    days = np.asarray(days, dtype=np.int64)
    unique, inverse = np.unique(days, return_inverse=True)
    opens = np.array([_open_us(int(d)) for d in unique.tolist()], dtype=np.int64)
    return opens[inverse]


# --------------------------------------------------------------------------- bars


def _valid_bars(
    tickers: list[str],
    days: np.ndarray,
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    v: np.ndarray,
) -> tuple[np.ndarray, list[SkippedBar]]:
    """Mask of usable bars and the reasons for the others."""
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c)
        consistent = (lo > 0) & (lo <= np.minimum(o, c)) & (np.maximum(o, c) <= h)
        volume_ok = v >= 0
    ok = finite & consistent & volume_ok
    skipped = []
    for i in np.flatnonzero(~ok).tolist():
        date = _EPOCH + dt.timedelta(days=int(days[i]))
        if not finite[i]:
            why = "open, high, low and close are all needed"
        elif not volume_ok[i]:
            why = "volume is missing or negative"
        else:
            why = f"inconsistent prices (open {o[i]}, high {h[i]}, low {lo[i]}, close {c[i]})"
        skipped.append(SkippedBar(tickers[i], date, why))
    return ok, skipped


def _column(bars: pa.Table, name: str, dtype: type, fill: float | int) -> np.ndarray:
    col = bars.column(name)
    return np.asarray(col.fill_null(fill).to_numpy(), dtype=dtype)


def _empty(names: tuple[str, ...]) -> Ticks:
    e = np.zeros(0, dtype=np.int64)
    return Ticks(names, np.zeros(0, dtype=np.int32), e, np.zeros(0), e.copy(), e.copy())


def _emission_order(ts: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
    """Order by (time, ticker). Rows are already sorted runs, which a stable sort on one
    combined key merges quickly; lexsort is the fallback when the key could overflow."""
    limit = np.iinfo(np.int64).max // max(k, 1) - 1
    if len(ts) and -limit < int(ts.min()) and int(ts.max()) < limit:
        return np.argsort(ts * k + codes, kind="stable")
    return np.lexsort((codes, ts))


def bars_to_ticks(
    bars: pa.Table,
    ticks_per_bar: int = DEFAULT_TICKS_PER_BAR,
    seed: int = 42,
    seq_start: Mapping[str, int] | None = None,
) -> TickResult:
    """Synthesize the trades of each daily bar.

    Args:
        bars: Columns ``ticker``, ``date`` (date32), ``open``, ``high``, ``low``, ``close``,
            ``volume``; any order.
        ticks_per_bar: Trades per bar (at least :data:`MIN_TICKS_PER_BAR`).
        seed: Seed of the paths.
        seq_start: First ``seq`` per ticker (default 1).

    Returns:
        The ticks sorted by (time, ticker), the next ``seq`` per ticker, and the skipped
        bars (missing or inconsistent prices, negative volume, a repeated (ticker, date)).

    Raises:
        ValueError: If ``ticks_per_bar`` is below the minimum or a column is missing.
    """
    n = int(ticks_per_bar)
    if n < MIN_TICKS_PER_BAR:
        raise ValueError(f"ticks per bar must be at least {MIN_TICKS_PER_BAR}, got {ticks_per_bar}")
    missing = [
        c for c in ("ticker", "date", "open", "high", "low", "close", "volume") if c not in bars.column_names
    ]
    if missing:
        raise ValueError(f"bars lack column(s) {', '.join(missing)}")
    tickers_all = bars.column("ticker").to_pylist()
    days_all = np.asarray(bars.column("date").cast(pa.int32()).fill_null(0).to_numpy(), dtype=np.int64)
    null_date = np.asarray(bars.column("date").is_null().to_numpy(zero_copy_only=False), dtype=bool)
    o = _column(bars, "open", np.float64, np.nan)
    h = _column(bars, "high", np.float64, np.nan)
    lo = _column(bars, "low", np.float64, np.nan)
    c = _column(bars, "close", np.float64, np.nan)
    v = _column(bars, "volume", np.int64, -1)
    ok, skipped = _valid_bars(tickers_all, days_all, o, h, lo, c, v)
    for i in np.flatnonzero(null_date & ok).tolist():
        skipped.append(SkippedBar(tickers_all[i], None, "date is missing"))
    ok &= ~null_date
    null_ticker = np.array([t is None or t == "" for t in tickers_all], dtype=bool)
    for i in np.flatnonzero(null_ticker & ok).tolist():
        skipped.append(SkippedBar("", _EPOCH + dt.timedelta(days=int(days_all[i])), "ticker is missing"))
    ok &= ~null_ticker

    keep = np.flatnonzero(ok)
    names_arr, codes = np.unique(
        np.asarray([tickers_all[i] for i in keep.tolist()], dtype=object), return_inverse=True
    )
    names = tuple(str(x) for x in names_arr.tolist())
    days = days_all[keep]
    order = np.lexsort((days, codes))
    keep, codes, days = keep[order], codes[order].astype(np.int32), days[order]
    dup = np.zeros(len(keep), dtype=bool)
    if len(keep) > 1:
        dup[1:] = (codes[1:] == codes[:-1]) & (days[1:] == days[:-1])
    for j in np.flatnonzero(dup).tolist():
        date = _EPOCH + dt.timedelta(days=int(days[j]))
        skipped.append(SkippedBar(names[codes[j]], date, "repeated (ticker, date): the first bar is used"))
    keep, codes, days = keep[~dup], codes[~dup], days[~dup]
    starts = {name: int((seq_start or {}).get(name, 1)) for name in names}
    if not len(keep):
        return TickResult(_empty(names), starts, skipped, 0)

    o, h, lo, c, v = o[keep], h[keep], lo[keep], c[keep], v[keep]
    b = len(keep)
    tkeys = np.array([_ticker_key(x) for x in names], dtype=np.uint64)[codes]
    keys = _bar_keys(seed, tkeys, days)[:, None]
    col = np.arange(n, dtype=np.uint64)[None, :]

    # Per-bar draws (counters beyond any tick's): the high/low positions and the tail gap.
    bar_u = _uniform(keys, np.uint64(4 * n) + np.arange(3, dtype=np.uint64)[None, :])
    ih = 1 + np.floor(bar_u[:, 0] * (n - 2)).astype(np.int64)
    il = 1 + np.floor(bar_u[:, 1] * (n - 3)).astype(np.int64)
    il = il + (il >= ih)
    first_hi = ih < il
    a, bpos = np.minimum(ih, il), np.maximum(ih, il)
    va, vb = np.where(first_hi, h, lo), np.where(first_hi, lo, h)

    # Times: exponential gaps, scaled into the session; "+ index" keeps them strictly increasing.
    gaps = -np.log1p(-_uniform(keys, col * np.uint64(4)))
    gaps[:, 0] = 0.0
    cum = np.cumsum(gaps, axis=1)
    total = cum[:, -1] - np.log1p(-bar_u[:, 2])
    span = SESSION_US - n
    offsets = np.floor(cum / total[:, None] * span).astype(np.int64) + np.arange(n, dtype=np.int64)[None, :]
    ts = session_open_us(days)[:, None] + offsets

    # Two independent normals per tick (Box-Muller): one for the price path, one for sizes.
    r = np.sqrt(-2.0 * np.log1p(-_uniform(keys, col * np.uint64(4) + np.uint64(1))))
    theta = 2.0 * np.pi * _uniform(keys, col * np.uint64(4) + np.uint64(2))
    z_price, z_size = r * np.cos(theta), r * np.sin(theta)

    # Prices: a line through the anchors plus a Brownian bridge pinned to zero at each anchor.
    idx = np.arange(n, dtype=np.int64)[None, :]
    seg1 = idx <= a[:, None]
    seg2 = ~seg1 & (idx <= bpos[:, None])
    left = np.where(seg1, 0, np.where(seg2, a[:, None], bpos[:, None]))
    right = np.where(seg1, a[:, None], np.where(seg2, bpos[:, None], n - 1))
    vleft = np.where(seg1, o[:, None], np.where(seg2, va[:, None], vb[:, None]))
    vright = np.where(seg1, va[:, None], np.where(seg2, vb[:, None], c[:, None]))
    frac = (idx - left) / (right - left)
    walk = np.cumsum(z_price, axis=1)
    wl = np.take_along_axis(walk, left, axis=1)
    wr = np.take_along_axis(walk, right, axis=1)
    sigma = (h - lo) * (_NOISE / np.sqrt(n))
    price = vleft + (vright - vleft) * frac + ((walk - wl) - frac * (wr - wl)) * sigma[:, None]
    price = np.clip(np.round(np.clip(price, lo[:, None], h[:, None]), 4), lo[:, None], h[:, None])
    rows = np.arange(b)
    price[:, 0] = o
    price[rows, a] = va
    price[rows, bpos] = vb
    price[:, n - 1] = c

    # Sizes: cumulative shares of a heavy-tailed weight, floored, so they sum exactly to volume.
    weights = np.exp(_SIZE_SPREAD * z_size)
    cw = np.cumsum(weights, axis=1)
    base = (v >= n).astype(np.int64)
    rest = v - base * n
    q = np.floor(cw / cw[:, -1:] * rest[:, None].astype(np.float64)).astype(np.int64)
    q[:, -1] = rest
    size = np.diff(q, axis=1, prepend=0) + base[:, None]

    # seq: bars are sorted by (ticker, date), so a ticker's ticks are contiguous and in time order.
    first_of = np.r_[0, np.flatnonzero(codes[1:] != codes[:-1]) + 1]
    group_start = np.repeat(first_of, np.diff(np.r_[first_of, b]))
    start_seq = np.array([starts[names[k]] for k in codes[first_of].tolist()], dtype=np.int64)
    start_seq = np.repeat(start_seq, np.diff(np.r_[first_of, b]))
    seq = (start_seq + (np.arange(b) - group_start) * n)[:, None] + idx
    next_seq = dict(starts)
    last_of = np.r_[first_of[1:] - 1, b - 1]
    for k, last in zip(codes[first_of].tolist(), last_of.tolist(), strict=True):
        next_seq[names[k]] = int(seq[last, -1]) + 1

    flat_codes = np.repeat(codes, n)
    flat_ts = ts.ravel()
    emit = _emission_order(flat_ts, flat_codes, len(names))
    ticks = Ticks(
        names,
        flat_codes[emit],
        flat_ts[emit],
        price.ravel()[emit],
        size.ravel()[emit],
        seq.ravel()[emit],
    )
    return TickResult(ticks, next_seq, skipped, b)
