"""Unit tests of the simulated market source (pure, no I/O)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest

from tickerlake.config import DEFAULT_TICKERS
from tickerlake.errors import TickerlakeError
from tickerlake.lake.contract import RAW_ACTION_COLUMNS, RAW_BAR_COLUMNS
from tickerlake.sources import sim

D = dt.date


def _run(**kwargs: object) -> dict[str, pa.Table]:
    """Concatenate every batch of one simulation per dataset."""
    parts: dict[str, list[pa.Table]] = {}
    for name, table in sim.simulate(**kwargs):  # type: ignore[arg-type]
        parts.setdefault(name, []).append(table)
    return {k: pa.concat_tables(v) for k, v in parts.items()}


@pytest.fixture(scope="module")
def default() -> dict[str, pa.Table]:
    return _run()


def _series(table: pa.Table, ticker: str, column: str = "close") -> tuple[list[dt.date], np.ndarray]:
    rows = table.filter(pc.equal(table["ticker"], ticker))
    return rows["date"].to_pylist(), rows[column].to_numpy()


def _on(table: pa.Table, ticker: str, day: dt.date, column: str = "close") -> float:
    dates, values = _series(table, ticker, column)
    return float(values[dates.index(day)])


def _log_returns(table: pa.Table, ticker: str) -> tuple[list[dt.date], np.ndarray]:
    dates, close = _series(table, ticker)
    return dates[1:], np.diff(np.log(close))


def _csv(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pacsv.write_csv(table, buf)
    return buf.getvalue()


# --- calendar ------------------------------------------------------------------------


def test_trading_days_around_christmas_2008() -> None:
    days = sim.trading_days(D(2008, 12, 20), D(2009, 1, 5)).astype(object).tolist()
    assert days == [
        D(2008, 12, 22),
        D(2008, 12, 23),
        D(2008, 12, 24),
        D(2008, 12, 26),
        D(2008, 12, 29),
        D(2008, 12, 30),
        D(2008, 12, 31),
        D(2009, 1, 2),
        D(2009, 1, 5),
    ]


def test_nyse_holidays_2022_by_rule() -> None:
    # New Year's Day 2022 is a Saturday: no closure; Juneteenth (Sunday) is observed Monday
    # 20 June; Christmas (Sunday) on Monday 26 December; Easter is 17 April.
    assert sim.nyse_holidays(2022) == [
        D(2022, 1, 17),
        D(2022, 2, 21),
        D(2022, 4, 15),
        D(2022, 5, 30),
        D(2022, 6, 20),
        D(2022, 7, 4),
        D(2022, 9, 5),
        D(2022, 11, 24),
        D(2022, 12, 26),
    ]


@pytest.mark.parametrize(
    ("day", "open_"),
    [
        (D(2008, 12, 25), False),
        (D(2022, 6, 20), False),
        (D(2020, 1, 1), False),
        (D(2008, 10, 7), True),
        (D(2001, 9, 11), False),
        (D(2001, 9, 14), False),
        (D(2001, 9, 17), True),
        (D(2012, 10, 29), False),
        (D(2021, 12, 31), True),  # New Year 2022 falls on a Saturday
        (D(2021, 6, 18), True),  # Juneteenth is a holiday only from 2022
        (D(1997, 1, 20), True),  # MLK Day closes the exchange only from 1998
        (D(1998, 1, 19), False),
        (D(2008, 3, 21), False),  # Good Friday
        (D(2000, 4, 21), False),  # Good Friday
        (D(2015, 7, 3), False),  # 4 July 2015 was a Saturday
        (D(2010, 6, 26), False),  # a Saturday
    ],
)
def test_calendar_days(day: dt.date, open_: bool) -> None:
    assert (len(sim.trading_days(day, day)) == 1) is open_


def test_calendar_size_is_realistic() -> None:
    # 252 sessions is the textbook year; 2023 had 250.
    assert len(sim.trading_days(D(2023, 1, 1), D(2023, 12, 31))) == 250


@pytest.mark.parametrize(
    "day",
    [
        D(1980, 11, 4),  # presidential Election Day, the last one the exchange closed for
        D(1985, 9, 27),  # Hurricane Gloria
        D(1994, 4, 27),  # President Nixon's funeral
        D(2004, 6, 11),  # President Reagan's funeral
        D(2007, 1, 2),  # President Ford's funeral
        D(2012, 10, 30),  # Hurricane Sandy, second day
        D(2018, 12, 5),  # President G. H. W. Bush's funeral
        D(2025, 1, 9),  # President Carter's funeral
    ],
)
def test_special_closures_come_from_the_exchange_calendar(day: dt.date) -> None:
    assert len(sim.trading_days(day, day)) == 0
    assert day in sim.nyse_holidays(day.year)


def test_forecast_horizon_years_follow_the_rules() -> None:
    # 2027: Juneteenth falls on a Saturday (closed Friday 18 June), Christmas on a
    # Saturday (closed Friday 24 December), and New Year 2028 on a Saturday closes nothing.
    assert sim.nyse_holidays(2027) == [
        D(2027, 1, 1),
        D(2027, 1, 18),
        D(2027, 2, 15),
        D(2027, 3, 26),
        D(2027, 5, 31),
        D(2027, 6, 18),
        D(2027, 7, 5),
        D(2027, 9, 6),
        D(2027, 11, 25),
        D(2027, 12, 24),
    ]
    assert len(sim.trading_days(D(2027, 12, 31), D(2027, 12, 31))) == 1


# --- shape of the output -------------------------------------------------------------


def test_batches_and_schema(default: dict[str, pa.Table]) -> None:
    assert set(default) == {"daily_bars", "daily_bars_unadjusted", "corporate_actions", "sim_anomalies"}
    for name in ("daily_bars", "daily_bars_unadjusted"):
        t = default[name]
        assert t.column_names == list(RAW_BAR_COLUMNS)
        assert t.schema.field("date").type == pa.date32()
        assert t.schema.field("volume").type == pa.int64()
        assert pc.all(pc.equal(t["source"], "sim")).as_py()
        assert t["source_file"].null_count == t.num_rows
    assert default["corporate_actions"].column_names == list(RAW_ACTION_COLUMNS)
    assert default["sim_anomalies"].column_names == list(sim.ANOMALY_COLUMNS)
    assert set(sim.DATASET_COLUMNS) == set(default)


def test_first_rows_are_real_first_days_clipped_to_start(default: dict[str, pa.Table]) -> None:
    bars = default["daily_bars"]
    first = {t: _series(bars, t)[0][0] for t in DEFAULT_TICKERS}
    assert first == {
        "META": D(2012, 5, 18),
        "AAPL": D(1997, 6, 2),  # 1 June 1997 is a Sunday
        "NFLX": D(2002, 5, 23),
        "GOOGL": D(2004, 8, 19),
        "MSFT": D(1997, 6, 2),
        "AMZN": D(1997, 6, 2),
        "NVDA": D(1999, 1, 22),
        "TSLA": D(2010, 6, 29),
    }
    assert max(bars["date"].to_pylist()) == D(2023, 12, 12)
    assert bars.num_rows == sim.expected_rows()


def test_rows_follow_the_calendar(default: dict[str, pa.Table]) -> None:
    calendar = sim.trading_days(D(2004, 8, 19), D(2023, 12, 12)).astype(object).tolist()
    dates, _ = _series(default["daily_bars"], "GOOGL")
    assert dates == calendar


def test_ohlc_consistency_on_every_row(default: dict[str, pa.Table]) -> None:
    for name in ("daily_bars", "daily_bars_unadjusted"):
        t = default[name]
        o, h, lo, c = (t[k].to_numpy() for k in ("open", "high", "low", "close"))
        assert (lo > 0).all()
        assert (lo <= np.minimum(o, c)).all()
        assert (h >= np.maximum(o, c)).all()
        assert (t["volume"].to_numpy() > 0).all()
        # Prices carry at most 4 decimals.
        assert np.allclose(np.round(c, 4), c, rtol=0, atol=1e-12)


def test_prices_are_in_realistic_ranges(default: dict[str, pa.Table]) -> None:
    bars = default["daily_bars"]
    # Waypoints pin the first close of each IPO and the end-2023 levels.
    assert _on(bars, "META", D(2012, 5, 18)) == 38.23
    assert _on(bars, "TSLA", D(2010, 6, 29)) == 1.59
    assert _on(bars, "AAPL", D(2023, 12, 12)) == 194.7
    assert _on(bars, "NVDA", D(2023, 12, 12)) == 476.0
    # Unpinned days stay within an order of magnitude of history.
    assert 2.0 < _on(bars, "AAPL", D(2010, 1, 4)) < 30.0
    assert 2.0 < _on(bars, "AMZN", D(2014, 1, 2)) < 40.0


# --- splits and dividends ------------------------------------------------------------

EXPECTED_SPLITS = [
    ("AAPL", D(2000, 6, 21), 2.0),
    ("AAPL", D(2005, 2, 28), 2.0),
    ("AAPL", D(2014, 6, 9), 7.0),
    ("AAPL", D(2020, 8, 31), 4.0),
    ("AMZN", D(1998, 6, 2), 2.0),
    ("AMZN", D(1999, 1, 5), 3.0),
    ("AMZN", D(1999, 9, 2), 2.0),
    ("AMZN", D(2022, 6, 6), 20.0),
    ("GOOGL", D(2014, 4, 3), 2.0),
    ("GOOGL", D(2022, 7, 18), 20.0),
    ("MSFT", D(1998, 2, 23), 2.0),
    ("MSFT", D(1999, 3, 29), 2.0),
    ("MSFT", D(2003, 2, 18), 2.0),
    ("NFLX", D(2004, 2, 12), 2.0),
    ("NFLX", D(2015, 7, 15), 7.0),
    ("NVDA", D(2000, 6, 27), 1.5),
    ("NVDA", D(2001, 9, 17), 2.0),
    ("NVDA", D(2006, 4, 7), 2.0),
    ("NVDA", D(2007, 9, 11), 1.5),
    ("NVDA", D(2021, 7, 20), 4.0),
    ("TSLA", D(2020, 8, 31), 5.0),
    ("TSLA", D(2022, 8, 25), 3.0),
]


def _splits(actions: pa.Table) -> list[tuple[str, dt.date, float]]:
    rows = actions.filter(pc.equal(actions["action"], "split")).to_pylist()
    return sorted((r["ticker"], r["date"], r["ratio"]) for r in rows)


def test_corporate_actions_have_exactly_the_configured_splits(default: dict[str, pa.Table]) -> None:
    assert _splits(default["corporate_actions"]) == EXPECTED_SPLITS


def test_split_days_in_a_narrow_range() -> None:
    actions = _run(start=D(2020, 8, 1), end=D(2020, 9, 30))["corporate_actions"]
    assert _splits(actions) == [("AAPL", D(2020, 8, 31), 4.0), ("TSLA", D(2020, 8, 31), 5.0)]


def test_aapl_2020_split_adjusted_vs_unadjusted(default: dict[str, pa.Table]) -> None:
    adj, raw = default["daily_bars"], default["daily_bars_unadjusted"]
    before, on = D(2020, 8, 28), D(2020, 8, 31)
    assert math.isclose(_on(raw, "AAPL", on), _on(adj, "AAPL", on), rel_tol=1e-6)
    assert math.isclose(_on(raw, "AAPL", before), 4 * _on(adj, "AAPL", before), rel_tol=1e-5)
    assert abs(math.log(_on(adj, "AAPL", on) / _on(adj, "AAPL", before))) < 0.2
    # Volume is in split-adjusted shares too: 4 x the shares traded before the split.
    assert math.isclose(
        _on(adj, "AAPL", before, "volume"), 4 * _on(raw, "AAPL", before, "volume"), rel_tol=1e-9
    )


def test_adjusted_close_is_continuous_across_every_split(default: dict[str, pa.Table]) -> None:
    adj, raw = default["daily_bars"], default["daily_bars_unadjusted"]
    for ticker, day, ratio in EXPECTED_SPLITS:
        dates, adj_close = _series(adj, ticker)
        _, raw_close = _series(raw, ticker)
        i = dates.index(day)
        adj_ret = math.log(adj_close[i] / adj_close[i - 1])
        raw_ret = math.log(raw_close[i] / raw_close[i - 1])
        assert abs(adj_ret) < 0.25, (ticker, day)
        assert abs(raw_ret - (adj_ret - math.log(ratio))) < 2e-3, (ticker, day)


def test_dividends_adjust_adj_close_only(default: dict[str, pa.Table]) -> None:
    adj, actions = default["daily_bars"], default["corporate_actions"]
    divs = actions.filter(pc.equal(actions["action"], "dividend"))
    payers = set(divs["ticker"].to_pylist())
    assert payers == {"AAPL", "MSFT", "NVDA"}
    for ticker in DEFAULT_TICKERS:
        dates, close = _series(adj, ticker)
        _, adj_close = _series(adj, ticker, "adj_close")
        if ticker not in payers:
            assert np.array_equal(close, adj_close)
            continue
        rows = divs.filter(pc.equal(divs["ticker"], ticker)).to_pylist()
        assert adj_close[0] < close[0]
        assert adj_close[-1] == close[-1]
        split_days = {d for t, d, _ in EXPECTED_SPLITS if t == ticker}
        for row in rows:
            assert row["date"] not in split_days and row["amount"] > 0
            i = dates.index(row["date"])
            # Yahoo's rule: the day before the ex-date is scaled by (1 - dividend / close).
            expected = close[i - 1] * (adj_close[i] / close[i]) * (1 - row["amount"] / close[i - 1])
            assert math.isclose(adj_close[i - 1], expected, rel_tol=2e-3, abs_tol=2e-4)


# --- statistical behaviour -----------------------------------------------------------


def _basket_drawdown(bars: pa.Table, start: dt.date, end: dt.date) -> float:
    """Peak-to-trough fall of an equal-weight basket (mean daily log return) inside a window."""
    per_day: dict[dt.date, list[float]] = {}
    for ticker in DEFAULT_TICKERS:
        dates, r = _log_returns(bars, ticker)
        for d, x in zip(dates, r.tolist(), strict=True):
            if start <= d <= end:
                per_day.setdefault(d, []).append(x)
    path = np.cumsum([np.mean(per_day[d]) for d in sorted(per_day)])
    return float(1 - np.exp(np.min(path - np.maximum.accumulate(path))))


def test_crisis_drawdowns(default: dict[str, pa.Table]) -> None:
    bars = default["daily_bars"]
    assert _basket_drawdown(bars, D(2000, 3, 1), D(2002, 10, 31)) > 0.5
    assert _basket_drawdown(bars, D(2008, 9, 1), D(2009, 3, 31)) > 0.3
    assert _basket_drawdown(bars, D(2020, 2, 1), D(2020, 4, 30)) > 0.2
    assert _basket_drawdown(bars, D(2022, 1, 1), D(2022, 12, 31)) > 0.2
    # ... and recoveries: the basket gains over the year after each trough.
    assert _basket_drawdown(bars, D(2009, 3, 10), D(2010, 3, 10)) < 0.3


def test_returns_are_correlated_and_fat_tailed(default: dict[str, pa.Table]) -> None:
    bars = default["daily_bars"]
    returns = {}
    for ticker in DEFAULT_TICKERS:
        dates, r = _log_returns(bars, ticker)
        keep = np.array([d >= D(2012, 5, 21) for d in dates])
        returns[ticker] = r[keep]
        z = (r - r.mean()) / r.std()
        assert float(np.mean(z**4)) > 3.0, ticker
    corr = np.corrcoef(np.vstack(list(returns.values())))
    off_diagonal = corr[~np.eye(len(corr), dtype=bool)]
    assert off_diagonal.mean() > 0.2
    assert off_diagonal.min() > 0.05


def test_volatility_clusters(default: dict[str, pa.Table]) -> None:
    # Absolute returns are autocorrelated (they are not for i.i.d. returns).
    _, r = _log_returns(default["daily_bars"], "MSFT")
    a = np.abs(r)
    assert np.corrcoef(a[:-1], a[1:])[0, 1] > 0.05


# --- anomalies -----------------------------------------------------------------------


def test_anomaly_ground_truth(default: dict[str, pa.Table]) -> None:
    truth = default["sim_anomalies"]
    assert 5 <= truth.num_rows <= 60
    assert truth.equals(sim.anomaly_ground_truth())
    assert set(truth["kind"].to_pylist()) <= {"single", "cluster"}
    calendar = set(sim.trading_days(sim.DEFAULT_START, sim.DEFAULT_END).astype(object).tolist())
    split_days = {(t, d) for t, d, _ in EXPECTED_SPLITS}
    bars = default["daily_bars"]
    for row in truth.to_pylist():
        assert row["date"] in calendar
        assert (row["ticker"], row["date"]) not in split_days
        dates, r = _log_returns(bars, row["ticker"])
        i = dates.index(row["date"])
        if i < sim.ANOMALY_WINDOW:  # its baseline window starts before the range
            continue
        window = r[i - sim.ANOMALY_WINDOW : i]
        z = r[i] / window.std(ddof=1)
        assert abs(z) > 4, row
        assert math.isclose(z, row["magnitude_sigma"], abs_tol=0.1), row


def test_cluster_events_share_a_date() -> None:
    truth = sim.anomaly_ground_truth(start=D(1997, 6, 1), end=D(2023, 12, 12))
    by_event: dict[str, set[dt.date]] = {}
    for row in truth.to_pylist():
        by_event.setdefault(row["event_id"], set()).add(row["date"])
    assert all(len(days) == 1 for days in by_event.values())


# --- determinism and consistency -----------------------------------------------------


def test_same_seed_gives_identical_bytes(default: dict[str, pa.Table]) -> None:
    again = _run()
    for name, table in default.items():
        assert table.equals(again[name]), name
        assert _csv(table) == _csv(again[name]), name


def _digest(tables: dict[str, pa.Table]) -> str:
    """SHA-256 over every dataset's column names, types and exact values (float repr round-trips)."""
    h = hashlib.sha256()
    for name in sorted(tables):
        table = tables[name]
        h.update(name.encode())
        for col in table.column_names:
            h.update(f"{col}:{table.schema.field(col).type}:".encode())
            h.update(repr(table[col].to_pylist()).encode())
    return h.hexdigest()


# Digests of the simulator's output, pinned so that it only changes on purpose. First taken
# with the hand-written NYSE calendar it had before it took its days from exchange-calendars
# (the two agree on every day from 1981 on, and the market factor's GARCH state forgets
# their one difference, 1980-11-04, within a few years); last changed when the natural
# innovations stopped being clipped at 5-6 sigmas (same draws, fat tails kept).
_DIGESTS_BEFORE_LIBRARY_CALENDAR = {
    "default": "5c82503adc6931b3f410c2b772dab87c70561324151e5675fcea18b44e21eecc",
    "universe": "736a74e3ca1fed376c140ce4d66aeb65e4fb16ebe45b9ea4ee29acb80b88e4ad",
    "nvda_tsla": "5364c91c6b61a280fa126a38e4dec3197a89d837d08fec6ef41346211279699a",
}


def test_output_is_unchanged_where_the_calendars_agree(default: dict[str, pa.Table]) -> None:
    assert _digest(default) == _DIGESTS_BEFORE_LIBRARY_CALENDAR["default"]
    universe = _run(universe=20, seed=3, start="2010-01-01", end="2011-12-31")
    assert _digest(universe) == _DIGESTS_BEFORE_LIBRARY_CALENDAR["universe"]
    later = _run(tickers=["NVDA", "TSLA"], seed=7, start="2003-01-01", end="2026-12-31")
    assert _digest(later) == _DIGESTS_BEFORE_LIBRARY_CALENDAR["nvda_tsla"]


def test_different_seed_gives_different_prices(default: dict[str, pa.Table]) -> None:
    other = _run(seed=7)["daily_bars"]
    assert other.num_rows == default["daily_bars"].num_rows
    assert not np.array_equal(other["close"].to_numpy(), default["daily_bars"]["close"].to_numpy())


def test_rows_do_not_depend_on_range_or_ticker_selection(default: dict[str, pa.Table]) -> None:
    part = _run(tickers=["tsla", "AAPL"], start=D(2015, 1, 1), end=D(2016, 12, 31))
    for name in ("daily_bars", "daily_bars_unadjusted"):
        full = default[name]
        for ticker in ("TSLA", "AAPL"):
            mine = part[name].filter(pc.equal(part[name]["ticker"], ticker))
            mask = pc.and_(
                pc.equal(full["ticker"], ticker),
                pc.and_(
                    pc.greater_equal(full["date"], pa.scalar(D(2015, 1, 1))),
                    pc.less_equal(full["date"], pa.scalar(D(2016, 12, 31))),
                ),
            )
            assert mine.equals(full.filter(mask)), (name, ticker)


def test_later_end_only_extends_the_history(default: dict[str, pa.Table]) -> None:
    longer = _run(tickers=["MSFT"], end=D(2025, 6, 30))["daily_bars"]
    mine = longer.filter(pc.less_equal(longer["date"], pa.scalar(D(2023, 12, 12))))
    full = default["daily_bars"].filter(pc.equal(default["daily_bars"]["ticker"], "MSFT"))
    assert max(longer["date"].to_pylist()) == D(2025, 6, 30)
    # Later dividends change the dividend-adjusted close only, as on Yahoo over time.
    assert mine.drop_columns(["adj_close"]).equals(full.drop_columns(["adj_close"]))


def test_ground_truth_of_a_subset_is_the_subset_of_the_ground_truth(default: dict[str, pa.Table]) -> None:
    truth = default["sim_anomalies"]
    mine = sim.anomaly_ground_truth(tickers=["NVDA"])
    assert mine.num_rows > 0
    assert mine.equals(truth.filter(pc.equal(truth["ticker"], "NVDA")))


def test_universe_batches_are_consistent() -> None:
    kwargs = {"universe": 12, "start": D(2005, 1, 1), "end": D(2009, 12, 31), "seed": 3}
    one = _run(batch_size=12, **kwargs)
    many = _run(batch_size=5, **kwargs)
    for name in one:
        assert one[name].equals(many[name]), name
    bars = one["daily_bars"]
    assert bars["ticker"].unique().to_pylist() == [f"S{i:05d}" for i in range(1, 13)]
    assert bars.num_rows == sim.expected_rows(**kwargs)
    o, h, lo, c = (bars[k].to_numpy() for k in ("open", "high", "low", "close"))
    assert (lo > 0).all() and (lo <= np.minimum(o, c)).all() and (h >= np.maximum(o, c)).all()


def test_universe_splits_match_unadjusted_prices() -> None:
    out = _run(universe=40, start=D(1995, 1, 1), end=D(2020, 12, 31), seed=1)
    splits = out["corporate_actions"].to_pylist()
    assert splits and all(s["action"] == "split" for s in splits)
    adj, raw = out["daily_bars"], out["daily_bars_unadjusted"]
    for s in splits[:10]:
        dates, adj_close = _series(adj, s["ticker"])
        _, raw_close = _series(raw, s["ticker"])
        i = dates.index(s["date"])
        jump = math.log(raw_close[i] / raw_close[i - 1]) - math.log(adj_close[i] / adj_close[i - 1])
        assert abs(jump + math.log(s["ratio"])) < 0.01, s


def test_progress_callback() -> None:
    seen: list[tuple[int, int]] = []
    for _ in sim.simulate(
        universe=5,
        start=D(2020, 1, 1),
        end=D(2020, 3, 31),
        batch_size=2,
        on_progress=lambda d, t: seen.append((d, t)),
    ):
        pass
    assert seen == [(2, 5), (4, 5), (5, 5)]


def test_ticker_listed_after_end_gives_no_rows() -> None:
    out = _run(tickers=["META"], start=D(2000, 1, 1), end=D(2005, 12, 31))
    assert out["daily_bars"].num_rows == 0
    assert sim.expected_rows(["META"], D(2000, 1, 1), D(2005, 12, 31)) == 0


# --- bad input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tickers": ["IBM"]}, "no simulation profile for IBM"),
        ({"start": D(2020, 1, 2), "end": D(2020, 1, 1)}, "is after end"),
        ({"start": D(1975, 1, 1)}, "within 1980-01-01"),
        ({"start": "2020-13-01"}, "is not a date"),
        ({"seed": -1}, "non-negative integer"),
        ({"tickers": ["AAPL"], "universe": 3}, "not both"),
        ({"universe": 0}, "universe size"),
        ({"batch_size": 0}, "batch size"),
    ],
)
def test_bad_arguments_raise_one_line_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(TickerlakeError, match=message) as err:
        sim.simulate(**kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(err.value)
