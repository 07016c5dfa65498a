"""Ranked tickers over a window (QuickSight's "top/bottom ranked" insight). No I/O."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from tickerlake.insights._panel import PRICE_MEASURES, as_date, basis
from tickerlake.insights.errors import BadInput
from tickerlake.insights.movers import Excluded
from tickerlake.insights.narrative import change_phrase, fmt_date, fmt_num, join_and

__all__ = ["RankedResult", "RankedRow", "ranked"]


@dataclass(frozen=True)
class RankedRow:
    """One ticker's place in the ranking.

    Attributes:
        rank: 1 = first in the requested direction.
        ticker: The ticker.
        first_date: Its first trading day in the window.
        first_value: Its value that day, adjusted for the corporate actions up to ``last_date``
            (so ``pct_change`` is the return no split or dividend moves).
        last_date: Its last trading day in the window.
        last_value: Its value that day.
        change: ``last_value - first_value``.
        pct_change: Percent change (the ranking key for prices).
        total: Sum over the window (the ranking key for volume).
        partial: The ticker started or stopped trading inside the window.
        adjusted_for: The corporate actions ``first_value`` is adjusted for, described.
    """

    rank: int
    ticker: str
    first_date: dt.date
    first_value: float
    last_date: dt.date
    last_value: float
    change: float
    pct_change: float
    total: float
    partial: bool
    adjusted_for: tuple[str, ...] = ()


@dataclass(frozen=True)
class RankedResult:
    """Tickers ranked over a window.

    Attributes:
        start: First trading day of the window.
        end: Last trading day of the window.
        measure: The measure.
        direction: ``top`` or ``bottom``.
        rank_by: ``pct_change`` (prices) or ``total`` (volume).
        rows: The first ``n`` rows.
        ranked: Every ranked ticker (``rows`` is its prefix).
        excluded: Tickers without data in the window.
        narrative: One sentence.
    """

    start: dt.date
    end: dt.date
    measure: str
    direction: str
    rank_by: str
    rows: tuple[RankedRow, ...]
    ranked: tuple[RankedRow, ...]
    excluded: tuple[Excluded, ...]
    narrative: str


def ranked(
    bars: pa.Table,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    n: int = 3,
    bottom: bool = False,
    measure: str = "close",
    corporate_actions: pa.Table | None = None,
) -> RankedResult:
    """Rank tickers by their change over the window (prices) or their total (volume).

    A ticker that lists (or stops) inside the window is ranked on its own first-to-last
    change and flagged ``partial``; ties rank alphabetically.

    Raises:
        EmptyWindow, DateOutsideData: No data in the window.
        BadInput: ``n`` below 1.
    """
    if n < 1:
        raise BadInput(f"--n must be at least 1, got {n}")
    base = basis(bars, measure, corporate_actions)
    panel = base.panel
    s = as_date(start, "start") if start is not None else None
    e = as_date(end, "end") if end is not None else None
    lo, hi = panel.window(s, e)
    block = panel.values[lo:hi]
    level = measure in PRICE_MEASURES
    found: list[RankedRow] = []
    excluded: list[Excluded] = []
    for j, ticker in enumerate(panel.tickers):
        ok = np.flatnonzero(~np.isnan(block[:, j]))
        if len(ok) == 0:
            excluded.append(Excluded(ticker, f"no {measure} in the window"))
            continue
        a, b = int(ok[0]), int(ok[-1])
        first, last = float(base.previous(lo + a, lo + b)[j]), float(block[b, j])
        notes = tuple(x.describe() for x in base.between(ticker, panel.date(lo + a), panel.date(lo + b)))
        change = last - first
        pct = change / first * 100.0 if first else math.nan
        found.append(
            RankedRow(
                0,
                ticker,
                panel.date(lo + a),
                first,
                panel.date(lo + b),
                last,
                change,
                pct,
                float(np.nansum(block[:, j])),
                a != 0 or b != hi - lo - 1,
                notes,
            )
        )
    rank_by = "pct_change" if level else "total"
    sign = 1.0 if bottom else -1.0

    def key(r: RankedRow) -> tuple[float, str]:
        v = getattr(r, rank_by)
        return (math.inf if math.isnan(v) else sign * round(v, 9), r.ticker)

    ordered = tuple(
        RankedRow(i + 1, *[getattr(r, f) for f in RankedRow.__dataclass_fields__ if f != "rank"])
        for i, r in enumerate(sorted(found, key=key))
    )
    rows = ordered[:n]
    first_day, last_day = panel.date(lo), panel.date(hi - 1)
    which = "Bottom" if bottom else "Top"
    span = f"from {fmt_date(first_day)} to {fmt_date(last_day)}"
    if not rows:
        text = f"No ticker has {measure} data {span}."
    elif level:
        parts = []
        for r in rows:
            part = f"{r.ticker} {change_phrase(r.pct_change, r.change)}, from {fmt_num(r.first_value)} to {fmt_num(r.last_value)}"
            if r.partial:
                part += f" (trading {fmt_date(r.first_date)} to {fmt_date(r.last_date)} only)"
            if r.adjusted_for:
                part += f" (the first value adjusted for {join_and(list(r.adjusted_for))})"
            parts.append(part)
        noun = "tickers" if len(rows) > 1 else "ticker"
        text = f"{which} {len(rows)} {noun} by {measure.replace('_', ' ')} change {span}: {join_and(parts)}."
    else:
        parts = [f"{r.ticker} with {fmt_num(int(r.total))}" for r in rows]
        noun = "tickers" if len(rows) > 1 else "ticker"
        text = f"{which} {len(rows)} {noun} by total {measure} {span}: {join_and(parts)}."
    return RankedResult(
        first_day,
        last_day,
        measure,
        "bottom" if bottom else "top",
        rank_by,
        rows,
        ordered,
        tuple(excluded),
        text,
    )
