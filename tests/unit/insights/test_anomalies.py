"""Anomalies: planted shocks are found and attributed; splits never are; contributions add up."""

from __future__ import annotations

import datetime as dt
import math
import sys
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickerlake.insights import anomalies, threshold_for
from tickerlake.insights._panel import build_panel, log_returns
from tickerlake.insights.anomalies import MARKET_Z, SINGLE_Z, score_days
from tickerlake.insights.errors import BadInput, EmptyWindow, WindowTooShort
from tickerlake.insights.narrative import fmt_signed_pct


def _day(bars: pa.Table, index: int) -> dt.date:
    return build_panel(bars).date(index)


def test_idiosyncratic_shock_is_found_and_attributed(synth_market) -> None:
    bars = synth_market(shocks=[("CCC", 250, 0.15)])
    res = anomalies(bars)
    assert [a.date for a in res.anomalies] == [_day(bars, 250)]
    a = res.anomalies[0]
    assert a.direction == "higher" and not a.market_wide and a.score >= res.threshold
    assert [c.ticker for c in a.top] == ["CCC"]
    ccc = a.top[0]
    panel = build_panel(bars)
    sc = score_days(log_returns(panel).r)
    j = panel.col("CCC")
    # Expected: yesterday's close moved by the market as the other tickers saw it.
    assert ccc.expected == pytest.approx(ccc.previous * math.exp(sc.beta[250, j] * sc.m_other[250, j]))
    assert ccc.actual == pytest.approx(panel.values[250, j])
    assert ccc.contribution == pytest.approx(a.deviation)
    for c in a.contributions[1:]:
        assert c.contribution == 0.0 and c.expected == c.actual and not c.anomalous
    assert a.actual - a.expected == pytest.approx(a.deviation)
    assert a.pct_deviation == pytest.approx(a.deviation / a.expected * 100)
    assert a.narrative.startswith(
        f"An anomaly was detected on {a.date:%b} {a.date.day}, {a.date.year} primarily driven by higher than "
        f"expected daily total close for CCC at "
    )


def test_market_wide_crash(synth_market) -> None:
    tickers = ("AAA", "BBB", "CCC", "DDD", "EEE")
    bars = synth_market(shocks=[(t, 300, -0.12) for t in tickers])
    res = anomalies(bars, sensitivity=0.5)
    crash = [a for a in res.anomalies if a.date == _day(bars, 300)]
    assert crash and crash[0].market_wide and crash[0].direction == "lower"
    assert crash[0].view == "market-wide" and crash[0].scored_series == "equal-weight basket"
    # The narrative shows the deviation that was scored, with its score.
    shown = (
        f"was lower than expected ({fmt_signed_pct(crash[0].scored_pct)}, {crash[0].score:.1f} robust sigmas"
    )
    assert shown in crash[0].narrative
    assert crash[0].scored_pct == pytest.approx((math.exp(-0.12) - 1) * 100, abs=3.0)
    assert len(crash[0].top) == 3
    assert sum(c.contribution for c in crash[0].contributions) == pytest.approx(crash[0].deviation)


def test_split_is_never_an_anomaly(synth_market, make_actions) -> None:
    bars = synth_market(shocks=[])
    when = _day(bars, 200)
    is_b_after = pc.and_(pc.equal(bars["ticker"], "BBB"), pc.greater_equal(bars["date"], pa.scalar(when)))
    halved = bars.set_column(2, "close", pc.if_else(is_b_after, pc.divide(bars["close"], 2.0), bars["close"]))
    # With an adjusted close the returns are taken on it: a jump in close alone is no move.
    assert all(a.date != when for a in anomalies(halved).anomalies)
    raw = halved.drop_columns(["adj_close"])
    assert any(a.date == when for a in anomalies(raw).anomalies)  # an unadjusted split looks like a crash...
    acts = make_actions([("BBB", when.isoformat(), 2.0)])
    res = anomalies(raw, corporate_actions=acts)  # ...and is ignored once the split is known
    assert all(a.date != when for a in res.anomalies)
    assert [(s.ticker, s.date) for s in res.splits_ignored] == [("BBB", when)]
    assert all(a.date != when for a in anomalies(bars, corporate_actions=acts).anomalies)  # adjusted prices


def test_single_ticker_lake_and_ipo_inside(synth_market) -> None:
    one = synth_market(tickers=("AAA",), shocks=[("AAA", 150, -0.2)])
    res = anomalies(one)
    assert [a.date for a in res.anomalies] == [_day(one, 150)]
    a = res.anomalies[0]
    assert a.market_wide and a.top[0].ticker == "AAA"
    # Expected: yesterday's close grown by the trailing median daily return (near zero).
    assert a.top[0].expected == pytest.approx(a.top[0].previous, rel=0.01)
    # ZZZ lists on day 150 at a price unrelated to anything before: its first day has no return.
    late = synth_market(tickers=("ZZZ",), days=300, seed=3).slice(150)
    both = pa.concat_tables([synth_market(tickers=("AAA", "BBB", "CCC"), days=300), late])
    res = anomalies(both)
    assert all(a.date != _day(both, 150) for a in res.anomalies)


def test_bad_requests(synth_market) -> None:
    bars = synth_market(days=15)
    with pytest.raises(WindowTooShort, match="at least 22 trading days"):
        anomalies(bars)
    with pytest.raises(BadInput, match="sensitivity"):
        anomalies(synth_market(days=60), sensitivity=1.5)
    with pytest.raises(BadInput, match="price measure"):
        anomalies(synth_market(days=60), measure="volume")
    assert threshold_for(0.5) == SINGLE_Z and threshold_for(0.5, "market-wide") == MARKET_Z
    assert threshold_for(0.0) == 2 * SINGLE_Z and threshold_for(1.0) == SINGLE_Z / 2


def test_window_and_empty_result(synth_market) -> None:
    bars = synth_market(shocks=[("BBB", 100, 0.2)])
    res = anomalies(bars, start=_day(bars, 150), end=_day(bars, 200))
    assert res.anomalies == () and res.days_scanned == 51
    assert res.narrative.startswith("No anomalies were detected from")


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 10_000),
    st.integers(1, 6),
    st.lists(st.tuples(st.integers(0, 5), st.integers(30, 119), st.floats(-0.3, 0.3)), max_size=6),
)
def test_contributions_sum_to_the_aggregate_deviation(synth_market, seed: int, n: int, shocks: list) -> None:
    tickers = ("AAA", "BBB", "CCC", "DDD", "EEE", "FFF")[:n]
    planted = [(tickers[k % n], at, size) for k, at, size in shocks]
    res = anomalies(synth_market(tickers=tickers, days=120, seed=seed, shocks=planted), sensitivity=1.0)
    for a in res.anomalies:
        total = math.fsum(c.contribution for c in a.contributions)
        assert total == pytest.approx(a.deviation, abs=1e-9)
        assert a.actual - a.expected == pytest.approx(a.deviation, rel=1e-9, abs=1e-9)
        for c in a.contributions:
            assert c.contribution == pytest.approx(c.actual - c.expected, abs=1e-12)
            if not a.market_wide and not c.anomalous:
                assert c.contribution == 0.0
        sign = 1.0 if a.direction == "higher" else -1.0
        aligned = [sign * c.contribution for c in a.contributions]
        assert aligned == sorted(aligned, reverse=True)
        assert all(np.isfinite([c.expected for c in a.contributions]))


def test_leave_one_out_medians_match_numpy() -> None:
    medians = sys.modules["tickerlake.insights.anomalies"]._medians
    rng = np.random.default_rng(1)
    for _ in range(100):
        n = int(rng.integers(1, 7))
        r = rng.normal(size=(6, n))
        r[rng.random((6, n)) < 0.3] = np.nan
        full, other = medians(r)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            assert np.allclose(full, np.nanmedian(r, axis=1), equal_nan=True)
            for j in range(n):
                rest = np.delete(r, j, axis=1)
                want = np.nanmedian(rest, axis=1) if rest.shape[1] else np.full(6, np.nan)
                assert np.allclose(other[:, j], want, equal_nan=True)


def test_leave_one_out_medians_with_ties() -> None:
    # Whole numbers: many equal values in a row, where dropping "the" cell must drop one of them.
    medians = sys.modules["tickerlake.insights.anomalies"]._medians
    rng = np.random.default_rng(7)
    for _ in range(100):
        n = int(rng.integers(1, 9))
        r = np.round(rng.normal(scale=1.5, size=(5, n)))
        r[rng.random((5, n)) < 0.25] = np.nan
        _, other = medians(r)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for j in range(n):
                rest = np.delete(r, j, axis=1)
                want = np.nanmedian(rest, axis=1) if rest.shape[1] else np.full(5, np.nan)
                assert np.array_equal(other[:, j], want, equal_nan=True)


def test_the_scale_median_is_pandas_rolling_median_to_the_bit() -> None:
    # local_variance uses bottleneck's moving median for pandas' (what the thresholds were
    # calibrated with): the same values, NaNs skipped, the mean of the two middle ones.
    import bottleneck as bn
    import pandas as pd

    rng = np.random.default_rng(3)
    x = np.abs(rng.standard_t(3, size=(400, 6)))
    x[rng.random(x.shape) < 0.15] = np.nan
    x[:90, 0] = np.nan
    x[100:180, 1] = 0.5  # ties
    x[:, 2] = np.round(x[:, 2], 1)
    want = pd.DataFrame(x).rolling(63, min_periods=20).median().to_numpy()
    got = bn.move_median(x, 63, min_count=20, axis=0)
    assert np.array_equal(got, want, equal_nan=True)
    assert np.isnan(got[:90, 0]).all() and got[179, 1] == 0.5


def test_empty_window(synth_market) -> None:
    bars = synth_market(days=60, start=dt.date(2020, 1, 2))
    with pytest.raises(EmptyWindow, match="no trading day between Jan 4, 2020 and Jan 5, 2020"):
        anomalies(bars, "2020-01-04", "2020-01-05")


def test_a_universe_anomaly_lists_the_leading_contributions_and_counts_the_rest(synth_market) -> None:
    tickers = [f"T{k:02d}" for k in range(30)]
    # T07 jumps on day 250; day 300 is a market-wide crash.
    crash = [(t, 300, -0.12) for t in tickers]
    bars = synth_market(tickers=tickers, shocks=[("T07", 250, 0.2), *crash], idio_vol=0.002)
    res = anomalies(bars)
    found = {a.date: a for a in res.anomalies}
    one, wide = found[_day(bars, 250)], found[_day(bars, 300)]
    assert one.scored_series == "T07" and wide.market_wide
    for a in (one, wide):
        assert a.contributors == 30 and len(a.contributions) == 20
        sign = 1.0 if a.direction == "higher" else -1.0
        aligned = [sign * c.contribution for c in a.contributions]
        assert aligned == sorted(aligned, reverse=True)
        # The named contributors lead the list.
        assert a.top == a.contributions[: len(a.top)]
        assert a.unusual >= sum(1 for c in a.contributions if c.anomalous)
    # On a single-ticker day only the flagged ticker moved otherwise than expected: the
    # twenty listed carry the whole deviation.
    assert math.fsum(c.contribution for c in one.contributions) == pytest.approx(one.deviation)
    assert one.unusual == 1 and one.contributions[0].ticker == "T07"
