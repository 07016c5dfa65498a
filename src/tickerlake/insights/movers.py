"""Top and bottom movers: each ticker's change against its own previous trading day. No I/O."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pyarrow as pa

from tickerlake.insights._panel import as_date, basis, prev_index, split_days
from tickerlake.insights.errors import BadInput
from tickerlake.insights.narrative import change_phrase, fmt_date, fmt_num, join_and, measure_label

__all__ = ["Excluded", "Mover", "MoversResult", "movers"]


@dataclass(frozen=True)
class Mover:
    """One ticker's day-over-day change.

    Attributes:
        rank: 1 = the biggest mover in the requested direction.
        ticker: The ticker (from the row's ticker column).
        date: The day of the move.
        previous_date: The ticker's previous trading day.
        previous: Value on ``previous_date``, adjusted for a corporate action on ``date``
            (so ``pct_change`` is the return no split or dividend moves).
        current: Value on ``date``, as it was.
        change: ``current - previous``.
        pct_change: ``change / previous * 100``.
        adjusted_for: The corporate actions ``previous`` is adjusted for, described.
    """

    rank: int
    ticker: str
    date: dt.date
    previous_date: dt.date
    previous: float
    current: float
    change: float
    pct_change: float
    adjusted_for: tuple[str, ...] = ()


@dataclass(frozen=True)
class Excluded:
    """A ticker left out of an insight, and why."""

    ticker: str
    reason: str


@dataclass(frozen=True)
class MoversResult:
    """Top (or bottom) movers of one day.

    Attributes:
        date: The day.
        measure: close, adj_close, volume...
        direction: ``top`` (biggest increases first) or ``bottom`` (biggest decreases first).
        rank_by: ``pct_change`` or ``change``.
        rows: The first ``n`` movers, ranked.
        ranked: Every ticker with a change that day, ranked (``rows`` is its prefix).
        excluded: Tickers without a comparable previous value, with the reason.
        narrative: One QuickSight-style sentence.
    """

    date: dt.date
    measure: str
    direction: str
    rank_by: str
    rows: tuple[Mover, ...]
    ranked: tuple[Mover, ...]
    excluded: tuple[Excluded, ...]
    narrative: str


def movers(
    bars: pa.Table,
    date: dt.date | str | None = None,
    n: int = 3,
    bottom: bool = False,
    measure: str = "close",
    rank_by: Literal["pct_change", "change"] = "pct_change",
    corporate_actions: pa.Table | None = None,
) -> MoversResult:
    """Rank tickers by their change on ``date`` against their own previous trading day.

    A ticker is excluded (and the exclusion reported) when it has no bar or value that
    day, when that day is its first bar (IPO), when it has no bar on the market's previous
    trading day (missing data: a change over several days is not a daily move), or when an
    announced split explains the jump in unadjusted prices. Ties rank alphabetically.

    Args:
        bars: Rows in the ``market.daily_bars`` schema.
        date: The trading day (default: the last one in the data).
        n: How many movers to report.
        bottom: Rank the biggest decreases first instead of the biggest increases.
        measure: The value compared.
        rank_by: Rank by percent change (QuickSight's default) or absolute change.
        corporate_actions: Optional ``market.corporate_actions`` rows.

    Raises:
        DateOutsideData, NotATradingDay: ``date`` is not a trading day of the data.
        BadInput: Bad ``n``, ``rank_by`` or measure.
    """
    if n < 1:
        raise BadInput(f"--n must be at least 1, got {n}")
    if rank_by not in ("pct_change", "change"):
        raise BadInput(f"unknown ranking {rank_by!r} (pct_change or change)")
    base = basis(bars, measure, corporate_actions)
    panel = base.panel
    day = as_date(date) if date is not None else panel.last_date
    t = panel.locate(day)
    valid = panel.valid
    prev = prev_index(valid)[t]
    splits, _ = split_days(panel, corporate_actions)
    adjusted = base.previous(prev, t)
    first_row = np.argmax(panel.has_row, axis=0)
    found: list[Mover] = []
    excluded: list[Excluded] = []
    for j, ticker in enumerate(panel.tickers):
        p = int(prev[j])
        reason = None
        if not panel.has_row[t, j]:
            if not panel.has_row[:t, j].any():
                reason = f"no bar on {fmt_date(day)} (first bar {fmt_date(panel.date(int(first_row[j])))})"
            else:
                reason = f"no bar on {fmt_date(day)}"
        elif not valid[t, j]:
            reason = f"no {measure} on {fmt_date(day)}"
        elif p < 0:
            reason = "first trading day in the data (no previous bar)"
        elif p != t - 1:
            reason = (
                f"no {measure} on the previous trading day {fmt_date(panel.date(t - 1))} "
                f"(last on {fmt_date(panel.date(p))})"
            )
        elif splits[t, j]:
            reason = "split day: the jump in unadjusted prices is not a move"
        elif panel.values[p, j] == 0:
            reason = f"previous {measure} is zero"
        if reason is not None:
            excluded.append(Excluded(ticker, reason))
            continue
        before, now = float(adjusted[j]), float(panel.values[t, j])
        change = now - before
        notes = tuple(n.describe() for n in base.between(ticker, panel.date(p), day))
        found.append(
            Mover(0, ticker, day, panel.date(p), before, now, change, change / before * 100.0, notes)
        )
    sign = 1.0 if bottom else -1.0

    def key(m: Mover) -> tuple[float, str]:
        # Rounding keeps float noise from breaking ties that are equal in the data.
        return (sign * round(getattr(m, rank_by), 9), m.ticker)

    ranked = tuple(replace(m, rank=i + 1) for i, m in enumerate(sorted(found, key=key)))
    rows = ranked[:n]
    text = _narrative(day, measure, bottom, rows, excluded)
    return MoversResult(
        day, measure, "bottom" if bottom else "top", rank_by, rows, ranked, tuple(excluded), text
    )


def _value(x: float, measure: str) -> str:
    return fmt_num(round(x)) if measure == "volume" and x == math.floor(x) else fmt_num(x)


def _narrative(
    day: dt.date, measure: str, bottom: bool, rows: tuple[Mover, ...], excluded: list[Excluded]
) -> str:
    label = measure_label(measure)
    which = "Bottom" if bottom else "Top"
    if not rows:
        text = f"No {label} movers for {fmt_date(day)}: no ticker has a comparable previous trading day."
    else:
        parts = [
            f"{m.ticker} {change_phrase(m.pct_change, m.change)}, from {_value(m.previous, measure)} "
            f"to {_value(m.current, measure)}"
            + (
                f" (the previous value adjusted for {join_and(list(m.adjusted_for))})"
                if m.adjusted_for
                else ""
            )
            for m in rows
        ]
        noun, verb = ("movers", "are") if len(rows) > 1 else ("mover", "is")
        text = f"{which} {label} {noun} for {fmt_date(day)} {verb}: {join_and(parts)}."
    # Tickers not listed yet are not news; a missing comparison for a listed one is.
    notable = [e for e in excluded if not e.reason.startswith("no bar on") or "first bar" not in e.reason]
    if notable and rows:
        text += " Excluded: " + "; ".join(f"{e.ticker} ({e.reason})" for e in notable) + "."
    return text
