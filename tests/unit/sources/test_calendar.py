"""Unit tests of the shared NYSE trading calendar (pure, no I/O)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from tickerlake import calendar

D = dt.date


def test_next_trading_days_skip_christmas_and_new_year() -> None:
    assert calendar.next_trading_days(D(2023, 12, 22), 5) == [
        D(2023, 12, 26),
        D(2023, 12, 27),
        D(2023, 12, 28),
        D(2023, 12, 29),
        D(2024, 1, 2),
    ]


def test_next_trading_days_start_strictly_after_any_day() -> None:
    # From a holiday (Thanksgiving 2023) and from a Saturday: the next session, not one later.
    assert calendar.next_trading_days(D(2023, 11, 23), 2) == [D(2023, 11, 24), D(2023, 11, 27)]
    assert calendar.next_trading_days(D(2023, 12, 23), 1) == [D(2023, 12, 26)]
    assert calendar.next_trading_days(D(2023, 12, 22), 0) == []
    with pytest.raises(ValueError, match="count"):
        calendar.next_trading_days(D(2023, 12, 22), -1)


def test_long_horizon_counts_every_session() -> None:
    days = calendar.next_trading_days(D(2023, 12, 29), 750)
    assert len(days) == 750 == len(set(days))
    assert days == calendar.trading_days(D(2024, 1, 1), days[-1]).astype(object).tolist()


def test_weekdays_after_the_last_known_year() -> None:
    end = calendar.LAST_DAY
    days = calendar.trading_days(end - dt.timedelta(days=6), end + dt.timedelta(days=10))
    tail = days[days > np.datetime64(end, "D")].astype(object).tolist()
    assert tail and all(d.weekday() < 5 for d in tail)
    assert len(calendar.next_trading_days(end, 3)) == 3


def test_range_checks() -> None:
    assert len(calendar.trading_days(D(2024, 1, 2), D(2024, 1, 1))) == 0
    with pytest.raises(ValueError, match="starts on 1980-01-01"):
        calendar.trading_days(D(1979, 12, 31), D(1980, 1, 10))
    assert calendar.trading_days(D(1980, 1, 1), D(1980, 1, 3)).astype(object).tolist() == [
        D(1980, 1, 2),
        D(1980, 1, 3),
    ]
