"""Anomalous trading days with their contributing tickers, found on returns. No I/O.

Two views, each with its own scale, so that neither hides what the other finds:

**Market-wide** — the aggregate itself: the daily return of the *equal-weight basket*
(the mean of the tickers' growth factors) against its expected path — yesterday's level
grown by the median daily return of the trailing :data:`LONG_WINDOW` trading days —
scaled by a *long-run* robust volatility: 1.4826 × the median absolute deviation over
those same trailing two years, the day itself excluded. Scaling by the volatility
*around* a day would make a crash in a turbulent month ordinary; against two years of
history the crash days of October 2008 or March 2020 stand out, and so do market-wide
rallies. The basket is scored rather than the total close because the total close is
mostly its highest-priced ticker (GOOG at $400 next to MSFT at $25 makes every GOOG
earnings day a "market" day); the total close is still shown, with each ticker's
contribution to its deviation (``actual - expected``, every ticker expected to move as
the basket was expected to). A market-wide day must be *broad*: more than half of the
tickers moved in the basket's direction, and no single ticker whose own move the
single-ticker view flags accounts for more than half of the basket's excess return (that
day is that ticker's).

**Single-ticker** — a market-factor model that names the ticker that moved: each
ticker's return is split into the market as the *other* tickers saw it (their median
return, times a rolling 252-day beta) and an idiosyncratic part ``e``, which is divided
by its *local* volatility (the mean of RiskMetrics EWMAs of its winsorised squares before
and after the day, the day excluded: a ticker's own news is judged against its own
recent behaviour). The day's single-ticker score is the largest ``|z|`` of those parts;
the anomalous ticker is expected to have moved with the market only, everyone else as
they did, so the contributions sum to the deviation and name only who behaved unusually.
The narrative shows the named ticker's own deviation — the one that was scored.

A day both views flag is reported once: as single-ticker when the flagged ticker explains
most of the basket's move, else as market-wide.

Returns come from :func:`~tickerlake.insights._panel.basis_returns`: ``adj_close`` where
present, else ``close`` without split days, so neither a split nor a dividend is a move.

Thresholds (robust z) are not tuned on the data they are scored on: each view's default
is the level that a target share of days (or ticker-days) exceeds on *calibration* data —
simulated markets of seeds disjoint from the ones ``bench/insights.py`` evaluates on — and
the sensitivity scales it by ``2 ** (1 - 2 × sensitivity)`` (×2 at 0, ÷2 at 1). See
:data:`MARKET_Z` and :data:`SINGLE_Z`.

Why not a Random Cut Forest: daily returns are dominated by one common factor and by
volatility that clusters in time; an RCF on raw returns flags every day of a turbulent
regime and misses a large move in a calm one, and cannot say which ticker moved. The two
standardisations above are what an RCF would need first, after which the largest
standardised deviation is the likelihood-ratio test for one shocked component:
deterministic, explainable and O(days × tickers).
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa

from tickerlake.insights._panel import (
    PRICE_MEASURES,
    Panel,
    Returns,
    SplitDay,
    as_date,
    basis_returns,
    build_panel,
    log_returns,
    stored_returns,
)
from tickerlake.insights.errors import BadInput, WindowTooShort
from tickerlake.insights.narrative import fmt_date, fmt_num, fmt_signed_pct, join_and, measure_label

__all__ = [
    "CONTRIBUTIONS_SHOWN",
    "MARKET_Z",
    "SINGLE_HISTORY",
    "SINGLE_Z",
    "Anomaly",
    "AnomalyInput",
    "AnomalyResult",
    "Contribution",
    "DayScores",
    "View",
    "anomalies",
    "anomaly_input",
    "local_variance",
    "market_scores",
    "score_days",
    "threshold_for",
]

BETA_WINDOW = 252
EWMA_LAMBDA = 0.94
WINSOR_SIGMAS = 6.0
SCALE_WINDOW = 63
MIN_SCALE_OBS = 20
MIN_BETA_OBS = 60
#: Trailing trading days of the market-wide view's expected return and scale.
LONG_WINDOW = 504
#: Fewest trailing returns before the market-wide view scores a day.
MIN_LONG_OBS = 60
_MAD_TO_SIGMA = 1.4826
#: Trading days before a window the single-ticker view reads: the beta's year, and the
#: EWMA scale's memory (λ = 0.94 per observation of the ticker: 0.94^780 < 1e-20 for one
#: that trades daily; a sparsely traded one keeps more, 4e-11 of a z-score at most on a
#: simulated 1,000-ticker lake against the whole history).
SINGLE_HISTORY = 850
#: Fewest trading days of history the detector can score at all.
MIN_HISTORY = MIN_SCALE_OBS + 2
#: Market-wide threshold at sensitivity 0.5: the basket's ``|z|`` exceeds it on 0.5% of
#: the days (about one a year) of the calibration markets — ``simulate(seed)`` for seeds
#: 1001-1010, FANGMANT over the default range, shocks included; the evaluation uses other
#: seeds. ``python bench/insights.py --calibrate`` recomputes it (4.67 when set).
MARKET_Z = 4.7
#: Single-ticker threshold at sensitivity 0.5: exceeded on 0.1% of the ticker-days of the
#: same calibration markets (5.83 when set).
SINGLE_Z = 5.8
#: Contributions listed per anomaly (the leading ones; the count of all is given).
CONTRIBUTIONS_SHOWN = 20

View = Literal["market-wide", "single-ticker"]


def threshold_for(sensitivity: float, view: View = "single-ticker") -> float:
    """The robust-z threshold of a view for a sensitivity in [0, 1] (0.5 default, 1 flags the most).

    Raises:
        BadInput: Sensitivity outside [0, 1].
    """
    if not 0.0 <= sensitivity <= 1.0 or math.isnan(sensitivity):
        raise BadInput(f"sensitivity must be between 0 and 1, got {sensitivity}")
    base = MARKET_Z if view == "market-wide" else SINGLE_Z
    return float(base * 2.0 ** (1.0 - 2.0 * sensitivity))


@dataclass(frozen=True, eq=False)
class DayScores:
    """The detector's state for every day (arrays aligned with the panel's dates/tickers).

    Attributes:
        r: Log returns ``(T, N)``.
        m: Market factor ``(T,)``: cross-sectional median return.
        m_other: ``(T, N)``: each ticker's market, the median return of the other tickers.
        beta: Rolling betas ``(T, N)`` known the day before.
        z: Idiosyncratic robust z ``(T, N)`` (NaN when not scorable).
        score: Single-ticker score ``(T,)``: the largest ``|z|`` (NaN when none scorable).
        r_total: Log return of the total close ``(T,)``.
        mu_total: Its expected (trailing median) return.
        z_total: Its long-run robust z.
        r_basket: Log return of the equal-weight basket ``(T,)``.
        mu_basket: Its expected return.
        z_basket: Its long-run robust z.
        splits: Split days whose returns were ignored.
    """

    r: np.ndarray
    m: np.ndarray
    m_other: np.ndarray
    beta: np.ndarray
    z: np.ndarray
    score: np.ndarray
    r_total: np.ndarray
    mu_total: np.ndarray
    z_total: np.ndarray
    r_basket: np.ndarray
    mu_basket: np.ndarray
    z_basket: np.ndarray
    splits: list[SplitDay]

    @property
    def market_score(self) -> np.ndarray:
        """Market-wide score ``(T,)``: the basket's ``|z|`` (NaN when not scorable)."""
        score: np.ndarray = np.abs(self.z_basket)
        return score

    def broad(self, t: int, thr: float) -> bool:
        """Whether day ``t``'s basket move is market-wide rather than one ticker's.

        More than half of the tickers with a return moved in the basket's direction (against
        its expected return), and no ticker flagged by the single-ticker view (``|z| >= thr``)
        accounts for more than half of the basket's excess.
        """
        r = self.r[t]
        ok = ~np.isnan(r)
        if not ok.any() or math.isnan(self.z_basket[t]):
            return False
        sign = 1.0 if self.z_basket[t] >= 0 else -1.0
        excess = np.exp(r[ok]) - math.exp(self.mu_basket[t])
        if np.sum(sign * excess > 0) * 2 <= ok.sum():
            return False
        z = np.nan_to_num(self.z[t][ok], nan=0.0)
        total = float(np.sum(excess))
        own = sign * excess[np.abs(z) >= thr]
        return not (total != 0 and own.size and float(np.max(own)) > 0.5 * abs(total))


def _rolling_sum_before(a: np.ndarray, window: int) -> np.ndarray:
    """Sum of the ``window`` rows strictly before each row (axis 0)."""
    cs = np.concatenate([np.zeros((1, *a.shape[1:])), np.cumsum(a, axis=0)])
    # Row t: cs[t] - cs[max(t - window, 0)], by slices (cs[0] is 0: the first rows keep cs[t]).
    sums: np.ndarray = cs[:-1].copy()
    if len(a) > window:
        sums[window:] -= cs[: len(a) - window]
    return sums


def _ewma_before(x: np.ndarray) -> np.ndarray:
    """EWMA (RiskMetrics λ) of the rows strictly before each row, per column (NaNs skipped)."""
    import pandas as pd  # here, not at import: serve starts without it

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
    import bottleneck as bn  # here, not at import: serve starts without it
    import pandas as pd

    # bottleneck's moving median (two heaps, every column in one C loop) is pandas'
    # rolling median to the bit — the middle value, or the mean of the two middle ones,
    # of the window's non-NaN values — several times faster on a universe's columns.
    med = bn.move_median(np.abs(x), SCALE_WINDOW, min_count=MIN_SCALE_OBS, axis=0)
    slow = _MAD_TO_SIGMA * pd.DataFrame(med)
    bound = WINSOR_SIGMAS * slow.bfill().ffill().to_numpy()
    clipped = np.where(np.isnan(bound), x, np.clip(x, -bound, bound))
    sq = clipped * clipped
    before = _ewma_before(sq)
    after = _ewma_before(sq[::-1])[::-1]
    # The mean of the two where both exist, else the one that does (nanmean's arithmetic,
    # without its warning for cells with neither).
    has_b, has_a = ~np.isnan(before), ~np.isnan(after)
    total = np.where(has_b, before, 0.0) + np.where(has_a, after, 0.0)
    count = has_b.astype(np.int64) + has_a
    with np.errstate(divide="ignore", invalid="ignore"):
        var: np.ndarray = np.where(count > 0, total / count, np.nan)
    return var


def _long_run_z(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expected value (trailing median) and robust z of a series against its trailing LONG_WINDOW days."""
    import pandas as pd  # here, not at import: serve starts without it

    s = pd.Series(x)
    mu = s.rolling(LONG_WINDOW, min_periods=MIN_LONG_OBS).median().shift(1).to_numpy()
    # The absolute deviations from each past day's own trailing median: a slow drift in
    # the median does not inflate the scale.
    dev = (s - s.rolling(LONG_WINDOW, min_periods=1).median()).abs()
    scale = _MAD_TO_SIGMA * dev.rolling(LONG_WINDOW, min_periods=MIN_LONG_OBS).median().shift(1).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(scale > 0, (x - mu) / scale, np.nan)
    return mu, z


_Six = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def market_scores(r: np.ndarray, level: np.ndarray | None) -> _Six:
    """The market-wide view's series: total close and equal-weight basket, returns and z.

    Args:
        r: ``(T, N)`` log returns (NaN where none).
        level: ``(T, N)`` closes the day's return ends at (the total close's weights are
            each ticker's close before its move: ``level × exp(-r)``); None: equal weights.

    Returns:
        ``r_total, mu_total, z_total, r_basket, mu_basket, z_basket``, each ``(T,)``.
    """
    n_t = len(r)
    r_total, r_basket = np.full(n_t, np.nan), np.full(n_t, np.nan)
    step = _row_block(r.shape[1])
    for a in range(0, n_t, step):
        rows = slice(a, a + step)
        rr = r[rows]
        lv = np.ones_like(rr) if level is None else level[rows]
        has = ~np.isnan(rr) & ~np.isnan(lv)
        growth = np.where(has, np.exp(np.where(has, rr, 0.0)), 0.0)
        before = np.where(has, lv / np.where(has, growth, 1.0), 0.0)
        n = has.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            r_total[rows] = np.where(
                n > 0, np.log(np.where(has, lv, 0.0).sum(axis=1) / before.sum(axis=1)), np.nan
            )
            r_basket[rows] = np.where(n > 0, np.log(growth.sum(axis=1) / n), np.nan)
    mu_total, z_total = _long_run_z(r_total)
    mu_basket, z_basket = _long_run_z(r_basket)
    return r_total, mu_total, z_total, r_basket, mu_basket, z_basket


def score_days(
    panel_returns: np.ndarray,
    splits: list[SplitDay] | None = None,
    level: np.ndarray | None = None,
    from_row: int = 0,
) -> DayScores:
    """Score every day of a returns matrix in both views (see the module docstring).

    Args:
        panel_returns: ``(T, N)`` log returns, NaN where there is none.
        splits: Split days already masked out of the returns (carried through for reporting).
        level: ``(T, N)`` closes, the total close's weights (default: equal weights).
        from_row: The single-ticker view is computed from this row on (NaN before it): on
            a universe its (T, N) work is most of the cost, and a day needs only
            :data:`SINGLE_HISTORY` rows before it. The market-wide view uses every row.
    """
    agg = market_scores(panel_returns, level)
    return DayScores(panel_returns, *_single(panel_returns, max(from_row, 0)), *agg, splits or [])


# Cells per block of the (T, N) work (8 MB of float64): every step is row-local or
# column-local, so blocks give the same numbers and bound the temporaries on a universe
# (a few tickers make one block).
_BLOCK_CELLS = 1 << 20
_COL_BLOCK = 256


def _row_block(n: int) -> int:
    """Rows per block of a row-local step over ``n`` tickers."""
    return max(1, _BLOCK_CELLS // max(n, 1))


def _single(
    r: np.ndarray, from_row: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The single-ticker view of returns ``r`` from row ``from_row`` on (NaN before it):
    market, each ticker's market, beta, z, score."""
    n_t, n = r.shape
    m, score = np.full(n_t, np.nan), np.full(n_t, np.nan)
    # Every cell from ``from_row`` on is written below: only the rows before it are filled
    # (three universe-sized matrices need not be written twice).
    mk, beta, zz = np.empty((n_t, n)), np.empty((n_t, n)), np.empty((n_t, n))
    for head in (mk, beta, zz):
        head[:from_row] = np.nan
    sub = r[from_row:]
    count = np.sum(~np.isnan(sub), axis=1)

    # Each ticker's market is the median of the *other* tickers, so its own shock cannot
    # leak into what it is expected to do.
    step = _row_block(n)
    for a in range(0, len(sub), step):
        rows = slice(from_row + a, from_row + a + step)
        m[rows], mk[rows] = _medians(sub[a : a + step])
    for c in range(0, n, _COL_BLOCK):
        cols = slice(c, c + _COL_BLOCK)
        rr, mm = sub[:, cols], mk[from_row:, cols]
        # Rolling beta of each ticker on its market, from the previous BETA_WINDOW days.
        pair = ~np.isnan(rr) & ~np.isnan(mm)
        x = np.where(pair, mm, 0.0)
        y = np.where(pair, rr, 0.0)
        k = _rolling_sum_before(pair.astype(float), BETA_WINDOW)
        sx, sy = _rolling_sum_before(x, BETA_WINDOW), _rolling_sum_before(y, BETA_WINDOW)
        sxx, sxy = _rolling_sum_before(x * x, BETA_WINDOW), _rolling_sum_before(x * y, BETA_WINDOW)
        with np.errstate(divide="ignore", invalid="ignore"):
            var = sxx - sx * sx / k
            b = (sxy - sx * sy / k) / var
        b = np.where((k >= MIN_BETA_OBS) & (var > 0) & np.isfinite(b), np.clip(b, -1.0, 3.0), 1.0)
        # Without another ticker trading that day there is no idiosyncratic part to speak of.
        e = np.where(count[:, None] >= 2, rr - b * mm, np.nan)
        v = local_variance(e)
        with np.errstate(divide="ignore", invalid="ignore"):
            zz[from_row:, cols] = np.where(v > 0, e / np.sqrt(v), np.nan)
        beta[from_row:, cols] = b
    if n:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            score[from_row:] = np.nanmax(np.abs(zz[from_row:]), axis=1)
    return m, mk, beta, zz, score


def _medians(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row medians ignoring NaNs, and for each cell the median of its row *without* that cell.

    One sort per row gives both. Dropping a value ``x`` from a sorted row ``s`` of ``k``
    values leaves ``rest[q] = s[q]`` where ``s[q] < x`` (the dropped copy of ``x`` sits
    after ``q``) and ``s[q + 1]`` otherwise — a tie drops an equal value either way — so
    the median without the cell takes two comparisons with the row's middle values.
    Empty rows (or rows with only the cell itself) give NaN.
    """
    n_t, n = r.shape
    srt = np.sort(r, axis=1)  # NaNs sort last
    k = np.sum(~np.isnan(r), axis=1)
    padded = np.concatenate([srt, np.full((n_t, 1), np.nan)], axis=1)
    rows = np.arange(n_t)

    def at(q: np.ndarray) -> np.ndarray:
        picked: np.ndarray = padded[rows, np.clip(q, 0, n)][:, None]
        return picked

    with np.errstate(invalid="ignore"):
        full = np.where(k > 0, (at((k - 1) // 2) + at(k // 2))[:, 0] / 2, np.nan)
        rest = k - 1
        q1, q2 = (rest - 1) // 2, rest // 2
        lo1, lo2 = at(q1), at(q2)
        v1 = np.where(lo1 < r, lo1, at(q1 + 1))
        v2 = np.where(lo2 < r, lo2, at(q2 + 1))
        without = np.where((rest > 0)[:, None], (v1 + v2) / 2, np.nan)
        # A cell without a value leaves its row as it is.
        other = np.where(np.isnan(r), full[:, None], without)
    return full, other


@dataclass(frozen=True)
class Contribution:
    """One ticker's part in an anomaly.

    Attributes:
        ticker: The ticker.
        previous: Its previous value.
        actual: Its value on the anomalous day.
        expected: What the view expected (equal to ``actual`` when it behaved normally).
        contribution: ``actual - expected``; the contributions sum to the aggregate deviation.
        pct_deviation: ``contribution / expected * 100``.
        z: Its idiosyncratic robust z-score (NaN when not scorable that day).
        anomalous: Whether its own move crossed the single-ticker threshold.
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
        view: Which view found it: ``market-wide`` (the aggregate on its long-run scale) or
            ``single-ticker`` (a ticker's own move against the market, on its local scale).
        score: The robust ``|z|`` that crossed the view's threshold.
        scored_series: What was scored: ``equal-weight basket`` (market-wide) or the ticker.
        scored_pct: That series' deviation from expected, in percent (the one the score measures).
        direction: ``lower`` or ``higher`` than expected (of the scored series).
        actual: Aggregate (total) value.
        expected: Aggregate expected value.
        deviation: ``actual - expected`` (the sum of the contributions).
        pct_deviation: ``deviation / expected * 100``.
        market_z: Long-run robust z of the total close's return (NaN when not scorable).
        market_wide: ``view == "market-wide"``.
        contributions: The tickers with a value that day, ranked by contribution in the
            anomaly's direction: all of them up to :data:`CONTRIBUTIONS_SHOWN` (then they
            sum to ``deviation``), else the leading ones (a universe's answer stays readable).
        contributors: How many tickers had a value that day (those ranked).
        unusual: How many of them moved unusually by the single-ticker view.
        top: The leading contributors (at most ``top_n``).
        narrative: One QuickSight-style sentence.
    """

    date: dt.date
    view: View
    score: float
    scored_series: str
    scored_pct: float
    direction: str
    actual: float
    expected: float
    deviation: float
    pct_deviation: float
    market_z: float
    market_wide: bool
    contributions: tuple[Contribution, ...]
    contributors: int
    unusual: int
    top: tuple[Contribution, ...]
    narrative: str


@dataclass(frozen=True)
class AnomalyResult:
    """Anomalies in a window.

    Attributes:
        start: First trading day of the window.
        end: Last trading day of the window.
        measure: The price measure shown.
        sensitivity: The sensitivity asked for.
        threshold: The single-ticker view's robust-z threshold.
        market_threshold: The market-wide view's robust-z threshold.
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
    market_threshold: float
    method: str
    days_scanned: int
    anomalies: tuple[Anomaly, ...]
    splits_ignored: tuple[SplitDay, ...]
    narrative: str


@dataclass(frozen=True, eq=False)
class AnomalyInput:
    """What the detector reads: a price panel and the returns aligned with it.

    Built by :func:`anomaly_input` from long bars; a caller that holds the bars only for
    the detector can drop them once this exists (on a universe they are hundreds of
    megabytes, the panel a fraction of that).

    Attributes:
        panel: The measure's panel (the levels shown).
        returns: The returns scored (see :func:`anomalies`).
    """

    panel: Panel
    returns: Returns


def _check_measure(measure: str) -> None:
    if measure not in PRICE_MEASURES:
        raise BadInput(
            f"anomalies work on returns of a price measure ({', '.join(PRICE_MEASURES)}), not {measure!r}"
        )


def anomaly_input(
    bars: pa.Table,
    measure: str = "close",
    corporate_actions: pa.Table | None = None,
    trading_days: np.ndarray | None = None,
) -> AnomalyInput:
    """The panel and returns :func:`anomalies` scores (its arguments of the same names).

    Raises:
        BadInput: A non-price measure.
    """
    _check_measure(measure)
    if measure == "close" and trading_days is not None and "ret" in bars.column_names:
        return AnomalyInput(*stored_returns(bars, corporate_actions, trading_days))
    if measure in ("close", "adj_close"):
        close, rets = basis_returns(bars, corporate_actions)
        return AnomalyInput(close if measure == "close" else build_panel(bars, measure), rets)
    panel = build_panel(bars, measure)
    return AnomalyInput(panel, log_returns(panel, corporate_actions))


def anomalies(
    bars: pa.Table | AnomalyInput,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    sensitivity: float = 0.5,
    measure: str = "close",
    top_n: int = 3,
    corporate_actions: pa.Table | None = None,
    trading_days: np.ndarray | None = None,
) -> AnomalyResult:
    """Detect anomalous days in ``[start, end]``, using all earlier bars as history.

    Args:
        bars: Rows in the ``market.daily_bars`` schema; include history before ``start``
            (the single-ticker view needs about 20 earlier trading days, the market-wide
            view 60, and uses up to two years). Or their :func:`anomaly_input` (of the
            same ``measure``), when the caller would rather not keep the rows meanwhile.
        start: First day to report (default: the first day of the data).
        end: Last day to report (default: the last day).
        sensitivity: 0 (only the most extreme days) to 1 (many); 0.5 by default.
        measure: The price shown (close by default). For close and adj_close the returns
            are :func:`~tickerlake.insights._panel.basis_returns`; open, high and low use
            their own day-over-day returns.
        top_n: Contributors named per anomaly.
        corporate_actions: Splits whose raw jumps are ignored where only close exists.
        trading_days: The market's trading days, when ``bars`` carry the returns the ETL
            stored (a ``ret`` column: see :func:`~tickerlake.insights._panel.stored_returns`);
            they are used for ``close`` instead of being recomputed.

    Raises:
        BadInput: A non-price measure, a bad sensitivity.
        WindowTooShort: Too little history to score.
        EmptyWindow, DateOutsideData: Nothing in the window.
    """
    _check_measure(measure)
    thr = threshold_for(sensitivity)
    mthr = threshold_for(sensitivity, "market-wide")
    data = (
        bars
        if isinstance(bars, AnomalyInput)
        else anomaly_input(bars, measure, corporate_actions, trading_days)
    )
    panel, rets = data.panel, data.returns
    s = as_date(start, "start") if start is not None else None
    e = as_date(end, "end") if end is not None else None
    lo, hi = panel.window(s, e)
    if len(panel.dates) < MIN_HISTORY:
        raise WindowTooShort(
            f"anomaly detection needs at least {MIN_HISTORY} trading days of history; the data has {len(panel.dates)}"
        )
    scores = score_days(rets.r, rets.splits, panel.values, max(0, lo - SINGLE_HISTORY))
    market = scores.market_score
    single = scores.score
    window = np.stack([single[lo:hi], market[lo:hi]])
    scanned = int(np.sum(~np.all(np.isnan(window), axis=0)))
    if scanned == 0:
        raise WindowTooShort(
            f"no day from {fmt_date(panel.date(lo))} to {fmt_date(panel.date(hi - 1))} can be scored: "
            f"the detector needs {MIN_SCALE_OBS} earlier trading days of returns"
        )
    m_hit = np.array(
        [bool(m >= mthr) and scores.broad(lo + k, thr) for k, m in enumerate(np.nan_to_num(market[lo:hi]))],
        dtype=bool,
    )
    s_hit = np.nan_to_num(single[lo:hi], nan=0.0) >= thr
    flagged = lo + np.flatnonzero(m_hit | s_hit)
    found = tuple(
        _explain(panel, rets.prev, scores, int(t), thr, mthr, top_n, bool(m_hit[t - lo])) for t in flagged
    )
    first, last = panel.date(lo), panel.date(hi - 1)
    span = f"from {fmt_date(first)} to {fmt_date(last)}"
    if not found:
        text = f"No anomalies were detected {span} ({scanned} trading days scanned)."
    else:
        strongest = max(found, key=lambda a: a.score)
        noun = "anomaly was" if len(found) == 1 else "anomalies were"
        wide = sum(1 for a in found if a.market_wide)
        text = (
            f"{len(found)} {noun} detected {span} ({wide} market-wide, {len(found) - wide} single-ticker); "
            f"the strongest: {strongest.narrative}"
        )
    return AnomalyResult(
        first,
        last,
        measure,
        sensitivity,
        thr,
        mthr,
        "market-wide: equal-weight basket on a two-year robust scale; "
        "single-ticker: market-factor residuals on local volatility",
        scanned,
        found,
        tuple(rets.splits),
        text,
    )


def _contribution(
    ticker: str, before: float, actual: float, expected: float, z: float, own: bool
) -> Contribution:
    contribution = actual - expected
    pct = contribution / expected * 100.0 if expected else math.nan
    return Contribution(ticker, before, actual, expected, contribution, pct, z, own)


def _explain(
    panel: Panel, prev: np.ndarray, sc: DayScores, t: int, thr: float, mthr: float, top_n: int, wide: bool
) -> Anomaly:
    """Expected values, contributions and narrative of anomalous day ``t``.

    Vectorised over the day's tickers (thousands on a universe); only the contributions
    shown become objects. The expected values that differ from the actual ones (the
    flagged tickers', or every ticker's on a market-wide day) are computed with
    :func:`math.exp` one by one, as they always were, so the figures do not move.
    """
    if wide:
        z_scored = float(sc.z_basket[t])
        series = "equal-weight basket"
        excess = float(sc.r_basket[t] - sc.mu_basket[t])
        mu = float(sc.mu_basket[t])
    actual_all = panel.values[t]
    idx = np.flatnonzero(~np.isnan(actual_all))
    actual = actual_all[idx]
    r, z = sc.r[t, idx], sc.z[t, idx]
    with np.errstate(invalid="ignore"):
        own = ~np.isnan(z) & (np.abs(z) >= thr)
    # Who is expected to have moved otherwise than it did (see the module docstring).
    moved = np.flatnonzero(~np.isnan(r) & (True if wide else own))
    expected = actual.copy()
    if moved.size:
        m_t = float(sc.m[t])
        a_l, r_l = actual[moved].tolist(), r[moved].tolist()
        if wide:
            expected[moved] = [a * math.exp(mu - rr) for a, rr in zip(a_l, r_l, strict=True)]
        else:
            cols = idx[moved]
            mk = [m if not math.isnan(m) else m_t for m in sc.m_other[t, cols].tolist()]
            expected[moved] = [
                a * math.exp(b * m - rr)
                for a, b, m, rr in zip(a_l, sc.beta[t, cols].tolist(), mk, r_l, strict=True)
            ]
    contribution = actual - expected
    actual_total = math.fsum(actual.tolist())
    expected_total = math.fsum(expected.tolist())
    deviation = math.fsum(contribution.tolist())
    with np.errstate(divide="ignore", invalid="ignore"):
        pct_all = np.where(expected != 0, contribution / expected * 100.0, np.nan)
    pct_dev = deviation / expected_total * 100.0 if expected_total else math.nan
    day = panel.date(t)
    label = measure_label(panel.measure)
    if wide:
        sign = 1.0 if z_scored >= 0 else -1.0
        score, scored_pct = abs(z_scored), (math.exp(excess) - 1.0) * 100.0
    else:
        flagged = np.flatnonzero(own)
        k = int(flagged[np.argmax(np.abs(z[flagged]))])
        named_ticker = panel.tickers[int(idx[k])]
        sign = 1.0 if contribution[k] >= 0 else -1.0
        score, scored_pct, series = abs(float(z[k])), float(pct_all[k]), named_ticker
    # By contribution in the anomaly's direction, then by ticker (the columns are sorted).
    aligned = sign * contribution
    order = np.lexsort((idx, -aligned))
    with np.errstate(invalid="ignore"):
        leads = (aligned > 0) & (own | wide)
    top_rows = order[leads[order]][:top_n]
    p_t = prev[t, idx]
    befores = np.where(p_t >= 0, panel.values[np.maximum(p_t, 0), idx], np.nan)

    def row(i: int) -> Contribution:
        return _contribution(
            panel.tickers[int(idx[i])], float(befores[i]), float(actual[i]), float(expected[i]),
            float(z[i]), bool(own[i]),
        )  # fmt: skip

    ranked = tuple(row(int(i)) for i in order[:CONTRIBUTIONS_SHOWN])
    top = tuple(row(int(i)) for i in top_rows)
    direction = "higher" if sign > 0 else "lower"
    parts = [f"{c.ticker} at {fmt_num(c.actual)} (expected {fmt_num(c.expected)})" for c in top]
    head = f"An anomaly was detected on {fmt_date(day)}"
    if wide:
        text = (
            f"{head}: a market-wide move, the equal-weight basket was {direction} than expected "
            f"({fmt_signed_pct(scored_pct)}, {score:.1f} robust sigmas of its two-year history). Daily {label} was "
            f"{fmt_num(actual_total)} against {fmt_num(expected_total)} expected ({fmt_signed_pct(pct_dev)})"
        )
        text += f", driven primarily by {join_and(parts)}." if parts else "."
    else:
        text = (
            f"{head} primarily driven by {direction} than expected daily {label} for {join_and(parts)}: "
            f"{named_ticker} moved {fmt_signed_pct(scored_pct)} against the market, {score:.1f} robust "
            f"sigmas of its own recent moves. {label[0].upper() + label[1:]} was {fmt_num(actual_total)} "
            f"against {fmt_num(expected_total)} expected ({fmt_signed_pct(pct_dev)})."
        )
    view: View = "market-wide" if wide else "single-ticker"
    return Anomaly(
        day,
        view,
        score,
        series,
        scored_pct,
        direction,
        actual_total,
        expected_total,
        deviation,
        pct_dev,
        float(sc.z_total[t]),
        wide,
        ranked,
        len(idx),
        int(own.sum()),
        top,
        text,
    )
