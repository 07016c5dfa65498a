"""Period-over-period, period-to-date, growth and calendar boundaries."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickerlake.insights import growth, period_bounds, period_over_period, period_to_date, previous_period
from tickerlake.insights.errors import BadInput, DateOutsideData, EmptyWindow, UnknownPeriod, WindowTooShort
from tickerlake.insights.periods import GRAINS, period_starts


def test_day_over_day_matches_the_quicksight_sentence(make_bars) -> None:
    bars = make_bars(
        [
            ("A", "2022-06-29", 1000.0),
            ("A", "2022-06-30", 980.0),
            ("B", "2022-06-29", 309.31),
            ("B", "2022-06-30", 305.6),
        ]
    )
    res = period_over_period(bars, "2022-06-30")
    assert (
        res.narrative == "Total close for Jun 30, 2022 decreased by 1.81% (-23.71) from 1,309.31 to 1,285.6."
    )
    assert (res.previous, res.current) == (pytest.approx(1309.31), pytest.approx(1285.6))
    assert (res.previous_start, res.period_start) == (dt.date(2022, 6, 29), dt.date(2022, 6, 30))
    assert period_over_period(bars).narrative == res.narrative  # default: the last trading day
    with pytest.raises(EmptyWindow, match="first trading day"):
        period_over_period(bars, "2022-06-29")
    with pytest.raises(DateOutsideData):
        period_over_period(bars, "2022-06-25")


MONTHS = [
    ("A", "2022-05-02", 95.0, 10),
    ("A", "2022-05-31", 100.0, 20),
    ("A", "2022-06-01", 97.0, 30),
    ("A", "2022-06-15", 92.0, 40),
    ("A", "2022-06-30", 90.0, 50),
    ("B", "2022-05-13", 45.0, 1),
    ("B", "2022-05-31", 50.0, 2),
    ("B", "2022-06-15", 52.0, 3),
    ("B", "2022-06-29", 55.0, 4),  # no bar on Jun 30: its June value is Jun 29's
    ("C", "2022-06-15", 10.0, 100),  # listed in June: in neither total
]


def test_month_over_month_with_an_ipo(make_bars) -> None:
    res = period_over_period(make_bars(MONTHS), "2022-06-10", grain="month")
    assert (res.period_start, res.period_end) == (dt.date(2022, 6, 1), dt.date(2022, 6, 30))
    assert (res.previous_start, res.previous_end) == (dt.date(2022, 5, 1), dt.date(2022, 5, 31))
    assert (res.previous, res.current, res.change) == (150.0, 145.0, -5.0)
    assert res.narrative == "Total close for Jun 2022 decreased by 3.33% (-5) from 150 in May 2022 to 145."
    b = next(t for t in res.tickers if t.ticker == "B")
    assert (b.from_date, b.to_date) == (dt.date(2022, 5, 31), dt.date(2022, 6, 29))
    assert [(e.ticker, e.reason) for e in res.excluded] == [("C", "no close in May 2022")]
    vol = period_over_period(make_bars(MONTHS), "2022-06-10", grain="month", measure="volume")
    assert (vol.previous, vol.current) == (33.0, 127.0)  # A 10+20, B 1+2 → A 30+40+50, B 3+4


def test_incomplete_period_and_missing_previous_period(make_bars) -> None:
    bars = make_bars([r for r in MONTHS if r[1] <= "2022-06-15"])
    res = period_over_period(bars, "2022-06-15", grain="month")
    assert not res.complete
    assert res.narrative.endswith("Jun 2022 is not over yet: the data ends Jun 15, 2022.")
    # Q2 against Q1, which holds no data at all.
    with pytest.raises(EmptyWindow, match=r"previous quarter \(Q1 2022\)"):
        period_over_period(bars, "2022-05-10", grain="quarter")
    with pytest.raises(UnknownPeriod):
        period_over_period(bars, "2022-05-10", grain="fortnight")


def test_period_to_date(make_bars) -> None:
    res = period_to_date(make_bars(MONTHS), "2022-06-15", grain="month")
    assert (res.previous, res.current) == (150.0, 144.0)  # May 31: 100 + 50 → Jun 15: 92 + 52
    assert res.narrative == (
        "Month-to-date total close for Jun 15, 2022 decreased by 4% (-6) from 150 on May 31, 2022 to 144."
    )
    vol = period_to_date(make_bars(MONTHS), "2022-06-15", grain="month", measure="volume")
    # Jun 1..15 against May 1..15: A 30+40 vs 10, B 3 vs 1.
    assert (vol.previous, vol.current) == (11.0, 73.0)
    assert (vol.previous_start, vol.previous_end) == (dt.date(2022, 5, 1), dt.date(2022, 5, 15))
    with pytest.raises(BadInput):
        period_to_date(make_bars(MONTHS), "2022-06-15", grain="day")


def test_growth_rates(make_bars) -> None:
    days = make_bars([("A", "2022-01-03", 100.0), ("A", "2022-01-04", 110.0), ("A", "2022-01-05", 121.0)])
    res = growth(days, grain="day")
    assert res.rate_pct == pytest.approx(10.0)
    assert res.periods == 2.0
    bars = make_bars(
        [
            ("A", "2022-01-03", 60.0),
            ("A", "2022-03-04", 72.6),
            ("B", "2022-01-03", 40.0),
            ("B", "2022-03-04", 48.4),
        ]
    )
    res = growth(bars, "2022-01-01", "2022-03-31", grain="month")
    months = 60 / (365.25 / 12)
    assert res.periods == pytest.approx(months)
    assert res.rate_pct == pytest.approx((1.21 ** (1 / months) - 1) * 100)
    assert res.annualized_pct == pytest.approx((1.21 ** (365.25 / 60) - 1) * 100)
    assert res.total_change_pct == pytest.approx(21.0)
    assert "compounded monthly growth rate of total close from Jan 3, 2022 to Mar 4, 2022" in res.narrative
    with pytest.raises(WindowTooShort, match="at least one month"):
        growth(bars, "2022-01-01", "2022-01-31", grain="month")
    vol = growth(make_bars(MONTHS), grain="month", measure="volume")
    assert (vol.first_value, vol.last_value, vol.periods) == (
        33.0,
        127.0,
        1.0,
    )  # C (listed in June) is not in the total


def test_growth_excludes_partial_tickers_from_the_total(make_bars) -> None:
    res = growth(make_bars(MONTHS), "2022-05-02", "2022-06-30", grain="week")
    assert [e.ticker for e in res.excluded] == ["B", "C"]
    assert (res.first_value, res.last_value) == (95.0, 90.0)
    assert next(t for t in res.tickers if t.ticker == "C").partial


@pytest.mark.parametrize(
    ("day", "grain", "bounds"),
    [
        ("2022-06-30", "day", ("2022-06-30", "2022-06-30")),
        ("2022-06-30", "week", ("2022-06-27", "2022-07-03")),
        ("2022-01-01", "week", ("2021-12-27", "2022-01-02")),
        ("2024-02-10", "month", ("2024-02-01", "2024-02-29")),
        ("2022-12-31", "quarter", ("2022-10-01", "2022-12-31")),
        ("2022-05-15", "quarter", ("2022-04-01", "2022-06-30")),
        ("2022-05-15", "year", ("2022-01-01", "2022-12-31")),
    ],
)
def test_period_bounds_hand_cases(day: str, grain: str, bounds: tuple[str, str]) -> None:
    got = period_bounds(dt.date.fromisoformat(day), grain)
    assert got == tuple(dt.date.fromisoformat(b) for b in bounds)


@settings(max_examples=300, deadline=None)
@given(st.dates(dt.date(1990, 1, 1), dt.date(2060, 12, 31)), st.sampled_from(GRAINS))
def test_period_boundaries_are_calendar_correct(day: dt.date, grain: str) -> None:
    start, end = period_bounds(day, grain)
    assert start <= day <= end
    assert period_bounds(start, grain) == period_bounds(end, grain) == (start, end)
    before = start - dt.timedelta(days=1)
    assert period_bounds(before, grain)[1] == before
    assert previous_period(day, grain) == period_bounds(before, grain)
    after = end + dt.timedelta(days=1)
    assert period_bounds(after, grain)[0] == after
    length = (end - start).days + 1
    expected = {
        "day": {1},
        "week": {7},
        "month": {28, 29, 30, 31},
        "quarter": {90, 91, 92},
        "year": {365, 366},
    }
    assert length in expected[grain]
    if grain == "week":
        assert start.weekday() == 0
    if grain in ("month", "quarter", "year"):
        assert start.day == 1 and (start.month - 1) % {"month": 1, "quarter": 3, "year": 12}[grain] == 0
    vector = period_starts(np.array([np.datetime64(day, "D")]), grain)
    assert vector[0].astype(object) == start
    assert not math.isnan(length)
