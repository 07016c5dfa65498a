"""Anomalous trading days with their contributing tickers, found on returns. No I/O.

Method: robust z-scores of a market-factor model with local volatility.

* Every ticker's daily log return ``r[t, i]`` (against its own previous day; a ticker's
  first day, a gap, or a split day whose raw jump matches the announced ratio has none)
  is split into a market part and an idiosyncratic part: the market ``m[t]`` is the
  cross-sectional median return, and ``e[t, i] = r[t, i] - beta[t, i] * m_i[t]`` where
  ``m_i`` is the median of the *other* tickers' returns (so a ticker's own shock never
  enters what it is expected to do) and ``beta`` a rolling 252-day regression on it.
* Each part is divided by its *local* volatility: the mean of a RiskMetrics EWMA
  (λ = 0.94) of its squares over the days before and one over the days after, the day
  itself excluded, after winsorising at ±6 robust sigmas so one shock cannot hide its
  neighbours. This gives z-scores ``z_m[t]`` (market) and ``z[t, i]`` (each ticker).
* A day's score is the largest ``|z|`` among its parts; it is an anomaly when the score
  reaches the threshold set by the sensitivity (6.5 at the default 0.5).

Why this and not a Random Cut Forest: an RCF isolates points far from the bulk of a
feature space, but daily returns are dominated by (1) one common market factor and (2)
volatility that clusters in time. On raw returns an RCF flags every day of a turbulent
regime and misses a 7-sigma move in a calm one; fed the aggregate (total close) it
cannot tell which ticker moved (and, on price levels, it flags splits). Removing the
market factor and standardising each part by its own local volatility is exactly the
normalisation an RCF would need, after which the largest standardised deviation is the
likelihood-ratio test for one shocked component: deterministic, explainable (each
anomaly names the part that crossed the line) and O(days × tickers) — linear in history
length, where an RCF costs O(trees × log sample) per point with random results. On the
simulated market's injected shocks it reaches recall ≥ 0.9 at precision ≥ 0.85 on every seed tried (see
``bench/insights.py``). Being two-sided, the volatility is the one *around* the day, as a
retrospective analysis should use; at the data's edges one side suffices.

Attribution: for an anomalous day the *expected* value of each ticker is its previous
close grown by its return with the anomalous parts replaced by their expectation — the
idiosyncratic part by zero if that ticker's ``|z|`` crossed the threshold, the market
part by zero (a flat market) if the market's did. The aggregate (total close) deviation
is the sum of the tickers' ``actual - expected``; a ticker whose behaviour was normal
contributes exactly zero, so the contributions explain the deviation and the ranking
names the tickers that actually behaved unusually, whatever their price level.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from tickerlake.insights._panel import PRICE_MEASURES, Panel, SplitDay, as_date, build_panel, log_returns
from tickerlake.insights.errors import BadInput, WindowTooShort
from tickerlake.insights.narrative import fmt_date, fmt_num, fmt_signed_pct, join_and, measure_label

__all__ = [
    "Anomaly",
    "AnomalyResult",
    "Contribution",
    "DayScores",
    "anomalies",
    "local_variance",
    "score_days",
    "threshold_for",
]

BETA_WINDOW = 252
EWMA_LAMBDA = 0.94
WINSOR_SIGMAS = 6.0
SCALE_WINDOW = 63
MIN_SCALE_OBS = 20
MIN_BETA_OBS = 60
_MAD_TO_SIGMA = 1.4826
#: Fewest trading days of history the detector can score at all.
MIN_HISTORY = MIN_SCALE_OBS + 2


def threshold_for(sensitivity: float) -> float:
    """The robust-z threshold for a sensitivity in [0, 1] (0.5 is the default, 1 flags the most).

    Raises:
        BadInput: Sensitivity outside [0, 1].
    """
    if not 0.0 <= sensitivity <= 1.0 or math.isnan(sensitivity):
        raise BadInput(f"sensitivity must be between 0 and 1, got {sensitivity}")
    return 3.5 + 6.0 * (1.0 - sensitivity)


@dataclass(frozen=True, eq=False)
class DayScores:
    """The detector's state for every day (arrays aligned with the panel's dates/tickers).

    Attributes:
        r: Log returns ``(T, N)``.
        m: Market factor ``(T,)``: cross-sectional median return.
        m_other: ``(T, N)``: each ticker's market, the median return of the other tickers.
        beta: Rolling betas ``(T, N)`` known the day before.
        z: Idiosyncratic robust z ``(T, N)`` (NaN when not scorable).
        z_m: Market robust z ``(T,)``.
        score: Day score ``(T,)``: the largest ``|z|`` among the parts (NaN when none scorable).
        splits: Split days whose returns were ignored.
    """

    r: np.ndarray
    m: np.ndarray
    m_other: np.ndarray
    beta: np.ndarray
    z: np.ndarray
    z_m: np.ndarray
    score: np.ndarray
    splits: list[SplitDay]


def _rolling_sum_before(a: np.ndarray, window: int) -> np.ndarray:
    """Sum of the ``window`` rows strictly before each row (axis 0)."""
    cs = np.concatenate([np.zeros((1, *a.shape[1:])), np.cumsum(a, axis=0)])
    t = np.arange(a.shape[0])
    sums: np.ndarray = cs[t] - cs[np.maximum(t - window, 0)]
    return sums


def _ewma_before(x: np.ndarray) -> np.ndarray:
    """EWMA (RiskMetrics λ) of the rows strictly before each row, per column (NaNs skipped)."""
    frame = pd.DataFrame(x)
    return (
        frame.ewm(alpha=1 - EWMA_LAMBDA, ignore_na=True, min_periods=MIN_SCALE_OBS).mean().shift(1).to_numpy()
    )


def local_variance(x: np.ndarray) -> np.ndarray:
    """Two-sided robust local variance of each column of ``x``, excluding the day itself.

    Values are first winsorised at ±6 robust sigmas (1.4826 × the rolling median of
    ``|x|`` over :data:`SCALE_WINDOW` days) so that one shock cannot inflate its
    neighbours' scale much; then the variance is the mean of an EWMA over the days
    before and an EWMA over the days after (either alone at the ends of the data).
    """
    slow = _MAD_TO_SIGMA * pd.DataFrame(np.abs(x)).rolling(SCALE_WINDOW, min_periods=MIN_SCALE_OBS).median()
    bound = WINSOR_SIGMAS * slow.bfill().ffill().to_numpy()
    clipped = np.where(np.isnan(bound), x, np.clip(x, -bound, bound))
    sq = clipped * clipped
    before = _ewma_before(sq)
    after = _ewma_before(sq[::-1])[::-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        var: np.ndarray = np.nanmean(np.stack([before, after]), axis=0)
    return var


def score_days(panel_returns: np.ndarray, splits: list[SplitDay] | None = None) -> DayScores:
    """Score every day of a returns matrix (see the module docstring).

    Args:
        panel_returns: ``(T, N)`` log returns, NaN where there is none.
        splits: Split days already masked out of the returns (carried through for reporting).
    """
    r = panel_returns
    has = ~np.isnan(r)
    count = has.sum(axis=1)
    # Each ticker's market is the median of the *other* tickers, so its own shock cannot
    # leak into what it is expected to do.
    m, mk = _medians(r)
    # Rolling beta of each ticker on its market, from the previous BETA_WINDOW days.
    pair = has & ~np.isnan(mk)
    x = np.where(pair, mk, 0.0)
    y = np.where(pair, r, 0.0)
    n = _rolling_sum_before(pair.astype(float), BETA_WINDOW)
    sx, sy = _rolling_sum_before(x, BETA_WINDOW), _rolling_sum_before(y, BETA_WINDOW)
    sxx, sxy = _rolling_sum_before(x * x, BETA_WINDOW), _rolling_sum_before(x * y, BETA_WINDOW)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = sxx - sx * sx / n
        beta = (sxy - sx * sy / n) / var
    beta = np.where((n >= MIN_BETA_OBS) & (var > 0) & np.isfinite(beta), np.clip(beta, -1.0, 3.0), 1.0)
    # Without another ticker trading that day there is no idiosyncratic part to speak of.
    e = np.where(count[:, None] >= 2, r - beta * mk, np.nan)
    parts = np.concatenate([e, m[:, None]], axis=1)
    v = local_variance(parts)
    with np.errstate(divide="ignore", invalid="ignore"):
        zz = np.where(v > 0, parts / np.sqrt(v), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        score = np.nanmax(np.abs(zz), axis=1) if len(zz) else np.zeros(0)
    return DayScores(r, m, mk, beta, zz[:, :-1], zz[:, -1], score, splits or [])


def _medians(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row medians ignoring NaNs, and for each cell the median of its row *without* that cell.

    One sort per row gives both: dropping the element at sorted position ``p`` shifts the
    positions at or after ``p`` by one. Empty rows (or rows with only the cell itself)
    give NaN.
    """
    n_t, n = r.shape
    rows = np.arange(n_t)[:, None]
    order = np.argsort(r, axis=1, kind="stable")  # NaNs sort last
    srt = np.take_along_axis(r, order, axis=1)
    k = np.sum(~np.isnan(r), axis=1)
    padded = np.concatenate([srt, np.full((n_t, 1), np.nan)], axis=1)

    def pick(q: np.ndarray) -> np.ndarray:
        picked: np.ndarray = padded[rows, np.clip(q, 0, n)]
        return picked

    with np.errstate(invalid="ignore"):
        kk = k[:, None]
        full = (pick(((k - 1) // 2)[:, None]) + pick((k // 2)[:, None]))[:, 0] / 2
        full = np.where(k > 0, full, np.nan)
        pos = np.empty_like(order)
        pos[rows, order] = np.arange(n)[None, :]
        inside = ~np.isnan(r)
        rest = np.where(inside, kk - 1, kk)
        q1, q2 = (rest - 1) // 2, rest // 2
        shift = inside.astype(np.int64)
        v1 = pick(q1 + shift * (q1 >= pos))
        v2 = pick(q2 + shift * (q2 >= pos))
        other = np.where(rest > 0, (v1 + v2) / 2, np.nan)
    return full, other


@dataclass(frozen=True)
class Contribution:
    """One ticker's part in an anomaly.

    Attributes:
        ticker: The ticker.
        previous: Its previous value.
        actual: Its value on the anomalous day.
        expected: What the model expected (equal to ``actual`` when it behaved normally).
        contribution: ``actual - expected``; the contributions sum to the aggregate deviation.
        pct_deviation: ``contribution / expected * 100``.
        z: Its idiosyncratic robust z-score (NaN when not scorable that day).
        anomalous: Whether its own move crossed the threshold.
    """

    ticker: str
    previous: float
    actual: float
    expected: float
    contribution: float
    pct_deviation: float
    z: float
    anomalous: bool


@dataclass(frozen=True)
class Anomaly:
    """One anomalous day.

    Attributes:
        date: The day.
        score: Largest robust ``|z|`` among the day's parts.
        direction: ``lower`` or ``higher`` than expected (sign of the aggregate deviation).
        actual: Aggregate (total) value.
        expected: Aggregate expected value.
        deviation: ``actual - expected`` (the sum of the contributions).
        pct_deviation: ``deviation / expected * 100``.
        market_z: Robust z of the market move.
        market_wide: Whether the market move itself crossed the threshold.
        contributions: Every ticker with a value that day, ranked by contribution in the
            direction of the deviation.
        top: The leading anomalous contributors (at most ``top_n``).
        narrative: One QuickSight-style sentence.
    """

    date: dt.date
    score: float
    direction: str
    actual: float
    expected: float
    deviation: float
    pct_deviation: float
    market_z: float
    market_wide: bool
    contributions: tuple[Contribution, ...]
    top: tuple[Contribution, ...]
    narrative: str


@dataclass(frozen=True)
class AnomalyResult:
    """Anomalies in a window.

    Attributes:
        start: First trading day of the window.
        end: Last trading day of the window.
        measure: The price measure.
        sensitivity: The sensitivity asked for.
        threshold: The robust-z threshold it maps to.
        method: Short name of the method.
        days_scanned: Trading days in the window with a score.
        anomalies: The anomalous days, by date.
        splits_ignored: Split days whose jumps were ignored.
        narrative: A summary sentence.
    """

    start: dt.date
    end: dt.date
    measure: str
    sensitivity: float
    threshold: float
    method: str
    days_scanned: int
    anomalies: tuple[Anomaly, ...]
    splits_ignored: tuple[SplitDay, ...]
    narrative: str


def anomalies(
    bars: pa.Table,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    sensitivity: float = 0.5,
    measure: str = "close",
    top_n: int = 3,
    corporate_actions: pa.Table | None = None,
) -> AnomalyResult:
    """Detect anomalous days in ``[start, end]``, using all earlier bars as history.

    Args:
        bars: Rows in the ``market.daily_bars`` schema; include history before ``start``
            (the detector needs about 20 earlier trading days before it can score).
        start: First day to report (default: the first day of the data).
        end: Last day to report (default: the last day).
        sensitivity: 0 (only the most extreme days) to 1 (many); 0.5 by default.
        measure: close or adj_close.
        top_n: Contributors named per anomaly.
        corporate_actions: Optional splits; a split day whose raw jump matches its ratio is ignored.

    Raises:
        BadInput: A non-price measure, a bad sensitivity.
        WindowTooShort: Too little history to score.
        EmptyWindow, DateOutsideData: Nothing in the window.
    """
    if measure not in PRICE_MEASURES:
        raise BadInput(
            f"anomalies work on returns of a price measure ({', '.join(PRICE_MEASURES)}), not {measure!r}"
        )
    thr = threshold_for(sensitivity)
    panel = build_panel(bars, measure)
    s = as_date(start, "start") if start is not None else None
    e = as_date(end, "end") if end is not None else None
    lo, hi = panel.window(s, e)
    if len(panel.dates) < MIN_HISTORY:
        raise WindowTooShort(
            f"anomaly detection needs at least {MIN_HISTORY} trading days of history; the data has {len(panel.dates)}"
        )
    rets = log_returns(panel, corporate_actions)
    scores = score_days(rets.r, rets.splits)
    window_scores = scores.score[lo:hi]
    scanned = int(np.sum(~np.isnan(window_scores)))
    if scanned == 0:
        raise WindowTooShort(
            f"no day from {fmt_date(panel.date(lo))} to {fmt_date(panel.date(hi - 1))} can be scored: "
            f"the detector needs {MIN_SCALE_OBS} earlier trading days of returns"
        )
    flagged = lo + np.flatnonzero(np.nan_to_num(window_scores, nan=0.0) >= thr)
    found = tuple(_explain(panel, rets.prev, scores, int(t), thr, top_n) for t in flagged)
    first, last = panel.date(lo), panel.date(hi - 1)
    span = f"from {fmt_date(first)} to {fmt_date(last)}"
    if not found:
        text = f"No anomalies were detected {span} ({scanned} trading days scanned)."
    else:
        strongest = max(found, key=lambda a: a.score)
        noun = "anomaly was" if len(found) == 1 else "anomalies were"
        text = f"{len(found)} {noun} detected {span}; the strongest: {strongest.narrative}"
    return AnomalyResult(
        first,
        last,
        measure,
        sensitivity,
        thr,
        "robust market-factor residual z-scores (two-sided local volatility)",
        scanned,
        found,
        tuple(rets.splits),
        text,
    )


def _explain(panel: Panel, prev: np.ndarray, sc: DayScores, t: int, thr: float, top_n: int) -> Anomaly:
    """Expected values and contributions of anomalous day ``t``."""
    market_wide = bool(abs(np.nan_to_num(sc.z_m[t])) >= thr)
    rows: list[Contribution] = []
    for j, ticker in enumerate(panel.tickers):
        actual = panel.values[t, j]
        if math.isnan(actual):
            continue
        r, z = sc.r[t, j], sc.z[t, j]
        p = int(prev[t, j])
        before = float(panel.values[p, j]) if p >= 0 else math.nan
        own = bool(not math.isnan(z) and abs(z) >= thr)
        if math.isnan(r):
            expected = float(actual)
        else:
            # A ticker trading alone that day is its own market.
            market = sc.m_other[t, j] if not math.isnan(sc.m_other[t, j]) else sc.m[t]
            expected_r = r
            if own:
                expected_r -= r - sc.beta[t, j] * market
            if market_wide:
                expected_r -= sc.beta[t, j] * market
            expected = before * math.exp(expected_r) if (own or market_wide) else float(actual)
        contribution = float(actual) - expected
        pct = contribution / expected * 100.0 if expected else math.nan
        rows.append(Contribution(ticker, before, float(actual), expected, contribution, pct, float(z), own))
    actual_total = math.fsum(c.actual for c in rows)
    expected_total = math.fsum(c.expected for c in rows)
    deviation = math.fsum(c.contribution for c in rows)
    sign = 1.0 if deviation >= 0 else -1.0
    ranked = tuple(sorted(rows, key=lambda c: (-sign * c.contribution, c.ticker)))
    top = tuple(c for c in ranked if sign * c.contribution > 0 and (c.anomalous or market_wide))[:top_n]
    direction = "higher" if deviation >= 0 else "lower"
    pct_dev = deviation / expected_total * 100.0 if expected_total else math.nan
    day = panel.date(t)
    label = measure_label(panel.measure)
    parts = [f"{c.ticker} at {fmt_num(c.actual)} (expected {fmt_num(c.expected)})" for c in top]
    text = f"An anomaly was detected on {fmt_date(day)}"
    if parts:
        text += f" primarily driven by {direction} than expected daily {label} for {join_and(parts)}"
    text += (
        f". {label[0].upper() + label[1:]} was {fmt_num(actual_total)} against {fmt_num(expected_total)} "
        f"expected ({fmt_signed_pct(pct_dev)})"
    )
    text += ", a market-wide move." if market_wide else "."
    return Anomaly(
        day,
        float(sc.score[t]),
        direction,
        actual_total,
        expected_total,
        deviation,
        pct_dev,
        float(sc.z_m[t]),
        market_wide,
        ranked,
        top,
        text,
    )
