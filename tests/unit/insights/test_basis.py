"""Changes on a basis no corporate action moves, on real Yahoo prices and by hand.

The real fixture (tests/fixtures/real/yahoo_2004_2008.csv) is brought to the curated
meaning of the columns by the ETL's own pure functions: ``close`` split-adjusted,
``adj_close`` as Yahoo adjusted it, the inferred splits and dividends as actions. The
raw-only variant drops ``adj_close`` and keeps the as-traded close with its split only
*suspected* (never applied), as the ETL stores a source without an adjusted close.
"""

from __future__ import annotations

import csv
import datetime as dt
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tickerlake.insights import movers, period_over_period, ranked, recession
from tickerlake.lake.actions import adjust_series, infer_from_factor, suspect_splits

REAL = Path(__file__).parents[2] / "fixtures" / "real" / "yahoo_2004_2008.csv"
D = dt.date


@cache
def _rows() -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    with open(REAL, encoding="utf-8") as f:
        for r in csv.DictReader(f):
            out.setdefault(r["Ticker"], []).append(r)
    return out


@cache
def real(raw_only: bool = False) -> tuple[pa.Table, pa.Table]:
    """(bars, corporate actions) of the fixture as the ETL stores them."""
    cols: dict[str, list[object]] = {
        k: [] for k in ("ticker", "date", "open", "high", "low", "close", "volume")
    }
    if not raw_only:
        cols["adj_close"] = []
    acts: dict[str, list[object]] = {k: [] for k in ("ticker", "date", "action", "ratio", "amount", "source")}
    for ticker, rows in _rows().items():
        dates = [D.fromisoformat(r["Date"]) for r in rows]
        c = {
            k: np.array([float(r[k]) for r in rows])
            for k in ("Open", "High", "Low", "Close", "Adj Close", "Volume")
        }
        found = (
            suspect_splits(dates, c["Close"], c["Open"])
            if raw_only
            else infer_from_factor(dates, c["Close"], c["Adj Close"])
        )
        applied = [(a.date, a.ratio or 1.0) for a in found if a.action == "split" and a.source != "suspected"]
        adj = adjust_series(dates, c["Close"], c["Open"], c["High"], c["Low"], c["Volume"], applied)
        cols["ticker"] += [ticker] * len(dates)
        cols["date"] += dates
        for name, values in (
            ("open", adj.open),
            ("high", adj.high),
            ("low", adj.low),
            ("close", adj.close),
            ("volume", adj.volume),
        ):
            cols[name] += values.tolist()
        if not raw_only:
            cols["adj_close"] += c["Adj Close"].tolist()
        for a in found:
            for k, v in (
                ("ticker", ticker),
                ("date", a.date),
                ("action", a.action),
                ("ratio", a.ratio),
                ("amount", a.amount),
                ("source", a.source),
            ):
                acts[k].append(v)
    bars = pa.table({k: pa.array(v, pa.date32() if k == "date" else None) for k, v in cols.items()})
    return bars, pa.table({k: pa.array(v, pa.date32() if k == "date" else None) for k, v in acts.items()})


def _close(ticker: str, day: str, column: str = "Close") -> float:
    return next(float(r[column]) for r in _rows()[ticker] if r["Date"] == day)


def _adj_ratio(ticker: str, before: str, after: str) -> float:
    """Yahoo's total return from ``before`` to ``after`` (adj close ratio)."""
    return _close(ticker, after, "Adj Close") / _close(ticker, before, "Adj Close")


def test_msft_special_dividend_is_not_a_bottom_mover_and_its_change_is_the_total_return() -> None:
    bars, acts = real()
    res = movers(bars, "2004-11-15", n=3, bottom=True, corporate_actions=acts)
    # As traded MSFT fell from 29.97 to 27.39 (-8.6%): the $3 special + $0.08 regular dividend.
    assert "MSFT" not in {m.ticker for m in res.rows}
    msft = next(m for m in res.ranked if m.ticker == "MSFT")
    g = _adj_ratio("MSFT", "2004-11-12", "2004-11-15")  # 20.521860133372 / 20.185104962165
    assert msft.current == 27.39 and msft.previous == pytest.approx(27.39 / g)
    assert msft.pct_change == pytest.approx((g - 1) * 100) and msft.pct_change == pytest.approx(
        1.6683, abs=1e-4
    )
    assert msft.change == pytest.approx(msft.current - msft.previous)
    assert msft.adjusted_for == ("a $3.03 dividend on Nov 15, 2004",)
    top = movers(bars, "2004-11-15", n=1, corporate_actions=acts)
    assert top.rows[0].ticker == "MSFT" and "adjusted for a $3.03 dividend on Nov 15, 2004" in top.narrative


def test_aapl_split_day_is_not_a_mover() -> None:
    bars, acts = real()
    res = movers(bars, "2005-02-28", n=4, bottom=True, corporate_actions=acts)
    aapl = next(m for m in res.ranked if m.ticker == "AAPL")
    # Split-adjusted: 88.99 / 2 = 44.495 the day before, 44.86 on the split day (+0.82%).
    assert aapl.previous == pytest.approx(44.495) and aapl.current == 44.86
    assert aapl.pct_change == pytest.approx((44.86 / 44.495 - 1) * 100)
    assert aapl.adjusted_for == ("a 2:1 split on Feb 28, 2005",)
    # Raw closes only: the split is suspected, never applied, and its day is no move.
    raw_bars, raw_acts = real(raw_only=True)
    assert raw_acts.column("source").to_pylist() == ["suspected"]
    raw = movers(raw_bars, "2005-02-28", n=4, bottom=True, corporate_actions=raw_acts)
    assert "AAPL" not in {m.ticker for m in raw.ranked}
    assert [e.reason for e in raw.excluded if e.ticker == "AAPL"] == [
        "split day: the jump in unadjusted prices is not a move"
    ]


def test_period_over_period_across_the_split_and_the_dividend_is_unmoved() -> None:
    bars, acts = real()
    day = period_over_period(bars, "2004-11-15", "day", corporate_actions=acts)
    names = ("AAPL", "GOOG", "IBM", "MSFT")
    # AAPL's closes before its 2:1 split of Feb 28, 2005 are halved in the curated close.
    cur = sum(_close(t, "2004-11-15") / (2 if t == "AAPL" else 1) for t in names)
    prev = sum(
        _close(t, "2004-11-15") / (2 if t == "AAPL" else 1) / _adj_ratio(t, "2004-11-12", "2004-11-15")
        for t in names
    )
    assert day.current == pytest.approx(cur) and day.previous == pytest.approx(prev)
    assert day.pct_change == pytest.approx((cur / prev - 1) * 100) and day.pct_change > 0
    assert "Previous values are adjusted for MSFT's $3.03 dividend on Nov 15, 2004." in day.narrative
    # The month across the special dividend: MSFT's October close on November's basis.
    month = period_over_period(bars, "2004-11-30", "month", corporate_actions=acts)
    msft = next(t for t in month.tickers if t.ticker == "MSFT")
    g = _adj_ratio("MSFT", "2004-10-29", "2004-11-30")
    assert msft.previous == pytest.approx(_close("MSFT", "2004-11-30") / g)
    assert msft.pct_change == pytest.approx((g - 1) * 100)
    # The split day on raw closes only (suspected split): the same total change as curated.
    curated = period_over_period(bars, "2005-02-28", "day", corporate_actions=acts)
    raw_bars, raw_acts = real(raw_only=True)
    raw = period_over_period(raw_bars, "2005-02-28", "day", corporate_actions=raw_acts)
    aapl = next(t for t in raw.tickers if t.ticker == "AAPL")
    assert aapl.previous == pytest.approx(88.99 / 2) and aapl.current == 44.86
    assert aapl.adjusted_for == ("a suspected 2:1 split on Feb 28, 2005",)
    assert raw.current == pytest.approx(curated.current) and raw.previous == pytest.approx(
        curated.previous, rel=1e-3
    )


def test_a_suspected_split_in_raw_closes_is_no_crash_in_recessions() -> None:
    raw_bars, raw_acts = real(raw_only=True)
    res = recession(raw_bars, start="2005-02-01", end="2005-03-31", corporate_actions=raw_acts)
    aapl = next(r for r in res.tickers if r.ticker == "AAPL")
    # As traded AAPL fell from 76.90 to 41.67 (-45.8%); net of the 2:1 split it rose.
    first, last = _close("AAPL", "2005-02-01"), _close("AAPL", "2005-03-31")
    assert aapl.end_value == last and aapl.start_value == pytest.approx(first / 2)
    assert aapl.return_pct == pytest.approx((last / (first / 2) - 1) * 100) and aapl.return_pct > 0
    assert aapl.worst_day_pct > -10 and aapl.max_drawdown_pct > -20 and aapl.worst_day != D(2005, 2, 28)
    assert res.basket.worst_day_pct > -5
    assert res.narrative.endswith(
        "Earlier levels are adjusted for AAPL's suspected 2:1 split on Feb 28, 2005."
    )


def _synthetic() -> tuple[pa.Table, pa.Table]:
    """A pays a $5 dividend (ex-date Jan 5) after closing at 102; B pays nothing.

    adj_close as Yahoo computes it: before the ex-date, close × (1 - 5 / 102).
    """
    days = [D(2022, 1, 3), D(2022, 1, 4), D(2022, 1, 5)]
    f = 1 - 5 / 102
    bars = pa.table(
        {
            "ticker": ["A"] * 3 + ["B"] * 3,
            "date": pa.array(days * 2, pa.date32()),
            "close": [100.0, 102.0, 98.0, 50.0, 50.0, 49.0],
            "adj_close": [100.0 * f, 102.0 * f, 98.0, 50.0, 50.0, 49.0],
            "volume": [10] * 6,
        }
    )
    actions = pa.table(
        {
            "ticker": ["A"],
            "date": pa.array([D(2022, 1, 5)], pa.date32()),
            "action": ["dividend"],
            "ratio": pa.array([None], pa.float64()),
            "amount": [5.0],
            "source": ["inferred"],
        }
    )
    return bars, actions


def test_a_dividend_by_hand() -> None:
    bars, acts = _synthetic()
    a = next(m for m in movers(bars, "2022-01-05", corporate_actions=acts).ranked if m.ticker == "A")
    # Previous close 102 less the $5 dividend: 97; 98 / 97 - 1 = +1.0309%, not 98 / 102 - 1 = -3.92%.
    assert (a.previous, a.current, a.change) == (pytest.approx(97.0), 98.0, pytest.approx(1.0))
    assert a.pct_change == pytest.approx(100 / 97)
    assert a.adjusted_for == ("a $5.00 dividend on Jan 5, 2022",)
    # The total: 97 + 50 before, 98 + 49 after: unchanged (it fell 5 as traded).
    day = period_over_period(bars, "2022-01-05", "day", corporate_actions=acts)
    assert (day.previous, day.current, day.change) == (
        pytest.approx(147.0),
        147.0,
        pytest.approx(0.0, abs=1e-9),
    )
    # Over the window, A's first close on the last day's basis: 100 × (1 - 5/102) = 95.098.
    r = ranked(bars, n=2, corporate_actions=acts)
    row = next(x for x in r.rows if x.ticker == "A")
    assert row.first_value == pytest.approx(100 * 97 / 102) and row.pct_change == pytest.approx(
        (98 / (100 * 97 / 102) - 1) * 100
    )
    assert r.rows[0].ticker == "A"  # +3.05% against B's -2%
    rec = recession(bars, start="2022-01-03", end="2022-01-05", corporate_actions=acts)
    rec_a = next(x for x in rec.tickers if x.ticker == "A")
    assert rec_a.return_pct == pytest.approx(row.pct_change) and rec_a.worst_day_pct == pytest.approx(
        100 / 97
    )
    # Without corporate actions and with adj_close == close, nothing is adjusted.
    plain = bars.set_column(bars.column_names.index("adj_close"), "adj_close", bars.column("close"))
    b = next(m for m in movers(plain, "2022-01-05").ranked if m.ticker == "A")
    assert (b.previous, b.pct_change, b.adjusted_for) == (102.0, pytest.approx(-400 / 102), ())


def test_a_forecast_series_across_the_special_dividend_sees_no_drop() -> None:
    from tickerlake.insights.forecast import _series

    bars, actions = real()
    _, _, dates, values = _series(bars, "MSFT", "close", actions, D(2004, 11, 1))
    at = dict(zip(dates.astype(object).tolist(), values.tolist(), strict=True))
    # On the origin the value is the close as traded (28.08); every other day is on that
    # day's basis, so the ex-dividend day moves by adj_close's ratio (+1.67 %), not -8.6 %.
    assert at[D(2004, 11, 1)] == pytest.approx(28.08, rel=1e-12)
    ratio = 20.521860133372 / 20.185104962165
    assert at[D(2004, 11, 15)] / at[D(2004, 11, 12)] == pytest.approx(ratio, rel=1e-9)
    assert at[D(2004, 11, 12)] == pytest.approx(28.08 * 20.185104962165 / 18.912170415001, rel=1e-9)
