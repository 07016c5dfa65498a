"""The few most important insights of a window, ranked (a QuickSight "autonarrative"). No I/O.

Candidates come from the other insight kinds; each gets an *importance*: roughly how
many standard deviations of the basket's own daily volatility the fact represents
(a 3-sigma day scores about 1), so a quiet window ranks a modest move high and a
turbulent one needs a crash to be news. Anomalies score their robust z over the
threshold.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from tickerlake.insights._panel import PRICE_MEASURES, as_date, basis, since, trading_days_of, window_bounds
from tickerlake.insights.anomalies import Anomaly, AnomalyInput, anomalies
from tickerlake.insights.errors import BadInput, WindowTooShort
from tickerlake.insights.extremes import extremes
from tickerlake.insights.narrative import (
    change_phrase,
    fmt_date,
    fmt_num,
    fmt_pct,
    fmt_signed_pct,
    measure_label,
)
from tickerlake.insights.recessions import PEAK_LOOKBACK, Window, recession

__all__ = ["Insight", "SummaryResult", "summary"]


@dataclass(frozen=True)
class Insight:
    """One ranked insight.

    Attributes:
        rank: 1 = most important.
        kind: window_change, best_ticker, worst_ticker, biggest_day, drawdown, anomaly or extreme.
        importance: Roughly the fact's size in standard deviations (see the module docstring).
        date: The day it is about, if any.
        tickers: The tickers it is about, if any.
        value: Its key number (a percent change, a z-score, a value).
        narrative: One sentence.
    """

    rank: int
    kind: str
    importance: float
    date: dt.date | None
    tickers: tuple[str, ...]
    value: float
    narrative: str


@dataclass(frozen=True)
class SummaryResult:
    """The most important insights of a window.

    Attributes:
        start: First trading day of the window.
        end: Last trading day of the window.
        measure: The price measure.
        insights: The top insights, most important first.
        narrative: The top insights' sentences as one paragraph.
    """

    start: dt.date
    end: dt.date
    measure: str
    insights: tuple[Insight, ...]
    narrative: str


def summary(
    bars: pa.Table,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    n: int = 5,
    measure: str = "close",
    corporate_actions: pa.Table | None = None,
    trading_days: np.ndarray | None = None,
    anomaly_data: AnomalyInput | None = None,
) -> SummaryResult:
    """Rank the window's candidate insights by importance and keep the first ``n``.

    Only the anomalies look further back than a year before the window (two years of
    scale); the other candidates are computed on the bars from :data:`PEAK_LOOKBACK`
    trading days before it (the recession view's pre-window peak), which is all they read.

    Args:
        bars: Rows in the ``market.daily_bars`` schema, with history before ``start``.
        start: First day of the window.
        end: Last day.
        n: How many insights to keep.
        measure: A price measure.
        corporate_actions: ``market.corporate_actions`` rows.
        trading_days: The market's trading days when ``bars`` carry the stored returns
            (passed to :func:`~tickerlake.insights.anomalies.anomalies`).
        anomaly_data: The anomalies' input, already pivoted from the bars with their
            history (:func:`~tickerlake.insights.anomalies.anomaly_input`); then ``bars``
            need reach only :data:`PEAK_LOOKBACK` trading days before ``start``, and a
            caller can drop the longer rows before the scan.

    Raises:
        WindowTooShort: Fewer than two trading days in the window.
        EmptyWindow, DateOutsideData: No data in the window.
    """
    s = as_date(start, "start") if start is not None else None
    e = as_date(end, "end") if end is not None else None
    near = since(bars, s, PEAK_LOOKBACK)
    if s is not None and e is not None and s > e:
        raise BadInput(f"the window starts ({fmt_date(s)}) after it ends ({fmt_date(e)})")
    if near.num_rows == 0 or measure not in PRICE_MEASURES:
        # The errors the window's own analyses give (no bars; a measure without returns).
        recession(near, Window("window", s or dt.date.min, e or dt.date.max, "window"), measure=measure)
    trading = trading_days_of(near)
    lo, hi = window_bounds(trading, s, e)
    if hi - lo < 2:
        raise WindowTooShort(f"a summary needs at least 2 trading days; the window holds {hi - lo}")
    first: dt.date = trading[lo].astype(object)
    last: dt.date = trading[hi - 1].astype(object)
    # The anomalies first: their (days × tickers) matrices over years of history are freed
    # before the window's own panels are built (a universe's peak memory is one, not both).
    try:
        an = anomalies(
            bars if anomaly_data is None else anomaly_data,
            first,
            last,
            measure=measure,
            corporate_actions=corporate_actions,
            trading_days=trading_days,
        )
    except WindowTooShort:
        an = None
    base = basis(near, measure, corporate_actions)
    panel = base.panel
    span = f"from {fmt_date(first)} to {fmt_date(last)}"
    label = measure_label(measure)
    found: list[Insight] = []

    rec = recession(
        near,
        Window("window", first, last, f"The window {span}"),
        measure=measure,
        corporate_actions=corporate_actions,
    )
    basket = rec.basket
    days = hi - lo - 1
    vol = basket.volatility_pct
    sigma = vol / 100 / math.sqrt(252) if not math.isnan(vol) and vol > 0 else math.nan
    scale = sigma * math.sqrt(max(days, 1))

    def add(
        kind: str,
        log_move: float,
        unit: float,
        when: dt.date | None,
        who: tuple[str, ...],
        value: float,
        text: str,
    ) -> None:
        size = abs(log_move) / unit if unit > 0 and not math.isnan(unit) and not math.isnan(log_move) else 0.0
        found.append(Insight(0, kind, size, when, who, value, text))

    def log_of(pct: float) -> float:
        return math.log1p(pct / 100) if pct > -100 else -math.inf

    head = label[0].upper() + label[1:]
    # Change of the total over the tickers present at both ends, the first levels adjusted
    # for the corporate actions in between (no split or dividend moves it).
    v0, v1 = base.previous(lo, hi - 1), panel.values[hi - 1]
    both = ~np.isnan(v0) & ~np.isnan(v1)
    if both.any():
        a, b = float(v0[both].sum()), float(v1[both].sum())
        pct = (b - a) / a * 100
        who = tuple(np.array(panel.tickers)[both].tolist())
        text = f"{head} {span} {change_phrase(pct, b - a)} from {fmt_num(a)} to {fmt_num(b)}."
        add("window_change", log_of(pct), scale, None, who, pct, text)
    if len(rec.tickers) > 1:
        for kind, row in (("best_ticker", rec.tickers[0]), ("worst_ticker", rec.tickers[-1])):
            word = "best" if kind == "best_ticker" else "worst"
            text = (
                f"{row.ticker} was the {word} performer {span} at {fmt_signed_pct(row.return_pct)}, "
                f"against {fmt_signed_pct(basket.return_pct)} for the equal-weight basket."
            )
            gap = log_of(row.return_pct) - log_of(basket.return_pct)
            add(kind, gap, scale, None, (row.ticker,), row.return_pct, text)
    if basket.max_drawdown_pct < 0:
        text = (
            f"The equal-weight basket fell {fmt_pct(basket.max_drawdown_pct)} from its peak on "
            f"{fmt_date(basket.peak_date)} to its trough on {fmt_date(basket.trough_date)}."
        )
        add(
            "drawdown",
            log_of(basket.max_drawdown_pct),
            scale,
            basket.trough_date,
            (),
            basket.max_drawdown_pct,
            text,
        )
    # Biggest day-over-day move of the total, over the tickers trading on both days (each
    # previous level adjusted for that day's corporate actions).
    start_row = max(lo, 1)
    cur = panel.values[start_row:hi]
    prev = panel.values[start_row - 1 : hi - 1]
    if base.factor is not None:
        prev = prev * (base.factor[start_row - 1 : hi - 1] / base.factor[start_row:hi])
    matched = ~np.isnan(cur) & ~np.isnan(prev)
    tot_now, tot_before = np.where(matched, cur, 0).sum(axis=1), np.where(matched, prev, 0).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        day_pct = np.where(tot_before > 0, (tot_now / tot_before - 1) * 100, np.nan)
    if np.any(~np.isnan(day_pct)):
        k = int(np.nanargmax(np.abs(day_pct)))
        when = panel.date(start_row + k)
        pct = float(day_pct[k])
        text = (
            f"The biggest daily move: {label} for {fmt_date(when)} "
            f"{change_phrase(pct, float(tot_now[k] - tot_before[k]))} from {fmt_num(float(tot_before[k]))} "
            f"to {fmt_num(float(tot_now[k]))}."
        )
        # A three-sigma day is about as notable as a one-sigma window.
        add("biggest_day", log_of(pct), 3 * sigma, when, (), pct, text)
    if an is not None:

        def bar(a: Anomaly) -> float:
            return an.market_threshold if a.market_wide else an.threshold

        for anomaly in sorted(an.anomalies, key=lambda x: -x.score / bar(x))[:2]:
            who = tuple(c.ticker for c in anomaly.top)
            add("anomaly", anomaly.score, bar(anomaly), anomaly.date, who, anomaly.score, anomaly.narrative)
    ext = extremes(near, first, last, measure=measure, corporate_actions=corporate_actions)
    if ext.max_date is not None and ext.min_date is not None:
        # A new high or low at the window's edge is the notable case.
        edge = 0.8 if last in (ext.max_date, ext.min_date) else 0.3
        add("extreme", edge, 1.0, ext.max_date, ext.total_tickers, ext.max_value, ext.narrative)
    ordered = sorted(found, key=lambda i: (-round(i.importance, 9), i.kind))[: max(n, 0)]
    ranked = tuple(
        Insight(k + 1, i.kind, i.importance, i.date, i.tickers, i.value, i.narrative)
        for k, i in enumerate(ordered)
    )
    text = " ".join(i.narrative for i in ranked[:3])
    return SummaryResult(first, last, measure, ranked, text)
