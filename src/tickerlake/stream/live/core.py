"""The live view's state, folded from trades: sessions, VWAP, event-time bars and anomaly scores. Pure.

:class:`LiveBook` keeps, per ticker and in bounded memory:

* the **session** (the UTC date of the trades; US sessions never cross it): open, high,
  low and last by event time, volume, VWAP, and the change against the previous close
  (the last price of the ticker's previous session in the stream, else what the
  ``previous_close`` lookup answers, e.g. the lake's daily close); a trade of a session that
  is over is counted (:attr:`LiveBook.stale`, and late), never mixed into today's figures;
* **bars** per timeframe (1 and 5 minutes by default): tumbling windows aligned on the
  epoch, on *event* time. Open, close, high, low, volume and trades of a window are
  exactly those of its trades, whatever order they arrive in, so the bars equal the ones
  SQL computes from ``stream.ticks`` (open/close are the trades with the smallest/largest
  ``(ts, seq)``). A window closes once the ticker's own watermark (its latest event time;
  Kafka keeps one ticker's events in order in one partition) passes the window's end plus
  the allowed lateness. A trade for a window that is already closed is *late*: it is
  counted (per ticker and in total, per timeframe) and not applied to that window. Windows
  without trades make no bar (a gap, never an invented flat bar). A ticker that goes quiet
  keeps its last window open, since nothing says it is complete, and is flagged ``quiet``
  once the book's market clock (:attr:`LiveBook.clock_us`: the median of the tickers'
  latest event times, so one ticker stamped far ahead does not make all others quiet) is
  :attr:`LiveConfig.quiet_after_us` past its last trade;
* an **anomaly score** for every closed bar of the first timeframe: the robust z-score of
  the bar's log return (close against the previous bar's close, within one session, so
  the overnight gap never counts) against the ticker's last :attr:`LiveConfig.history`
  returns: ``z = (r - median) / σ`` with a robust σ (below). A bar with ``|z| >=``
  :attr:`LiveConfig.alert_z`, a move of at least :attr:`LiveConfig.alert_min_move_pct`
  (a ticker whose price sits still for an hour has a tiny σ, and its first ordinary
  0.1 % tick is no news) and at least :attr:`LiveConfig.min_history` returns of history
  raises an :class:`Alert`.

Why a median/MAD z-score rather than mean/standard deviation or an online learner such as
``river``: intraday returns are fat-tailed, and a jump inflates the standard deviation it is
measured against (one 10 % move in 60 quiet minutes lifts the std enough to hide itself and
the next one), while the median and the MAD ignore up to half the history being outliers.
The rolling history follows volatility regimes (a calm morning, a wild afternoon), it costs
O(history) per closed bar, it is deterministic (the same trades give the same alerts, which
the tests rely on) and its unit, "robust standard deviations", is one a trader reads at a
glance; an online detector's anomaly score has no such unit and needs tuning per ticker.
σ is 1.4826 × the larger of the MAD and the median absolute return. The MAD alone fails on
the commonest shape of intraday returns: a price flipping between two ticks (bid-ask
bounce) gives returns in two tight clusters, +a and -a; the MAD then measures the width of
one cluster (almost 0) and would call the next ordinary flip a 13σ event, while the median
absolute return measures the flips themselves (a). When both are 0 (more than half the
returns are exactly 0: a thinly traded ticker whose price sits still) σ falls back to
1.2533 × the mean absolute deviation from the median (Iglewicz and Hoaglin's modified
z-score), and σ is floored at 1.4826 basis points so that a perfectly flat price does not
turn the first cent of movement into an infinite score.

Memory is bounded: :attr:`LiveConfig.bars_kept` closed bars per ticker and timeframe,
:attr:`LiveConfig.history` returns per ticker, :attr:`LiveConfig.alerts_kept` alerts, and
at most :attr:`LiveConfig.max_tickers` tickers (trades of further tickers are counted in
:attr:`LiveBook.dropped`, not kept).
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = [
    "DAY_US",
    "Alert",
    "Bar",
    "Changes",
    "LiveBook",
    "LiveConfig",
    "Quote",
    "robust_z",
    "window_start",
]

DAY_US = 86_400_000_000
_MINUTE_US = 60_000_000
_NEVER = 2**63 - 1
# Smaller batches are folded trade by trade: numpy's per-call cost would not pay off.
_FAST_FROM = 64
# 1.4826 · MAD and 1.2533 · mean absolute deviation estimate the standard deviation of normal data.
_MAD_TO_SIGMA = 1.4826
_MEAN_AD_TO_SIGMA = 1.2533
# The smallest σ used (one basis point of MAD): a flat history scores movement finitely.
_MIN_SIGMA = _MAD_TO_SIGMA * 1e-4


@dataclass(frozen=True)
class LiveConfig:
    """Windows, lateness, scoring and memory bounds of a :class:`LiveBook`.

    Attributes:
        timeframes_s: Bar widths in seconds; the first is scored for anomalies.
        allowed_lateness_us: How long after its end (in the ticker's event time) a window
            still takes trades.
        bars_kept: Closed bars kept per ticker and timeframe.
        history: Returns per ticker that a new return is scored against.
        min_history: Returns needed before a bar can raise an alert.
        alert_z: Robust z-score (absolute) from which a bar raises an alert.
        alert_min_move_pct: Smallest absolute return (percent) that raises an alert.
        quiet_after_us: Event time without trades after which a ticker is quiet.
        max_tickers: Tickers tracked at most.
        alerts_kept: Alerts kept (newest).
    """

    timeframes_s: tuple[int, ...] = (60, 300)
    allowed_lateness_us: int = 2_000_000
    bars_kept: int = 390
    history: int = 60
    min_history: int = 20
    alert_z: float = 6.0
    alert_min_move_pct: float = 0.25
    quiet_after_us: int = 5 * _MINUTE_US
    max_tickers: int = 5_000
    alerts_kept: int = 200

    def __post_init__(self) -> None:
        if not self.timeframes_s or any(t <= 0 for t in self.timeframes_s):
            raise ValueError(f"timeframes must be positive seconds, got {self.timeframes_s}")
        if self.allowed_lateness_us < 0:
            raise ValueError("allowed lateness must not be negative")
        if self.min_history < 2 or self.history < self.min_history:
            raise ValueError("need 2 <= min_history <= history")


@dataclass(slots=True)
class Bar:
    """One window of one ticker's trades.

    Attributes:
        start_us: Window start, µs since the epoch (inclusive; the end is start + width).
        open: Price of the trade with the smallest ``(ts, seq)``.
        high: Highest price.
        low: Lowest price.
        close: Price of the trade with the largest ``(ts, seq)``.
        volume: Shares.
        trades: Trades.
        notional: Sum of price × size (the VWAP's numerator).
        first: ``(ts, seq)`` of the opening trade.
        last: ``(ts, seq)`` of the closing trade.
        final: Whether the window is closed (no trade will change it).
        z: Robust z-score of its return (scored timeframe, closed bars with a previous bar).
    """

    start_us: int
    open: float
    high: float
    low: float
    close: float
    volume: int
    trades: int
    notional: float
    first: tuple[int, int]
    last: tuple[int, int]
    final: bool = False
    z: float | None = None

    @property
    def vwap(self) -> float | None:
        """Volume-weighted average price (None without volume)."""
        return self.notional / self.volume if self.volume else None

    def add(self, ts_us: int, seq: int, price: float, size: int) -> None:
        """Fold one trade in (any order)."""
        key = (ts_us, seq)
        if key < self.first:
            self.first, self.open = key, price
        if key >= self.last:
            self.last, self.close = key, price
        if price > self.high:
            self.high = price
        if price < self.low:
            self.low = price
        self.volume += size
        self.trades += 1
        self.notional += price * size

    def extend(
        self,
        last: tuple[int, int],
        close: float,
        high: float,
        low: float,
        volume: int,
        trades: int,
        notional: float,
    ) -> None:
        """Fold in a run of trades that all come after this bar's last one, given as its aggregates."""
        self.last, self.close = last, close
        if high > self.high:
            self.high = high
        if low < self.low:
            self.low = low
        self.volume += volume
        self.trades += trades
        self.notional += notional


def _new_bar(start_us: int, ts_us: int, seq: int, price: float, size: int) -> Bar:
    key = (ts_us, seq)
    return Bar(start_us, price, price, price, price, size, 1, price * size, key, key)


@dataclass(frozen=True)
class Alert:
    """A bar whose return is far outside its ticker's recent history.

    Attributes:
        ticker: Symbol.
        timeframe_s: Bar width.
        start_us: Start of the bar.
        close: Its close.
        previous_close: Close of the bar before it.
        ret_pct: Its return, percent.
        z: Robust z-score.
        median_pct: Median return of the history, percent.
        sigma_pct: Its robust standard deviation σ, percent (a typical move).
    """

    ticker: str
    timeframe_s: int
    start_us: int
    close: float
    previous_close: float
    ret_pct: float
    z: float
    median_pct: float
    sigma_pct: float


@dataclass(frozen=True)
class Quote:
    """A ticker's session as the tape shows it.

    Attributes:
        ticker: Symbol.
        day: Session, days since the epoch (UTC date of its trades).
        open: First price of the session.
        high: Highest price.
        low: Lowest price.
        last: Latest price (by event time).
        previous_close: Close of the previous session (None when unknown).
        change: Last minus previous close (None when unknown).
        change_pct: The same in percent.
        vwap: Session VWAP (None without volume).
        volume: Session shares.
        trades: Session trades.
        last_ts_us: Time of the latest trade.
        z: Score of the latest scored bar.
        late: Trades that came after their window closed (all timeframes).
        quiet: Whether the ticker has not traded for a while (in the book's event time).
    """

    ticker: str
    day: int
    open: float
    high: float
    low: float
    last: float
    previous_close: float | None
    change: float | None
    change_pct: float | None
    vwap: float | None
    volume: int
    trades: int
    last_ts_us: int
    z: float | None
    late: int
    quiet: bool


@dataclass
class Changes:
    """What changed since the last :meth:`LiveBook.drain`.

    Attributes:
        tickers: Tickers with new trades (sorted).
        closed: ``(ticker, timeframe_s, bar)`` of windows that closed, in closing order.
        alerts: New alerts.
        events: Trades applied.
        late: Late trades counted.
    """

    tickers: list[str] = field(default_factory=list)
    closed: list[tuple[str, int, Bar]] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    events: int = 0
    late: int = 0


def window_start(ts_us: int, width_us: int) -> int:
    """Start of the tumbling window (aligned on the epoch) that holds ``ts_us``."""
    return ts_us - ts_us % width_us


def robust_z(value: float, history: Sequence[float]) -> tuple[float, float, float]:
    """Robust z-score of ``value`` against ``history`` (see the module docstring for σ).

    Returns:
        ``(z, median, σ)``.

    Raises:
        ValueError: Empty history.
    """
    if not history:
        raise ValueError("robust_z needs a history")
    med = statistics.median(history)
    deviations = [abs(h - med) for h in history]
    spread = max(statistics.median(deviations), statistics.median([abs(h) for h in history]))
    sigma = _MAD_TO_SIGMA * spread if spread > 0 else _MEAN_AD_TO_SIGMA * statistics.fmean(deviations)
    sigma = max(sigma, _MIN_SIGMA)
    return (value - med) / sigma, med, sigma


class _Frame:
    """One timeframe of one ticker: open windows by start, closed bars (bounded)."""

    __slots__ = ("closed", "first_end", "late", "open", "width_us")

    def __init__(self, width_us: int, kept: int) -> None:
        self.width_us = width_us
        self.open: dict[int, Bar] = {}
        self.closed: deque[Bar] = deque(maxlen=kept)
        self.late = 0
        # End of the earliest open window: nothing can close before the horizon passes it.
        self.first_end = _NEVER


class _Ticker:
    """One ticker's running state."""

    __slots__ = ("day", "frames", "previous_close", "ref", "returns", "session", "watermark", "z")

    def __init__(self, config: LiveConfig) -> None:
        self.frames = [_Frame(t * 1_000_000, config.bars_kept) for t in config.timeframes_s]
        self.returns: deque[float] = deque(maxlen=config.history)
        self.day = -1
        self.watermark = -(2**62)
        self.previous_close: float | None = None
        # (day, close) of the last closed bar of the scored timeframe: the base of the next return.
        self.ref: tuple[int, float] | None = None
        self.z: float | None = None
        self._reset_session(-1, 0, 0, 0.0)

    def _reset_session(self, day: int, ts_us: int, seq: int, price: float) -> None:
        self.day = day
        # The session is a bar as wide as the day, empty until its first trade is folded in.
        key = (ts_us, seq)
        self.session = Bar(day * DAY_US, price, price, price, price, 0, 0, 0.0, key, key)


class LiveBook:
    """Per-ticker live state folded from trades (see the module docstring).

    Args:
        config: Windows, lateness, scoring, bounds.
        previous_close: ``(ticker, session day) -> close`` of the session before, asked
            when a ticker's first session in the stream starts (None: unknown).
        fast: Fold in-order runs window by window (False: trade by trade, the reference).
    """

    def __init__(
        self,
        config: LiveConfig | None = None,
        previous_close: Callable[[str, int], float | None] | None = None,
        fast: bool = True,
    ) -> None:
        self.config = config or LiveConfig()
        self._fast = fast
        self._previous_close = previous_close
        self._tickers: dict[str, _Ticker] = {}
        self.alerts: deque[Alert] = deque(maxlen=self.config.alerts_kept)
        #: Trades applied, late trades (per timeframe counted once each), trades of untracked tickers.
        self.events = 0
        self.late = 0
        self.stale = 0
        self.dropped = 0
        #: The latest event time of any ticker.
        self.watermark_us: int | None = None
        self._changes = Changes()
        self._dirty: set[str] = set()
        # (events when computed, value) of :attr:`clock_us`.
        self._clock: tuple[int, int | None] = (-1, None)

    # ------------------------------------------------------------------ folding

    def apply(
        self,
        tickers: Sequence[str],
        ts_us: Sequence[int] | npt.NDArray[np.int64],
        price: Sequence[float] | npt.NDArray[np.float64],
        size: Sequence[int] | npt.NDArray[np.int64],
        seq: Sequence[int] | npt.NDArray[np.int64],
    ) -> None:
        """Fold trades in, in arrival order (columns of equal length).

        Each ticker's trades of the batch that arrive in order, all at or after its
        watermark (the common case: Kafka keeps a ticker in order) are folded window by
        window with numpy; any other run (late or out-of-order trades, a session that is
        over) trade by trade. Both give the same state (a unit test compares them).
        """
        if not (len(tickers) == len(ts_us) == len(price) == len(size) == len(seq)):
            raise ValueError("trade columns differ in length")
        if not self._fast or len(tickers) < _FAST_FROM:
            for name, ts, p, s, q in zip(tickers, ts_us, price, size, seq, strict=True):
                self._one(name, int(ts), float(p), int(s), int(q))
            return
        ts_a = np.asarray(ts_us, dtype=np.int64)
        p_a = np.asarray(price, dtype=np.float64)
        s_a = np.asarray(size, dtype=np.int64)
        q_a = np.asarray(seq, dtype=np.int64)
        names, codes = np.unique(np.asarray(tickers, dtype=object), return_inverse=True)
        order = np.argsort(codes, kind="stable")
        for group in np.split(order, np.flatnonzero(np.diff(codes[order])) + 1):
            self._run(str(names[codes[group[0]]]), ts_a[group], p_a[group], s_a[group], q_a[group])

    def _run(
        self,
        name: str,
        ts: npt.NDArray[np.int64],
        p: npt.NDArray[np.float64],
        s: npt.NDArray[np.int64],
        q: npt.NDArray[np.int64],
    ) -> None:
        """One ticker's trades of a batch, in arrival order."""
        st = self._tickers.get(name)
        in_order = bool(np.all((ts[1:] > ts[:-1]) | ((ts[1:] == ts[:-1]) & (q[1:] >= q[:-1]))))
        if (
            st is None
            or not in_order
            or int(ts[0]) < st.watermark
            or (int(ts[0]), int(q[0])) < st.session.last
        ):
            for t, pr, sz, sq in zip(ts.tolist(), p.tolist(), s.tolist(), q.tolist(), strict=True):
                self._one(name, t, pr, sz, sq)
            return
        days = ts // DAY_US
        if int(days[0]) < st.day:
            for t, pr, sz, sq in zip(ts.tolist(), p.tolist(), s.tolist(), q.tolist(), strict=True):
                self._one(name, t, pr, sz, sq)
            return
        for part in np.split(np.arange(len(ts)), np.flatnonzero(np.diff(days)) + 1):
            self._in_order(name, st, int(days[part[0]]), ts[part], p[part], s[part], q[part])

    def _in_order(
        self,
        name: str,
        st: _Ticker,
        day: int,
        ts: npt.NDArray[np.int64],
        p: npt.NDArray[np.float64],
        s: npt.NDArray[np.int64],
        q: npt.NDArray[np.int64],
    ) -> None:
        """Trades of one session in (ts, seq) order, none before the ticker's watermark: window by window."""
        n = len(ts)
        first_ts, last_ts = int(ts[0]), int(ts[-1])
        if day > st.day:
            self._new_session(name, st, day, first_ts, int(q[0]), float(p[0]))
        self.events += n
        self._changes.events += n
        self._dirty.add(name)
        notional = p * s
        st.session.extend(
            (last_ts, int(q[-1])), float(p[-1]), float(p.max()), float(p.min()), int(s.sum()), n,
            float(notional.sum()),
        )  # fmt: skip
        horizon = max(last_ts, st.watermark) - self.config.allowed_lateness_us
        for k, frame in enumerate(st.frames):
            width = frame.width_us
            starts = ts - ts % width
            lo = np.concatenate(([0], np.flatnonzero(np.diff(starts)) + 1))
            hi = np.append(lo[1:], n)
            highs = np.maximum.reduceat(p, lo).tolist()
            lows = np.minimum.reduceat(p, lo).tolist()
            vols = np.add.reduceat(s, lo).tolist()
            nots = np.add.reduceat(notional, lo).tolist()
            for j, (a, b) in enumerate(zip(lo.tolist(), hi.tolist(), strict=True)):
                start = int(starts[a])
                last = (int(ts[b - 1]), int(q[b - 1]))
                bar = frame.open.get(start)
                if bar is None:
                    # In order and not before the watermark: never late, its window is open.
                    frame.open[start] = Bar(
                        start, float(p[a]), highs[j], lows[j], float(p[b - 1]), vols[j], b - a, nots[j],
                        (int(ts[a]), int(q[a])), last,
                    )  # fmt: skip
                    frame.first_end = min(frame.first_end, start + width)
                else:
                    bar.extend(last, float(p[b - 1]), highs[j], lows[j], vols[j], b - a, nots[j])
            if horizon >= frame.first_end:
                self._close(name, st, k, frame, horizon)
        st.watermark = max(st.watermark, last_ts)
        if self.watermark_us is None or last_ts > self.watermark_us:
            self.watermark_us = last_ts

    def _one(self, name: str, ts: int, price: float, size: int, seq: int) -> None:
        st = self._tickers.get(name)
        if st is None:
            if len(self._tickers) >= self.config.max_tickers:
                self.dropped += 1
                return
            st = self._tickers[name] = _Ticker(self.config)
        day = ts // DAY_US
        if day < st.day:
            # A trade of a session that is over: counted, never mixed into today's figures.
            self.stale += 1
            self.late += 1
            self._changes.late += 1
            return
        if day > st.day:
            self._new_session(name, st, day, ts, seq, price)
        self.events += 1
        self._changes.events += 1
        self._dirty.add(name)
        st.session.add(ts, seq, price, size)
        lateness = self.config.allowed_lateness_us
        horizon = max(ts, st.watermark) - lateness
        for k, frame in enumerate(st.frames):
            width = frame.width_us
            start = ts - ts % width
            bar = frame.open.get(start)
            if bar is not None:
                bar.add(ts, seq, price, size)
            elif start + width + lateness <= st.watermark:
                # Its window has closed (or, empty, would have): counted, never silently dropped.
                frame.late += 1
                self.late += 1
                self._changes.late += 1
            else:
                frame.open[start] = _new_bar(start, ts, seq, price, size)
                frame.first_end = min(frame.first_end, start + width)
            if horizon >= frame.first_end:
                self._close(name, st, k, frame, horizon)
        if ts > st.watermark:
            st.watermark = ts
            if self.watermark_us is None or ts > self.watermark_us:
                self.watermark_us = ts

    def _new_session(self, name: str, st: _Ticker, day: int, ts: int, seq: int, price: float) -> None:
        if st.day >= 0:
            st.previous_close = st.session.close
        elif self._previous_close is not None:
            st.previous_close = self._previous_close(name, day)
        st._reset_session(day, ts, seq, price)
        # The overnight gap is not a return: scoring restarts with the session's first bar.
        st.ref = None

    def _close(self, name: str, st: _Ticker, k: int, frame: _Frame, horizon: int) -> None:
        """Close the windows of ``frame`` that end at or before ``horizon`` (watermark - lateness)."""
        width = frame.width_us
        done = sorted(s for s in frame.open if s + width <= horizon)
        rest = [s for s in frame.open if s + width > horizon]
        frame.first_end = min(rest) + width if rest else _NEVER
        for start in done:
            bar = frame.open.pop(start)
            bar.final = True
            if k == 0:
                self._score(name, st, bar)
            frame.closed.append(bar)
            self._changes.closed.append((name, self.config.timeframes_s[k], bar))

    def _score(self, name: str, st: _Ticker, bar: Bar) -> None:
        day = bar.start_us // DAY_US
        ref, st.ref = st.ref, (day, bar.close)
        if ref is None or ref[0] != day:
            return
        r = math.log(bar.close / ref[1])
        if len(st.returns) >= self.config.min_history:
            z, med, sigma = robust_z(r, st.returns)
            bar.z = st.z = z
            if abs(z) >= self.config.alert_z and abs(math.expm1(r)) * 100.0 >= self.config.alert_min_move_pct:
                alert = Alert(
                    ticker=name,
                    timeframe_s=self.config.timeframes_s[0],
                    start_us=bar.start_us,
                    close=bar.close,
                    previous_close=ref[1],
                    ret_pct=math.expm1(r) * 100.0,
                    z=z,
                    median_pct=med * 100.0,
                    sigma_pct=sigma * 100.0,
                )
                self.alerts.append(alert)
                self._changes.alerts.append(alert)
        st.returns.append(r)

    # ------------------------------------------------------------------ reading

    def tickers(self) -> list[str]:
        """Tracked tickers, sorted."""
        return sorted(self._tickers)

    def quote(self, name: str) -> Quote:
        """A ticker's session.

        Raises:
            KeyError: Unknown ticker.
        """
        st = self._tickers[name]
        session = st.session
        prev = st.previous_close
        change = session.close - prev if prev else None
        clock = self.clock_us
        mark = clock if clock is not None else st.watermark
        return Quote(
            ticker=name,
            day=st.day,
            open=session.open,
            high=session.high,
            low=session.low,
            last=session.close,
            previous_close=prev,
            change=change,
            change_pct=(session.close / prev - 1.0) * 100.0 if prev else None,
            vwap=session.vwap,
            volume=session.volume,
            trades=session.trades,
            last_ts_us=session.last[0],
            z=st.z,
            late=sum(f.late for f in st.frames),
            quiet=mark - st.watermark >= self.config.quiet_after_us,
        )

    @property
    def clock_us(self) -> int | None:
        """The market clock: the (upper) median of the tickers' latest event times (None before any trade)."""
        if self._clock[0] != self.events:
            marks = [t.watermark for t in self._tickers.values() if t.session.trades]
            self._clock = (self.events, statistics.median_high(marks) if marks else None)
        return self._clock[1]

    def bars(self, name: str, timeframe_s: int) -> list[Bar]:
        """A ticker's bars of one timeframe, closed then open, by start.

        Raises:
            KeyError: Unknown ticker or timeframe.
        """
        try:
            k = self.config.timeframes_s.index(timeframe_s)
        except ValueError:
            raise KeyError(timeframe_s) from None
        frame = self._tickers[name].frames[k]
        return [*frame.closed, *(frame.open[s] for s in sorted(frame.open))]

    def open_bars(self, name: str) -> list[tuple[int, Bar]]:
        """``(timeframe_s, bar)`` of a ticker's open windows."""
        st = self._tickers[name]
        return [
            (self.config.timeframes_s[k], f.open[s]) for k, f in enumerate(st.frames) for s in sorted(f.open)
        ]

    def drain(self) -> Changes:
        """What changed since the last call (and start collecting afresh)."""
        out = self._changes
        out.tickers = sorted(self._dirty)
        self._changes = Changes()
        self._dirty = set()
        return out
