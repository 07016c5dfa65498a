"""Highest and lowest values over a window, with their dates (QuickSight's max/min insights). No I/O."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from tickerlake.insights._panel import PRICE_MEASURES, adjust_splits, as_date, build_panel
from tickerlake.insights.movers import Excluded
from tickerlake.insights.narrative import fmt_date, fmt_num, measure_label

__all__ = ["ExtremesResult", "TickerExtremes", "extremes"]


@dataclass(frozen=True)
class TickerExtremes:
    """One ticker's highest and lowest value in the window (earliest date on ties)."""

    ticker: str
    max_value: float
    max_date: dt.date
    min_value: float
    min_date: dt.date


@dataclass(frozen=True)
class ExtremesResult:
    """Extremes of the total and of each ticker over a window.

    Attributes:
        start: First trading day of the window.
        end: Last trading day of the window.
        measure: The measure.
        max_value: Highest daily total (NaN when no ticker covers the whole window).
        max_date: Its date (earliest on ties).
        min_value: Lowest daily total.
        min_date: Its date.
        total_tickers: Tickers in the total: those with a value on every trading day of the window.
        tickers: Per-ticker extremes.
        excluded: Tickers left out of the total, with the reason.
        narrative: One sentence.
    """

    start: dt.date
    end: dt.date
    measure: str
    max_value: float
    max_date: dt.date | None
    min_value: float
    min_date: dt.date | None
    total_tickers: tuple[str, ...]
    tickers: tuple[TickerExtremes, ...]
    excluded: tuple[Excluded, ...]
    narrative: str


def extremes(
    bars: pa.Table,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    measure: str = "close",
    corporate_actions: pa.Table | None = None,
) -> ExtremesResult:
    """Highest and lowest daily total across tickers, and each ticker's own extremes.

    The daily total only counts tickers present on every trading day of the window, so
    a listing or a missing day cannot create a fake high or low.

    Raises:
        EmptyWindow, DateOutsideData: No data in the window.
    """
    panel = build_panel(bars, measure)
    if measure in PRICE_MEASURES:
        panel, _ = adjust_splits(panel, corporate_actions)
    s = as_date(start, "start") if start is not None else None
    e = as_date(end, "end") if end is not None else None
    lo, hi = panel.window(s, e)
    block = panel.values[lo:hi]
    valid = ~np.isnan(block)
    per: list[TickerExtremes] = []
    excluded: list[Excluded] = []
    full: list[int] = []
    # Every ticker's first highest and lowest day at once (NaN never wins): thousands of
    # tickers cost one pass, not one per ticker.
    hi_at = np.argmax(np.where(valid, block, -np.inf), axis=0).tolist()
    lo_at = np.argmin(np.where(valid, block, np.inf), axis=0).tolist()
    missing = (~valid).sum(axis=0).tolist()
    days = len(block)
    for j, ticker in enumerate(panel.tickers):
        if missing[j] == days:
            excluded.append(Excluded(ticker, f"no {measure} in the window"))
            continue
        hi_i, lo_i = hi_at[j], lo_at[j]
        per.append(
            TickerExtremes(
                ticker,
                float(block[hi_i, j]),
                panel.date(lo + hi_i),
                float(block[lo_i, j]),
                panel.date(lo + lo_i),
            )
        )
        if missing[j] == 0:
            full.append(j)
        else:
            excluded.append(Excluded(ticker, f"no {measure} on {missing[j]} of the window's days"))
    first_day, last_day = panel.date(lo), panel.date(hi - 1)
    label = measure_label(measure)
    head = label[0].upper() + label[1:]
    span = f"from {fmt_date(first_day)} to {fmt_date(last_day)}"
    max_d: dt.date | None
    min_d: dt.date | None
    if full:
        total = block[:, full].sum(axis=1)
        i_max, i_min = int(np.argmax(total)), int(np.argmin(total))
        max_v, min_v = float(total[i_max]), float(total[i_min])
        max_d, min_d = panel.date(lo + i_max), panel.date(lo + i_min)
        text = (
            f"Highest {label} {span} was {fmt_num(max_v)} on {fmt_date(max_d)}; "
            f"the lowest was {fmt_num(min_v)} on {fmt_date(min_d)}."
        )
    else:
        max_v = min_v = math.nan
        max_d = min_d = None
        text = f"{head} has no extremes {span}: no ticker traded on every day of the window."
    return ExtremesResult(
        first_day,
        last_day,
        measure,
        max_v,
        max_d,
        min_v,
        min_d,
        tuple(panel.tickers[j] for j in full),
        tuple(per),
        tuple(excluded),
        text,
    )
