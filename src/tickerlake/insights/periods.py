"""Period-over-period, period-to-date and compound growth of the cross-ticker aggregate. No I/O.

The aggregate is the *total* across tickers (QuickSight's SUM). Totals are only ever
compared over the same set of tickers: a ticker that has a value in one period but not
the other (an IPO, missing data) is left out of both totals and reported as excluded, so
a listing can never masquerade as a rally.

Price measures (close, adj_close, ...) are levels: a period's value is each ticker's last
value in the period, and the previous value is adjusted for the corporate actions between
the two days (:class:`~tickerlake.insights._panel.Basis`), so a split or a dividend never
moves a change. Volume is a flow: a period's value is the sum over its trading days.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from tickerlake.insights._panel import PRICE_MEASURES, Basis, Panel, adjusted_for, as_date, basis
from tickerlake.insights.errors import BadInput, DateOutsideData, EmptyWindow, UnknownPeriod, WindowTooShort
from tickerlake.insights.movers import Excluded
from tickerlake.insights.narrative import (
    change_phrase,
    fmt_date,
    fmt_num,
    fmt_pct,
    measure_label,
    period_label,
)

__all__ = [
    "GRAINS",
    "GrowthResult",
    "PeriodResult",
    "TickerChange",
    "TickerGrowth",
    "growth",
    "period_bounds",
    "period_over_period",
    "period_starts",
    "period_to_date",
    "previous_period",
]

#: Calendar grains; weeks run Monday to Sunday (ISO 8601).
GRAINS: tuple[str, ...] = ("day", "week", "month", "quarter", "year")

_DAYS_PER = {"week": 7.0, "month": 365.25 / 12, "quarter": 365.25 / 4, "year": 365.25}
_ADVERB = {"day": "daily", "week": "weekly", "month": "monthly", "quarter": "quarterly", "year": "yearly"}


def _check_grain(grain: str) -> None:
    if grain not in GRAINS:
        raise UnknownPeriod(f"unknown grain {grain!r} (one of {', '.join(GRAINS)})")


def period_bounds(d: dt.date, grain: str) -> tuple[dt.date, dt.date]:
    """First and last calendar day of the period of ``grain`` that contains ``d``.

    Raises:
        UnknownPeriod: Unknown grain.
    """
    _check_grain(grain)
    if grain == "day":
        return d, d
    if grain == "week":
        start = d - dt.timedelta(days=d.weekday())
        return start, start + dt.timedelta(days=6)
    if grain == "year":
        return dt.date(d.year, 1, 1), dt.date(d.year, 12, 31)
    first_month = d.month if grain == "month" else (d.month - 1) // 3 * 3 + 1
    start = dt.date(d.year, first_month, 1)
    months = 1 if grain == "month" else 3
    y, m = divmod(first_month - 1 + months, 12)
    return start, dt.date(d.year + y, m + 1, 1) - dt.timedelta(days=1)


def previous_period(d: dt.date, grain: str) -> tuple[dt.date, dt.date]:
    """Calendar bounds of the period just before the one containing ``d``."""
    start, _ = period_bounds(d, grain)
    return period_bounds(start - dt.timedelta(days=1), grain)


def period_starts(dates: np.ndarray, grain: str) -> np.ndarray:
    """Vectorised :func:`period_bounds` start for an array of ``datetime64[D]``."""
    _check_grain(grain)
    days: np.ndarray = dates.astype("datetime64[D]")
    if grain == "day":
        return days
    if grain == "week":
        # 1970-01-01 was a Thursday: (days + 3) % 7 is 0 on Mondays.
        mondays: np.ndarray = days - ((days.astype(np.int64) + 3) % 7).astype("timedelta64[D]")
        return mondays
    if grain == "month":
        return days.astype("datetime64[M]").astype("datetime64[D]")
    if grain == "quarter":
        months = days.astype("datetime64[M]").astype(np.int64)
        return (months - months % 3).astype("datetime64[M]").astype("datetime64[D]")
    return days.astype("datetime64[Y]").astype("datetime64[D]")


@dataclass(frozen=True)
class TickerChange:
    """One ticker's contribution to a period comparison.

    Attributes:
        ticker: The ticker.
        from_date: Day of the previous value (None for flows, which sum a period).
        previous: Previous period's value (a level adjusted for the corporate actions up to ``to_date``).
        to_date: Day of the current value (None for flows).
        current: Current period's value, as it was.
        change: ``current - previous``.
        pct_change: Percent change (NaN when ``previous`` is zero).
        adjusted_for: The corporate actions ``previous`` is adjusted for, described.
    """

    ticker: str
    from_date: dt.date | None
    previous: float
    to_date: dt.date | None
    current: float
    change: float
    pct_change: float
    adjusted_for: tuple[str, ...] = ()


@dataclass(frozen=True)
class PeriodResult:
    """The aggregate of one period against a comparison period.

    Attributes:
        kind: ``period`` (whole period vs previous period) or ``period_to_date``.
        date: The anchor date.
        grain: day, week, month, quarter or year.
        measure: The measure totalled.
        period_start: First calendar day of the current period.
        period_end: Last day of the current span (period end, or the anchor for period-to-date).
        previous_start: First calendar day of the comparison span.
        previous_end: Last calendar day of the comparison span.
        previous: Total of the comparison span.
        current: Total of the current span.
        change: ``current - previous``.
        pct_change: Percent change.
        complete: False when the data ends before the current period does.
        tickers: Per-ticker breakdown of the totals.
        excluded: Tickers left out of both totals, with the reason.
        narrative: One QuickSight-style sentence.
    """

    kind: str
    date: dt.date
    grain: str
    measure: str
    period_start: dt.date
    period_end: dt.date
    previous_start: dt.date
    previous_end: dt.date
    previous: float
    current: float
    change: float
    pct_change: float
    complete: bool
    tickers: tuple[TickerChange, ...]
    excluded: tuple[Excluded, ...]
    narrative: str


def _actions_note(base: Basis, rows: list[TickerChange]) -> str:
    """`` Previous values adjusted for …`` when a corporate action lies inside a compared span."""
    notes = [
        n
        for r in rows
        if r.from_date is not None and r.to_date is not None
        for n in base.between(r.ticker, r.from_date, r.to_date)
    ]
    if not notes:
        return ""
    notes.sort(key=lambda n: (n.date, n.ticker))
    return f" Previous values are {adjusted_for(notes, name_tickers=True)}."


def _span(panel: Panel, start: dt.date, end: dt.date) -> tuple[int, int]:
    lo = int(np.searchsorted(panel.dates, np.datetime64(start, "D"), "left"))
    hi = int(np.searchsorted(panel.dates, np.datetime64(end, "D"), "right"))
    return lo, hi


def _values(panel: Panel, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Per ticker: the span's value (last value for levels, sum for flows) and the row used (-1 if none)."""
    block = panel.values[lo:hi]
    valid = ~np.isnan(block)
    has = valid.any(axis=0) if hi > lo else np.zeros(panel.values.shape[1], dtype=bool)
    if panel.measure in PRICE_MEASURES:
        last = hi - 1 - np.argmax(valid[::-1], axis=0) if hi > lo else np.zeros(len(has), dtype=np.int64)
        vals = np.where(has, panel.values[np.where(has, last, 0), np.arange(len(has))], np.nan)
        return vals, np.where(has, last, -1)
    sums = np.where(has, np.nansum(block, axis=0) if hi > lo else 0.0, np.nan)
    return sums, np.where(has, hi - 1, -1)


def _compare(
    base: Basis, cur: tuple[int, int], prev: tuple[int, int], cur_label: str, prev_label: str
) -> tuple[list[TickerChange], list[Excluded], float, float]:
    panel = base.panel
    now, now_row = _values(panel, *cur)
    was, was_row = _values(panel, *prev)
    level = panel.measure in PRICE_MEASURES
    if level:
        # Each previous level on its current day's basis: the change is the return.
        adj = base.previous(np.maximum(was_row, 0), np.maximum(now_row, 0))
        was = np.where(np.isnan(was), np.nan, adj)
    rows: list[TickerChange] = []
    excluded: list[Excluded] = []
    for j, ticker in enumerate(panel.tickers):
        a, b = not math.isnan(was[j]), not math.isnan(now[j])
        if a and b:
            change = float(now[j] - was[j])
            pct = change / float(was[j]) * 100.0 if was[j] != 0 else math.nan
            since = panel.date(int(was_row[j])) if level else None
            upto = panel.date(int(now_row[j])) if level else None
            notes = base.between(ticker, since, upto) if since and upto else ()
            rows.append(
                TickerChange(
                    ticker,
                    since,
                    float(was[j]),
                    upto,
                    float(now[j]),
                    change,
                    pct,
                    tuple(n.describe() for n in notes),
                )
            )
        elif a or b:
            missing = cur_label if a else prev_label
            excluded.append(Excluded(ticker, f"no {panel.measure} in {missing}"))
        else:
            excluded.append(Excluded(ticker, f"no {panel.measure} in {prev_label} or {cur_label}"))
    previous = float(sum(r.previous for r in rows))
    current = float(sum(r.current for r in rows))
    return rows, excluded, previous, current


def _anchor(panel: Panel, day: dt.date, grain: str) -> int:
    """Check the anchor date: a trading day for the day grain, inside the data otherwise."""
    if grain == "day":
        return panel.locate(day)
    if day < panel.first_date or day > panel.last_date:
        raise DateOutsideData(f"{fmt_date(day)} is outside the data ({panel.span()})")
    return int(np.searchsorted(panel.dates, np.datetime64(day, "D"), "right")) - 1


def period_over_period(
    bars: pa.Table,
    date: dt.date | str | None = None,
    grain: str = "day",
    measure: str = "close",
    corporate_actions: pa.Table | None = None,
) -> PeriodResult:
    """The total of the period containing ``date`` against the previous period.

    For the day grain the previous period is the previous *trading* day; for longer
    grains it is the previous calendar period (Monday-Sunday weeks, calendar months,
    quarters and years).

    Args:
        bars: Rows in the ``market.daily_bars`` schema.
        date: Any day of the period (a trading day for the day grain; default: the last one).
        grain: day, week, month, quarter or year.
        measure: The measure totalled across tickers.
        corporate_actions: Optional splits, to back-adjust unadjusted prices.

    Raises:
        DateOutsideData, NotATradingDay: Bad anchor.
        EmptyWindow: No trading day in the previous period.
        UnknownPeriod: Unknown grain.
    """
    _check_grain(grain)
    base = basis(bars, measure, corporate_actions)
    panel = base.panel
    day = as_date(date) if date is not None else panel.last_date
    t = _anchor(panel, day, grain)
    if grain == "day":
        if t == 0:
            raise EmptyWindow(
                f"{fmt_date(day)} is the first trading day in the data: no previous day to compare"
            )
        ps = pe = day
        qs = qe = panel.date(t - 1)
        cur, prev = (t, t + 1), (t - 1, t)
        complete = True
    else:
        ps, pe = period_bounds(day, grain)
        qs, qe = previous_period(day, grain)
        cur, prev = _span(panel, ps, pe), _span(panel, qs, qe)
        if prev[0] >= prev[1]:
            raise EmptyWindow(f"no trading day in the previous {grain} ({period_label(qs, grain)})")
        complete = pe <= panel.last_date
    cur_label, prev_label = period_label(ps, grain), period_label(qs, grain)
    rows, excluded, previous, current = _compare(base, cur, prev, cur_label, prev_label)
    change = current - previous
    pct = change / previous * 100.0 if previous else math.nan
    text = _period_text(measure, grain, cur_label, prev_label, rows, previous, current, change, pct)
    text += _actions_note(base, rows)
    if not complete:
        text += f" {cur_label} is not over yet: the data ends {fmt_date(panel.last_date)}."
    return PeriodResult(
        "period",
        day,
        grain,
        measure,
        ps,
        pe,
        qs,
        qe,
        previous,
        current,
        change,
        pct,
        complete,
        tuple(rows),
        tuple(excluded),
        text,
    )


def _period_text(
    measure: str,
    grain: str,
    cur_label: str,
    prev_label: str,
    rows: list[TickerChange],
    previous: float,
    current: float,
    change: float,
    pct: float,
) -> str:
    label = measure_label(measure)
    head = label[0].upper() + label[1:]
    if not rows:
        return f"{head} for {cur_label} cannot be compared with {prev_label}: no ticker has data in both."
    phrase = change_phrase(pct, change)
    if grain == "day":
        return f"{head} for {cur_label} {phrase} from {fmt_num(previous)} to {fmt_num(current)}."
    return f"{head} for {cur_label} {phrase} from {fmt_num(previous)} in {prev_label} to {fmt_num(current)}."


def period_to_date(
    bars: pa.Table,
    date: dt.date | str | None = None,
    grain: str = "month",
    measure: str = "close",
    corporate_actions: pa.Table | None = None,
) -> PeriodResult:
    """Period-to-date: the total from the start of ``date``'s period up to ``date`` (default: the last day).

    Levels (prices) compare the value on ``date`` with the last value before the period
    began (the month-to-date return an analyst quotes). Flows (volume) compare the sum so
    far with the sum over the same number of calendar days at the start of the previous
    period.

    Raises:
        BadInput: The day grain (a day-to-date is the day itself).
        DateOutsideData: ``date`` is outside the data.
        EmptyWindow: Nothing to compare with.
    """
    _check_grain(grain)
    if grain == "day":
        raise BadInput("period-to-date needs a week, month, quarter or year grain")
    base = basis(bars, measure, corporate_actions)
    panel = base.panel
    day = as_date(date) if date is not None else panel.last_date
    _anchor(panel, day, grain)
    ps, _ = period_bounds(day, grain)
    qs, qe = previous_period(day, grain)
    cur = _span(panel, ps, day)
    if cur[0] >= cur[1]:
        raise EmptyWindow(f"no trading day between {fmt_date(ps)} and {fmt_date(day)}")
    if measure in PRICE_MEASURES:
        prev = _span(panel, qs, qe)
        span_end = qe
        prev_label = f"the end of {period_label(qs, grain)}"
    else:
        span_end = min(qs + (day - ps), qe)
        prev = _span(panel, qs, span_end)
        prev_label = f"the same part of {period_label(qs, grain)}"
    if prev[0] >= prev[1]:
        raise EmptyWindow(
            f"no trading day in the previous {grain} ({period_label(qs, grain)}) to compare with"
        )
    cur_label = f"{period_label(ps, grain)} to date"
    rows, excluded, previous, current = _compare(base, cur, prev, cur_label, period_label(qs, grain))
    change = current - previous
    pct = change / previous * 100.0 if previous else math.nan
    label = measure_label(measure)
    word = {"week": "Week", "month": "Month", "quarter": "Quarter", "year": "Year"}[grain]
    if not rows:
        text = f"{word}-to-date {label} for {fmt_date(day)} cannot be compared: no ticker has data in both spans."
    elif measure in PRICE_MEASURES:
        when = max(r.from_date for r in rows if r.from_date is not None)
        text = (
            f"{word}-to-date {label} for {fmt_date(day)} {change_phrase(pct, change)} "
            f"from {fmt_num(previous)} on {fmt_date(when)} to {fmt_num(current)}."
        ) + _actions_note(base, rows)
    else:
        text = (
            f"{word}-to-date {label} for {fmt_date(day)} {change_phrase(pct, change)} "
            f"from {fmt_num(previous)} in {prev_label} to {fmt_num(current)}."
        )
    return PeriodResult(
        "period_to_date",
        day,
        grain,
        measure,
        ps,
        day,
        qs,
        span_end,
        previous,
        current,
        change,
        pct,
        True,
        tuple(rows),
        tuple(excluded),
        text,
    )


@dataclass(frozen=True)
class TickerGrowth:
    """One ticker's compound growth over a window.

    Attributes:
        ticker: The ticker.
        first_date: Day (levels) or period start (flows) of the first value.
        first_value: The first value (a level adjusted for the corporate actions up to ``last_date``).
        last_date: Day (levels) or period start (flows) of the last value.
        last_value: The last value.
        periods: Elapsed grain periods between them.
        rate_pct: Compound growth per grain period, in percent.
        partial: The ticker started or stopped trading inside the window.
        adjusted_for: The corporate actions ``first_value`` (a level) is adjusted for, described.
    """

    ticker: str
    first_date: dt.date
    first_value: float
    last_date: dt.date
    last_value: float
    periods: float
    rate_pct: float
    partial: bool
    adjusted_for: tuple[str, ...] = ()


@dataclass(frozen=True)
class GrowthResult:
    """Compound growth rate of the total over a window.

    Attributes:
        start: Requested window start.
        end: Requested window end.
        grain: The period the rate is expressed per.
        measure: The measure totalled.
        first_date: Day (levels) or period start (flows) of the first value.
        last_date: Day (levels) or period start (flows) of the last value.
        first_value: Total at the start, over the tickers present at both ends.
        last_value: Total at the end, over the same tickers.
        periods: Elapsed grain periods.
        rate_pct: Compound growth per grain period, in percent.
        annualized_pct: The same rate per year, in percent.
        total_change_pct: Overall percent change.
        tickers: Per-ticker growth (including tickers partial in the window).
        excluded: Tickers left out of the total, with the reason.
        narrative: One sentence.
    """

    start: dt.date
    end: dt.date
    grain: str
    measure: str
    first_date: dt.date
    last_date: dt.date
    first_value: float
    last_value: float
    periods: float
    rate_pct: float
    annualized_pct: float
    total_change_pct: float
    tickers: tuple[TickerGrowth, ...]
    excluded: tuple[Excluded, ...]
    narrative: str


def _rate(first: float, last: float, periods: float) -> float:
    if first <= 0 or last < 0 or periods <= 0:
        return math.nan
    # float ** float is typed Any (a negative base gives a complex); the base is positive here.
    return float(((last / first) ** (1.0 / periods) - 1.0) * 100.0)


def growth(
    bars: pa.Table,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    grain: str = "month",
    measure: str = "close",
    corporate_actions: pa.Table | None = None,
) -> GrowthResult:
    """Compound growth rate of the total across tickers, per ``grain``, over a window.

    Levels grow from the first to the last trading day of the window; the number of
    periods is the elapsed calendar time in grain units (trading days for the day
    grain). Flows grow from the first to the last calendar period's sum, over the
    number of periods between them (give whole periods: a window starting mid-month
    compares a partial first month). Only tickers with values at both ends are totalled;
    a level's first value is adjusted for the corporate actions up to its last day, so
    growth is the return no split or dividend moves.

    Raises:
        WindowTooShort: Less than one grain period between the ends.
        EmptyWindow, DateOutsideData: No data in the window.
    """
    _check_grain(grain)
    base = basis(bars, measure, corporate_actions)
    panel = base.panel
    s = as_date(start, "start") if start is not None else None
    e = as_date(end, "end") if end is not None else None
    lo, hi = panel.window(s, e)
    level = measure in PRICE_MEASURES
    if level:
        values, dates = panel.values[lo:hi], panel.dates[lo:hi]
    else:
        starts = period_starts(panel.dates[lo:hi], grain)
        dates, inverse = np.unique(starts, return_inverse=True)
        values = np.full((len(dates), len(panel.tickers)), np.nan)
        block = panel.values[lo:hi]
        for j in range(len(panel.tickers)):
            ok = ~np.isnan(block[:, j])
            if ok.any():
                sums = np.bincount(inverse[ok], weights=block[ok, j], minlength=len(dates))
                seen = np.bincount(inverse[ok], minlength=len(dates)) > 0
                values[seen, j] = sums[seen]
    d_first, d_last = dates[0].astype(object), dates[-1].astype(object)

    def elapsed(a: int, b: int) -> float:
        if grain == "day" or not level:
            return float(b - a)
        days = (dates[b] - dates[a]).astype(np.int64)
        return float(days) / _DAYS_PER[grain]

    n_all = elapsed(0, len(dates) - 1)
    unit = grain if grain != "day" else "trading day"
    if n_all < 1:
        raise WindowTooShort(
            f"the window spans {n_all:.2g} {unit}s; a {_ADVERB[grain]} growth rate needs at least one {unit}"
        )
    rows: list[TickerGrowth] = []
    excluded: list[Excluded] = []
    full: list[int] = []
    firsts = np.full(len(panel.tickers), np.nan)
    for j, ticker in enumerate(panel.tickers):
        ok = np.flatnonzero(~np.isnan(values[:, j]))
        if len(ok) == 0:
            excluded.append(Excluded(ticker, f"no {measure} in the window"))
            continue
        a, b = int(ok[0]), int(ok[-1])
        partial = a != 0 or b != len(dates) - 1
        n = elapsed(a, b)
        v0 = float(values[a, j])
        notes: tuple[str, ...] = ()
        if level and base.factor is not None:
            v0 *= float(base.factor[lo + a, j] / base.factor[lo + b, j])
            notes = tuple(x.describe() for x in base.between(ticker, panel.date(lo + a), panel.date(lo + b)))
        firsts[j] = v0
        rows.append(
            TickerGrowth(
                ticker,
                dates[a].astype(object),
                v0,
                dates[b].astype(object),
                float(values[b, j]),
                n,
                _rate(v0, float(values[b, j]), n),
                partial,
                notes,
            )
        )
        if partial:
            excluded.append(Excluded(ticker, "no value at both ends of the window"))
        else:
            full.append(j)
    first = float(np.sum(firsts[full])) if full else math.nan
    last = float(np.sum(values[-1, full])) if full else math.nan
    rate = _rate(first, last, n_all) if full else math.nan
    years = n_all / (365.25 / _DAYS_PER[grain]) if grain != "day" else n_all / 252.0
    annual = _rate(first, last, years) if full else math.nan
    total = (last / first - 1.0) * 100.0 if full and first else math.nan
    label = measure_label(measure)

    def when(d: dt.date) -> str:
        return fmt_date(d) if level else period_label(d, grain)

    span = f"{fmt_num(round(n_all, 1))} {unit}{'s' if n_all != 1 else ''}"
    if not full:
        text = f"No {label} growth rate for the window: no ticker has values at both ends."
    else:
        verb = "grew" if last >= first else "shrank"
        text = (
            f"The compounded {_ADVERB[grain]} growth rate of {label} from {when(d_first)} to "
            f"{when(d_last)} is {'-' if rate < 0 else ''}{fmt_pct(rate)} ({span}): it {verb} "
            f"from {fmt_num(first)} to {fmt_num(last)}, {'-' if annual < 0 else ''}{fmt_pct(annual)} a year."
        )
        if level:
            applied = base.across([panel.tickers[j] for j in full], d_first, d_last)
            text += f" The first values are {adjusted_for(applied, name_tickers=True)}." if applied else ""
    return GrowthResult(
        s or panel.date(lo),
        e or panel.date(hi - 1),
        grain,
        measure,
        d_first,
        d_last,
        first,
        last,
        n_all,
        rate,
        annual,
        total,
        tuple(rows),
        tuple(excluded),
        text,
    )
