"""How each ticker fared in a downturn window: returns, drawdowns, risk and recovery. No I/O."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa

from tickerlake.insights._panel import PRICE_MEASURES, BasisInput, Panel, adjusted_for, as_date, basis
from tickerlake.insights.errors import BadInput, UnknownPeriod, WindowTooShort
from tickerlake.insights.movers import Excluded
from tickerlake.insights.narrative import fmt_date, fmt_pct, fmt_signed_pct, join_and

__all__ = [
    "BUILTIN_WINDOWS",
    "PEAK_LOOKBACK",
    "RecessionResult",
    "TickerRecession",
    "Window",
    "parse_windows",
    "recession",
    "resolve_window",
]

TRADING_DAYS_PER_YEAR = 252
#: Trading days before a window in which its "pre-window peak" is looked for.
PEAK_LOOKBACK = 252


@dataclass(frozen=True)
class Window:
    """A named analysis window (inclusive dates)."""

    name: str
    start: dt.date
    end: dt.date
    label: str


def _w(name: str, start: str, end: str, label: str) -> Window:
    return Window(name, dt.date.fromisoformat(start), dt.date.fromisoformat(end), label)


#: Built-in windows: NBER US recessions (month ranges, peak month to trough month), the
#: original study's two windows (with the 2008 focus) and the 2022 bear market.
BUILTIN_WINDOWS: dict[str, Window] = {
    w.name: w
    for w in (
        _w("nber-2001", "2001-03-01", "2001-11-30", "the 2001 recession (NBER)"),
        _w("nber-2008", "2007-12-01", "2009-06-30", "the Great Recession (NBER)"),
        _w("nber-2020", "2020-02-01", "2020-04-30", "the COVID-19 recession (NBER)"),
        _w("study-2008", "2008-03-01", "2009-01-31", "the original study's 2008 window"),
        _w("study-2008-focus", "2008-04-15", "2009-01-28", "the original study's 2008 focus window"),
        _w("study-2022", "2022-04-01", "2022-06-30", "the original study's 2022 window"),
        _w("bear-2022", "2022-01-03", "2022-10-12", "the 2022 bear market"),
    )
}

_SPEC = re.compile(
    r"^\s*([A-Za-z0-9][\w.-]*)\s*[=:]\s*(\d{4}-\d{2}-\d{2})\s*\.\.\s*(\d{4}-\d{2}-\d{2})\s*(?::\s*(.+))?$"
)


def parse_windows(text: str) -> dict[str, Window]:
    """User-defined windows from ``name=YYYY-MM-DD..YYYY-MM-DD[:label]`` entries separated by ``;`` or newlines.

    Raises:
        BadInput: An entry that does not parse or ends before it starts.
    """
    out: dict[str, Window] = {}
    for raw in re.split(r"[;\n]", text):
        if not raw.strip() or raw.strip().startswith("#"):
            continue
        m = _SPEC.match(raw)
        if not m:
            raise BadInput(f"bad window {raw.strip()!r}: expected name=YYYY-MM-DD..YYYY-MM-DD[:label]")
        name, s, e, label = m.groups()
        try:
            start, end = dt.date.fromisoformat(s), dt.date.fromisoformat(e)
        except ValueError:
            raise BadInput(f"bad window {raw.strip()!r}: not a calendar date") from None
        if end < start:
            raise BadInput(f"bad window {name!r}: it ends before it starts")
        out[name.lower()] = Window(name.lower(), start, end, (label or name).strip())
    return out


def resolve_window(name: str, extra: Mapping[str, Window] | None = None) -> Window:
    """A built-in or user-defined window by name (user-defined ones win).

    Raises:
        UnknownPeriod: No such window.
    """
    windows = {**BUILTIN_WINDOWS, **(extra or {})}
    key = name.strip().lower()
    if key not in windows:
        raise UnknownPeriod(f"unknown period {name!r} (one of {', '.join(sorted(windows))})")
    return windows[key]


@dataclass(frozen=True)
class TickerRecession:
    """One ticker's behaviour in the window (percentages in percent).

    Attributes:
        rank: 1 = best return in the window.
        ticker: The ticker (or ``BASKET`` for the equal-weight basket).
        first_date: First trading day with a value in the window.
        last_date: Last trading day with a value in the window.
        start_value: Value on ``first_date``, adjusted for the corporate actions up to the window's end.
        end_value: Value on ``last_date`` (on the window's last day: as it was).
        return_pct: ``end_value / start_value - 1``.
        max_drawdown_pct: Largest fall from a running peak inside the window (≤ 0).
        peak_date: The peak before the deepest fall.
        trough_date: The bottom of the deepest fall.
        volatility_pct: Annualised standard deviation of daily log returns.
        worst_day_pct: Worst daily return.
        worst_day: Its date.
        best_day_pct: Best daily return.
        best_day: Its date.
        beta: Against the equal-weight basket of all tickers (daily simple returns).
        correlation: Against the same basket.
        pre_window_peak: Highest value in the year before the window (None if no history).
        pre_window_peak_date: Its date.
        recovery_date: First day after the window's trough back at or above the pre-window peak.
        recovery_days: Trading days from the trough to ``recovery_date`` (0 when it never fell below).
        recovered: Whether the peak was regained by the end of the data (None without history).
        partial: The ticker started or stopped trading inside the window.
    """

    rank: int
    ticker: str
    first_date: dt.date
    last_date: dt.date
    start_value: float
    end_value: float
    return_pct: float
    max_drawdown_pct: float
    peak_date: dt.date
    trough_date: dt.date
    volatility_pct: float
    worst_day_pct: float
    worst_day: dt.date | None
    best_day_pct: float
    best_day: dt.date | None
    beta: float
    correlation: float
    pre_window_peak: float | None
    pre_window_peak_date: dt.date | None
    recovery_date: dt.date | None
    recovery_days: int | None
    recovered: bool | None
    partial: bool


@dataclass(frozen=True)
class RecessionResult:
    """A window's analysis.

    Attributes:
        window: The window asked for.
        first_date: First trading day in it.
        last_date: Last trading day in it.
        basket: The equal-weight basket's figures (daily rebalanced, over the tickers trading each day).
        tickers: Per ticker, ranked by return (best first).
        excluded: Tickers without enough data in the window.
        narrative: A few sentences.
    """

    window: Window
    first_date: dt.date
    last_date: dt.date
    basket: TickerRecession
    tickers: tuple[TickerRecession, ...]
    excluded: tuple[Excluded, ...]
    narrative: str


def _drawdown(values: np.ndarray) -> tuple[float, int, int]:
    """Deepest fall from a running peak: (fraction ≤ 0, peak index, trough index)."""
    peaks = np.fmax.accumulate(values)
    dd = values / peaks - 1.0
    trough = int(np.nanargmin(dd))
    peak = int(np.flatnonzero(values[: trough + 1] == peaks[trough])[0])
    return float(dd[trough]), peak, trough


def _stats(
    ticker: str,
    dates: list[dt.date],
    values: np.ndarray,
    basket_r: np.ndarray,
    history: np.ndarray | None,
    history_dates: list[dt.date],
    after: np.ndarray,
    after_dates: list[dt.date],
    partial: bool,
) -> TickerRecession:
    """Figures of one series in the window (``values`` without NaN gaps except where absent)."""
    ok = np.flatnonzero(~np.isnan(values))
    a, b = int(ok[0]), int(ok[-1])
    v = values[a : b + 1]
    d = dates[a : b + 1]
    # A day without a value keeps the last one: drawdowns follow the price path actually seen.
    filled = _ffill(v)
    dd, pk, tr = _drawdown(filled)
    simple = v[1:] / filled[:-1] - 1.0
    simple = np.where(np.isnan(v[1:]), np.nan, simple)
    logr = np.log1p(simple)
    good = ~np.isnan(simple)
    vol = (
        float(np.std(logr[good], ddof=1) * math.sqrt(TRADING_DAYS_PER_YEAR) * 100)
        if good.sum() > 1
        else math.nan
    )
    worst_d: dt.date | None
    best_d: dt.date | None
    if good.any():
        wi, bi = int(np.nanargmin(simple)), int(np.nanargmax(simple))
        worst, worst_d, best, best_d = float(simple[wi] * 100), d[wi + 1], float(simple[bi] * 100), d[bi + 1]
    else:
        worst = best = math.nan
        worst_d = best_d = None
    br = basket_r[a + 1 : b + 1]
    both = good & ~np.isnan(br)
    if both.sum() > 2 and np.var(br[both]) > 0:
        cov = np.cov(simple[both], br[both])
        beta = float(cov[0, 1] / cov[1, 1])
        corr = float(cov[0, 1] / math.sqrt(cov[0, 0] * cov[1, 1])) if cov[0, 0] > 0 else math.nan
    else:
        beta = corr = math.nan
    pre_peak = pre_date = rec_date = None
    rec_days: int | None = None
    recovered: bool | None = None
    if history is not None and np.any(~np.isnan(history)):
        hk = int(np.nanargmax(history))
        pre_peak, pre_date = float(history[hk]), history_dates[hk]
        trough_v = float(np.nanmin(v))
        trough_i = int(np.nanargmin(v))
        if trough_v >= pre_peak:
            rec_days, recovered, rec_date = 0, True, None
        else:
            tail = np.concatenate([v[trough_i + 1 :], after])
            tail_dates = d[trough_i + 1 :] + after_dates
            hit = np.flatnonzero(tail >= pre_peak)
            if len(hit):
                rec_date = tail_dates[int(hit[0])]
                rec_days = int(hit[0]) + 1
                recovered = True
            else:
                recovered = False
    return TickerRecession(
        0,
        ticker,
        d[0],
        d[-1],
        float(v[0]),
        float(v[-1]),
        float((v[-1] / v[0] - 1) * 100),
        dd * 100,
        d[pk],
        d[tr],
        vol,
        worst,
        worst_d,
        best,
        best_d,
        beta,
        corr,
        pre_peak,
        pre_date,
        rec_date,
        rec_days,
        recovered,
        partial,
    )


def _ffill(v: np.ndarray) -> np.ndarray:
    """Forward-fill NaNs (the first value must be a number)."""
    idx = np.maximum.accumulate(np.where(np.isnan(v), 0, np.arange(len(v))))
    return v[idx]


def recession(
    bars: pa.Table | BasisInput,
    period: str | Window | None = None,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    windows: Mapping[str, Window] | None = None,
    measure: str = "close",
    corporate_actions: pa.Table | None = None,
) -> RecessionResult:
    """Analyse a downturn window per ticker, with a ranking and a narrative.

    Pass the full history: the pre-window peak is looked for in the year before the
    window and the recovery after it. Every figure is on the corporate-action basis: the
    levels are the measure adjusted for the splits and dividends up to the window's last
    day (:class:`~tickerlake.insights._panel.Basis`), so returns and drawdowns are total
    returns that no split or dividend moves, and the window's last levels are as they were.

    Args:
        bars: Rows in the ``market.daily_bars`` schema, or their
            :func:`~tickerlake.insights._panel.basis_input` (of the same ``measure``).
        period: A built-in or user-defined window name, or a :class:`Window`.
        start: Window start, when no ``period`` is given.
        end: Window end, when no ``period`` is given.
        windows: User-defined windows by name.
        measure: A price measure.
        corporate_actions: ``market.corporate_actions`` rows (splits in unadjusted prices are
            recognised by their jump).

    Raises:
        UnknownPeriod: Unknown window name.
        WindowTooShort: Fewer than two trading days in the window.
        EmptyWindow, DateOutsideData: No data in the window.
        BadInput: Neither a period nor start and end, or a non-price measure.
    """
    if measure not in PRICE_MEASURES:
        raise BadInput(
            f"recession analysis needs a price measure ({', '.join(PRICE_MEASURES)}), not {measure!r}"
        )
    if isinstance(period, Window):
        win = period
    elif period:
        win = resolve_window(period, windows)
    elif start is not None and end is not None:
        s, e = as_date(start, "start"), as_date(end, "end")
        win = Window("custom", s, e, f"{fmt_date(s)} to {fmt_date(e)}")
    else:
        raise BadInput("give a period name or both a start and an end")
    base = basis(bars, measure, corporate_actions)
    lo, hi = base.panel.window(win.start, win.end)
    if hi - lo < 2:
        raise WindowTooShort(
            f"{win.label} holds {hi - lo} trading day of data; the analysis needs at least 2"
        )
    p = base.panel
    res = _analyse(Panel(p.measure, p.dates, p.tickers, base.as_of(hi - 1), p.has_row), win, lo, hi)
    notes = base.across([r.ticker for r in res.tickers], res.first_date, res.last_date)
    if not notes:
        return res
    return replace(
        res, narrative=f"{res.narrative} Earlier levels are {adjusted_for(notes, name_tickers=True)}."
    )


def _basket_returns(panel: Panel, lo: int, hi: int) -> np.ndarray:
    """Equal-weight daily simple returns over the tickers with a return that day (NaN at ``lo``)."""
    block = panel.values[lo:hi]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = block[1:] / block[:-1] - 1.0
    count = np.sum(~np.isnan(r), axis=1)
    mean = np.where(count > 0, np.nansum(r, axis=1) / np.maximum(count, 1), np.nan)
    return np.concatenate([[np.nan], mean])


def _analyse(panel: Panel, win: Window, lo: int, hi: int) -> RecessionResult:
    dates = [panel.date(i) for i in range(lo, hi)]
    after_dates = [panel.date(i) for i in range(hi, len(panel.dates))]
    basket_r = _basket_returns(panel, lo, hi)
    h_lo = max(0, lo - PEAK_LOOKBACK)
    history_dates = [panel.date(i) for i in range(h_lo, lo)]
    rows: list[TickerRecession] = []
    excluded: list[Excluded] = []
    for j, ticker in enumerate(panel.tickers):
        col = panel.values[lo:hi, j]
        n = int(np.sum(~np.isnan(col)))
        if n < 2:
            reason = "no data in the window" if n == 0 else "only one trading day in the window"
            excluded.append(Excluded(ticker, reason))
            continue
        ok = np.flatnonzero(~np.isnan(col))
        partial = ok[0] != 0 or ok[-1] != hi - lo - 1
        hist = panel.values[h_lo:lo, j] if lo > 0 else None
        rows.append(
            _stats(
                ticker, dates, col, basket_r, hist, history_dates, panel.values[hi:, j], after_dates, partial
            )
        )
    if not rows:
        raise WindowTooShort(f"no ticker has two trading days of data in {win.label}")
    level = np.concatenate([[1.0], np.cumprod(1.0 + np.nan_to_num(basket_r[1:]))])
    basket = _stats("BASKET", dates, level, basket_r, None, [], np.array([]), [], False)
    ordered = sorted(rows, key=lambda r: (-round(r.return_pct, 9), r.ticker))
    ranked = tuple(
        TickerRecession(i + 1, *[getattr(r, f) for f in TickerRecession.__dataclass_fields__ if f != "rank"])
        for i, r in enumerate(ordered)
    )
    text = _narrative(win, dates[0], dates[-1], basket, ranked, panel.last_date)
    return RecessionResult(win, dates[0], dates[-1], basket, ranked, tuple(excluded), text)


def _verb(pct: float) -> str:
    return f"rose {fmt_pct(pct)}" if pct > 0 else f"fell {fmt_pct(pct)}" if pct < 0 else "was flat"


def _narrative(
    win: Window,
    first: dt.date,
    last: dt.date,
    basket: TickerRecession,
    rows: Iterable[TickerRecession],
    data_end: dt.date,
) -> str:
    rows = list(rows)
    label = win.label[0].upper() + win.label[1:]
    text = (
        f"{label} ({fmt_date(first)} to {fmt_date(last)}): the equal-weight basket {_verb(basket.return_pct)}, "
        f"with a maximum drawdown of {fmt_pct(basket.max_drawdown_pct)} from {fmt_date(basket.peak_date)} "
        f"to {fmt_date(basket.trough_date)}."
    )
    if len(rows) > 1:
        best, worst = rows[0], rows[-1]
        text += (
            f" Most resilient: {best.ticker} ({fmt_signed_pct(best.return_pct)}); hardest hit: {worst.ticker} "
            f"({fmt_signed_pct(worst.return_pct)}, max drawdown {fmt_signed_pct(worst.max_drawdown_pct)} "
            f"from {fmt_date(worst.peak_date)} to {fmt_date(worst.trough_date)})."
        )
    else:
        only = rows[0]
        text += (
            f" {only.ticker} returned {fmt_signed_pct(only.return_pct)} with a max drawdown of "
            f"{fmt_signed_pct(only.max_drawdown_pct)}."
        )
    known = [r for r in rows if r.recovered is not None]
    if known:
        back = [r.ticker for r in known if r.recovered]
        not_back = [r.ticker for r in known if not r.recovered]
        by = f"by {fmt_date(data_end)}"
        if not not_back:
            text += f" Every ticker had recovered its pre-window peak {by}."
        elif not back:
            text += f" None had recovered its pre-window peak {by}."
        else:
            have = "has" if len(not_back) == 1 else "have"
            text += (
                f" {len(back)} of {len(known)} had recovered their pre-window peak {by}; "
                f"{join_and(not_back)} {have} not."
            )
    return text
