"""Movers: hand-computed fixture (holiday, IPO, gap, tie, split), edge cases and properties."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickerlake.insights import movers
from tickerlake.insights.errors import BadInput, DateOutsideData, NotATradingDay

# Jan 19, 2009 was Martin Luther King Jr. Day: no bars, so Jan 20 compares with Jan 16.
ROWS = [
    ("AAPL", "2009-01-15", 8.0),
    ("AAPL", "2009-01-16", 8.3),
    ("AAPL", "2009-01-20", 8.73),
    ("GOOGL", "2009-01-15", 300.0),
    ("GOOGL", "2009-01-16", 310.0),
    ("GOOGL", "2009-01-20", 299.15),
    ("MSFT", "2009-01-15", 20.0),
    ("MSFT", "2009-01-16", 19.0),
    ("MSFT", "2009-01-20", 19.95),
    ("TSLA", "2009-01-15", 41.0),
    ("TSLA", "2009-01-16", 40.0),
    ("TSLA", "2009-01-20", 42.0),
    ("NFLX", "2009-01-20", 5.0),  # first bar: an IPO
    ("AMZN", "2009-01-15", 50.0),  # no bar on Jan 16: missing data
    ("AMZN", "2009-01-20", 52.5),
    ("NVDA", "2009-01-15", 10.2),
    ("NVDA", "2009-01-16", 10.0),
    ("NVDA", "2009-01-20", 5.1),  # unadjusted 2:1 split
]
DAY = dt.date(2009, 1, 20)


def test_top_movers_hand_computed(make_bars, make_actions) -> None:
    res = movers(make_bars(ROWS), "2009-01-20", corporate_actions=make_actions([("NVDA", "2009-01-20", 2.0)]))
    assert [m.ticker for m in res.rows] == ["AAPL", "MSFT", "TSLA"]  # MSFT and TSLA tie at 5%
    aapl = res.rows[0]
    assert (aapl.previous_date, aapl.previous, aapl.current) == (dt.date(2009, 1, 16), 8.3, 8.73)
    assert aapl.change == pytest.approx(0.43)
    assert aapl.pct_change == pytest.approx(5.180722891566265)
    assert res.narrative == (
        "Top total close movers for Jan 20, 2009 are: AAPL increased by 5.18% (0.43), from 8.3 to 8.73, "
        "MSFT increased by 5% (0.95), from 19 to 19.95, and TSLA increased by 5% (2), from 40 to 42. "
        "Excluded: AMZN (no close on the previous trading day Jan 16, 2009 (last on Jan 15, 2009)); "
        "NFLX (first trading day in the data (no previous bar)); "
        "NVDA (split day: the jump in unadjusted prices is not a move)."
    )
    assert {e.ticker for e in res.excluded} == {"AMZN", "NFLX", "NVDA"}
    assert len(res.ranked) + len(res.excluded) == 7


def test_bottom_movers_and_split_without_actions(make_bars) -> None:
    res = movers(make_bars(ROWS), DAY, n=2, bottom=True)
    # Without the corporate action the unadjusted split looks like a crash; with it, it is excluded.
    assert [m.ticker for m in res.rows] == ["NVDA", "GOOGL"]
    assert res.rows[1].pct_change == pytest.approx(-3.5)
    assert res.narrative.startswith(
        "Bottom total close movers for Jan 20, 2009 are: NVDA decreased by 49% (-4.9), from 10 to 5.1, "
        "and GOOGL decreased by 3.5% (-10.85), from 310 to 299.15."
    )


def test_rank_by_absolute_change_and_volume(make_bars) -> None:
    res = movers(make_bars(ROWS), DAY, n=1, rank_by="change")
    assert res.rows[0].ticker == "TSLA"
    vol = movers(
        make_bars([("A", "2022-01-03", 1.0, 1_000_000), ("A", "2022-01-04", 1.0, 1_500_000)]),
        "2022-01-04",
        measure="volume",
    )
    assert vol.narrative == (
        "Top total volume mover for Jan 4, 2022 is: A increased by 50% (500,000), from 1,000,000 to 1,500,000."
    )


def test_single_ticker_lake_and_first_day(make_bars) -> None:
    bars = make_bars([("AAPL", "2022-06-29", 100.0), ("AAPL", "2022-06-30", 99.0)])
    res = movers(bars, "2022-06-30")
    assert [(m.ticker, m.pct_change) for m in res.rows] == [("AAPL", pytest.approx(-1.0))]
    first = movers(bars, "2022-06-29")
    assert first.rows == () and first.excluded[0].reason.startswith("first trading day")
    assert first.narrative.startswith("No total close movers for Jun 29, 2022")


def test_bad_dates(make_bars) -> None:
    bars = make_bars(ROWS)
    with pytest.raises(NotATradingDay, match="Jan 19, 2009 is not a trading day"):
        movers(bars, "2009-01-19")
    with pytest.raises(DateOutsideData, match="outside the data"):
        movers(bars, "2020-01-02")
    with pytest.raises(BadInput):
        movers(bars, DAY, n=0)


DATES = [dt.date(2022, 1, 3) + dt.timedelta(days=i) for i in range(12)]
prices = st.floats(min_value=0.01, max_value=5000, allow_nan=False, allow_infinity=False)


@st.composite
def lakes(draw: st.DrawFn) -> tuple[list[tuple[str, str, float]], dt.date]:
    rows = []
    for ticker in draw(st.lists(st.sampled_from(["AAPL", "MSFT", "GOOGL", "META"]), min_size=1, unique=True)):
        days = draw(st.lists(st.sampled_from(DATES), min_size=1, max_size=12, unique=True))
        rows += [(ticker, d.isoformat(), draw(prices)) for d in days]
    day = dt.date.fromisoformat(draw(st.sampled_from([r[1] for r in rows])))
    return rows, day


@settings(max_examples=60, deadline=None)
@given(lakes(), st.booleans())
def test_movers_agree_with_their_rows(make_bars, lake: tuple[list, dt.date], bottom: bool) -> None:
    rows, day = lake
    values = {(t, dt.date.fromisoformat(d)): c for t, d, c in rows}
    res = movers(make_bars(rows), day, n=10, bottom=bottom)
    for m in res.ranked:
        assert values[(m.ticker, m.date)] == m.current
        assert values[(m.ticker, m.previous_date)] == m.previous
        assert m.change == pytest.approx(m.current - m.previous)
        assert m.pct_change == pytest.approx((m.current - m.previous) / m.previous * 100)
    pct = [m.pct_change for m in res.ranked]
    assert pct == sorted(pct, reverse=not bottom) or len({round(p, 9) for p in pct}) < len(pct)
    assert len(res.ranked) + len(res.excluded) == len({t for t, _, _ in rows})


def test_default_date_is_the_last_trading_day(make_bars) -> None:
    assert movers(make_bars(ROWS)).date == DAY
