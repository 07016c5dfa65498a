"""Sentence style of the insights: QuickSight-like numbers, dates and lists. No I/O.

Every insight's ``narrative`` is built from these helpers so that all kinds read alike:
dates as "Jun 30, 2022", numbers with thousands separators and at most two decimals
(trailing zeros dropped: "8.3", "1,309.31"), percentages without sign next to a verb
("decreased by 1.81%") and the signed absolute change in brackets ("(-23.71)").
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

__all__ = [
    "change_phrase",
    "fmt_date",
    "fmt_num",
    "fmt_pct",
    "fmt_signed_pct",
    "join_and",
    "measure_label",
    "period_label",
]

_MEASURE_WORDS = {"adj_close": "adj close"}


def fmt_date(d: dt.date) -> str:
    """A date as "Jun 30, 2022"."""
    return f"{d:%b} {d.day}, {d.year}"


def fmt_num(x: float | int | None) -> str:
    """A number with thousands separators and at most two decimals, trailing zeros dropped.

    Values that would round to zero at two decimals keep two significant digits instead
    (a penny stock's 0.0043 stays readable); integers print without decimals.

    Args:
        x: The value; ``None`` and NaN print as "n/a".
    """
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, int) and not isinstance(x, bool):
        return f"{x:,}"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    ax = abs(x)
    if 0 < ax < 0.005:
        digits = 1 - math.floor(math.log10(ax))
        text = f"{x:.{digits}f}".rstrip("0").rstrip(".")
    else:
        text = f"{x:,.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def fmt_pct(pct: float | None) -> str:
    """An unsigned percentage ("5.18%") for use after a verb that carries the direction."""
    if pct is None or math.isnan(pct):
        return "n/a"
    return fmt_num(abs(pct)) + "%"


def fmt_signed_pct(pct: float | None) -> str:
    """A signed percentage ("+5.18%", "-1.81%", "0%") for tables and brackets."""
    if pct is None or math.isnan(pct):
        return "n/a"
    text = fmt_num(pct)
    if text == "0":
        return "0%"
    return ("+" if pct > 0 else "") + text + "%"


def join_and(items: Sequence[str]) -> str:
    """Join phrases the way QuickSight does: "A", "A, and B", "A, B, and C"."""
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + ", and " + items[-1]


def measure_label(measure: str, aggregate: str = "total") -> str:
    """The measure as narratives name it, e.g. "total close", "total adj close"."""
    word = _MEASURE_WORDS.get(measure, measure.replace("_", " "))
    return f"{aggregate} {word}" if aggregate else word


def change_phrase(pct: float | None, change: float) -> str:
    """ "increased by 5.18% (0.43)", "decreased by 1.81% (-23.71)" or "was unchanged".

    Args:
        pct: Percent change (``None`` or NaN when the base is zero).
        change: Signed absolute change.
    """
    if change == 0:
        return "was unchanged"
    verb = "increased" if change > 0 else "decreased"
    if pct is None or math.isnan(pct) or math.isinf(pct):
        return f"{verb} by {fmt_num(abs(change))} ({fmt_num(change)})"
    return f"{verb} by {fmt_pct(pct)} ({fmt_num(change)})"


def period_label(start: dt.date, grain: str) -> str:
    """A calendar period as prose: "Jun 30, 2022", "the week of Jun 27, 2022", "Jun 2022", "Q2 2022", "2022"."""
    if grain == "day":
        return fmt_date(start)
    if grain == "week":
        return f"the week of {fmt_date(start)}"
    if grain == "month":
        return f"{start:%b} {start.year}"
    if grain == "quarter":
        return f"Q{(start.month - 1) // 3 + 1} {start.year}"
    if grain == "year":
        return str(start.year)
    raise ValueError(f"unknown grain {grain!r}")
