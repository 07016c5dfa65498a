"""The NYSE trading calendar: the one source of trading days for the simulator and the forecasts.

The days come from the ``XNYS`` calendar of the ``exchange-calendars`` library, whose
holiday rules and special closures (weather, national days of mourning, 9/11) ship with
the package: nothing is fetched and no file is read at run time, so pure code (insights)
may use it. The calendar is built once per process, lazily, over :data:`FIRST_DAY` ..
:data:`LAST_DAY`; after :data:`LAST_DAY` every Monday to Friday counts as a trading day,
since no exchange publishes its holidays that far ahead.
"""

from __future__ import annotations

import datetime as dt
import warnings
from functools import lru_cache

import numpy as np
import numpy.typing as npt

__all__ = ["EXCHANGE", "FIRST_DAY", "LAST_DAY", "holidays", "next_trading_days", "trading_days"]

#: The library's code for the New York Stock Exchange.
EXCHANGE = "XNYS"
#: First day the calendar is built for (the simulator's market factor starts here).
FIRST_DAY = dt.date(1980, 1, 1)
#: Last day the calendar is built for: past the simulator's last date plus a forecast horizon.
LAST_DAY = dt.date(2110, 12, 31)

_WEEKDAYS = "1111100"


@lru_cache(maxsize=1)
def _sessions() -> npt.NDArray[np.datetime64]:
    """Every trading day in :data:`FIRST_DAY` .. :data:`LAST_DAY`, sorted, as ``datetime64[D]``."""
    # Imported here: the library pulls in pandas and builds its calendar in about half a
    # second, a cost only the callers that need trading days should pay.
    import exchange_calendars

    with warnings.catch_warnings():
        # The library reads tz-aware Series.values, which pandas 3.1 deprecates (a warning
        # about a future pandas, not about our dates).
        warnings.simplefilter("ignore", DeprecationWarning)
        cal = exchange_calendars.get_calendar(EXCHANGE, start=FIRST_DAY.isoformat(), end=LAST_DAY.isoformat())
        days: npt.NDArray[np.datetime64] = cal.sessions.to_numpy().astype("datetime64[D]")
    days.flags.writeable = False
    return days


def trading_days(start: dt.date, end: dt.date) -> npt.NDArray[np.datetime64]:
    """NYSE trading days in ``[start, end]``.

    Args:
        start: First calendar day (inclusive), not before :data:`FIRST_DAY`.
        end: Last calendar day (inclusive).

    Returns:
        Sorted ``datetime64[D]`` days; empty when ``start > end``.

    Raises:
        ValueError: ``start`` is before :data:`FIRST_DAY`.
    """
    if start > end:
        return np.empty(0, dtype="datetime64[D]")
    if start < FIRST_DAY:
        raise ValueError(f"the trading calendar starts on {FIRST_DAY}, not {start}")
    days = _sessions()
    lo, hi = np.datetime64(start, "D"), np.datetime64(end, "D")
    known = days[int(np.searchsorted(days, lo, side="left")) : int(np.searchsorted(days, hi, side="right"))]
    if end <= LAST_DAY:
        return known
    tail = np.arange(max(lo, np.datetime64(LAST_DAY, "D") + 1), hi + 1, dtype="datetime64[D]")
    return np.concatenate([known, tail[np.is_busday(tail, weekmask=_WEEKDAYS)]])


def next_trading_days(after: dt.date, count: int) -> list[dt.date]:
    """The first ``count`` trading days strictly after ``after`` (a holiday or weekend works too).

    Args:
        after: The last known day, not before :data:`FIRST_DAY`.
        count: How many days (0 or more).

    Returns:
        ``count`` dates in increasing order.

    Raises:
        ValueError: ``after`` is before :data:`FIRST_DAY` or ``count`` is negative.
    """
    if count < 0:
        raise ValueError(f"count must be 0 or more, got {count}")
    if count == 0:
        return []
    start = after + dt.timedelta(days=1)
    # 2 calendar days per trading day, plus two weeks, always holds `count` trading days.
    days = trading_days(start, start + dt.timedelta(days=2 * count + 14))
    return [d.item() for d in days[:count]]


def holidays(year: int) -> list[dt.date]:
    """Weekdays the NYSE is closed in ``year`` (regular holidays and special closures).

    Args:
        year: Calendar year within the calendar's range.

    Returns:
        Sorted closure dates falling on Monday to Friday.
    """
    first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
    weekdays = np.arange(np.datetime64(first, "D"), np.datetime64(last, "D") + 1)
    weekdays = weekdays[np.is_busday(weekdays, weekmask=_WEEKDAYS)]
    closed = weekdays[~np.isin(weekdays, trading_days(first, last))]
    return [d.item() for d in closed]
