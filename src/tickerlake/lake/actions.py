"""Corporate actions read from the prices themselves, and split adjustment. Pure, no I/O.

A Yahoo-style file carries the close as traded (or already split-adjusted) and an
``adj_close`` adjusted for splits *and* dividends. Their ratio ``f = adj_close / close``
is the adjustment factor: constant between actions, it steps up on every ex-date.

* A step ``f[t] / f[t-1]`` that matches a clean split ratio (2:1, 3:2, 1:10 …) within
  :data:`SPLIT_TOLERANCE` (1% in log terms) is a **split** of that ratio; the close
  was as traded (raw). A dividend cannot reach that tolerance of the nearest ratio (3:2
  would take a dividend of a third of the price; 5:4 and 4:3 are left out for that
  reason).
* Any other step that is significant — eight robust sigmas of the factor's rounding
  jitter around that day (prices rounded to a tick jitter relatively more when they are
  low) and persistent over the following days — is a **dividend** of
  ``(1 - f[t-1] / f[t]) × close[t-1]`` in that day's share basis (what Yahoo's
  adjustment divides out). A split and a dividend on the same day give both rows.
* Without ``adj_close``, a one-day jump where both ``prev_close / close`` and
  ``prev_close / open`` match a clean ratio (within :data:`SUSPECT_TOLERANCE`), with
  steady closes over the days before and after (a level shift, not a move and its
  reversal) is a **suspected** split: reported, never applied. A crash that halves a
  price overnight and stays there looks the same — which is why it is only suspected.

:func:`adjust_series` then states the curated meaning of each column: ``close`` (and
open/high/low) split-adjusted, ``volume`` in today's shares, ``raw_close`` as traded.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "SPLIT_RATIOS",
    "SPLIT_TOLERANCE",
    "SUSPECT_TOLERANCE",
    "Action",
    "Adjusted",
    "adjust_series",
    "infer_from_factor",
    "later_split_factor",
    "match_ratio",
    "suspect_splits",
]

Floats = npt.NDArray[np.float64]
#: Trading days: dates, or a ``datetime64[D]`` array (what Arrow hands over without copying).
Days = Sequence[dt.date] | npt.NDArray[np.datetime64]


def _as_days(dates: Days) -> npt.NDArray[np.datetime64]:
    return np.asarray(dates, dtype="datetime64[D]")


def _date(days: npt.NDArray[np.datetime64], i: int) -> dt.date:
    day: dt.date = days[i].astype(object)
    return day


#: Clean split ratios (new shares per old share), forward and reverse.
SPLIT_RATIOS: tuple[float, ...] = (
    1.5,
    2.0,
    3.0,
    4.0,
    5.0,
    6.0,
    7.0,
    8.0,
    10.0,
    15.0,
    20.0,
    1 / 2,
    1 / 3,
    1 / 4,
    1 / 5,
    1 / 8,
    1 / 10,
    1 / 15,
    1 / 20,
    1 / 25,
    1 / 50,
)
#: Log distance to a clean ratio within which a factor step is a split (1%).
SPLIT_TOLERANCE = 0.01
#: Log distance for a raw price jump (no adjusted close): a day's own move rides on it.
SUSPECT_TOLERANCE = 0.08
# A significant factor step: this many robust sigmas of the factor's day-to-day jitter,
# and at least this much in log terms (a dividend under 0.02% of the price is noise).
_JITTER_SIGMAS = 8.0
# Steps (days) of the centred window the jitter is measured on: a quarter on either side.
_JITTER_DAYS = 127
_MIN_STEP = 2e-4
# A step persists when the median factor of the next days sits at least this share of
# the step away from the median of the days before.
_PERSIST_DAYS = 3
_PERSIST_SHARE = 0.5
# A suspected split must hold: the next days' closes stay within half the jump of the day's.
_HOLD_DAYS = 5


@dataclass(frozen=True)
class Action:
    """A corporate action found in a price series.

    Attributes:
        date: Ex-date (first day traded on the new basis).
        action: ``split`` or ``dividend``.
        ratio: New shares per old share (splits).
        amount: Cash per share in that day's share basis (dividends).
        source: ``inferred`` (from the adjustment factor) or ``suspected`` (a raw price jump).
    """

    date: dt.date
    action: str
    ratio: float | None
    amount: float | None
    source: str


def match_ratio(x: float, tolerance: float = SPLIT_TOLERANCE) -> float | None:
    """The clean split ratio within ``tolerance`` (log distance) of ``x``, if any."""
    if not x > 0 or not math.isfinite(x):
        return None
    lx = math.log(x)
    best = min(SPLIT_RATIOS, key=lambda r: abs(lx - math.log(r)))
    return best if abs(lx - math.log(best)) < tolerance else None


def infer_from_factor(dates: Days, close: Floats, adj_close: Floats) -> list[Action]:
    """Splits and dividends from the steps of ``adj_close / close`` (see the module docstring).

    Args:
        dates: Trading days, ascending.
        close: Close as the source gives it (NaN where missing); dividend amounts are in
            its basis, so pass the close as traded to get them per share of that day.
        adj_close: Split- and dividend-adjusted close (NaN where missing).

    Returns:
        The actions found, by date (``source = 'inferred'``).
    """
    import pandas as pd  # here, not at import: serve starts without it

    idx = np.flatnonzero(np.isfinite(close) & np.isfinite(adj_close) & (close > 0) & (adj_close > 0))
    if len(idx) < 2:
        return []
    days = _as_days(dates)
    logf = np.log(adj_close[idx] / close[idx])
    step = np.diff(logf)
    # The factor's day-to-day jitter (prices rounded to a tick) is relative to the price,
    # so it is measured locally: a robust scale of the steps around each day.
    size = pd.Series(np.abs(step))
    local = size.rolling(_JITTER_DAYS, center=True, min_periods=1).median().to_numpy()
    threshold = np.maximum(_JITTER_SIGMAS * 1.4826 * local, _MIN_STEP)
    found: list[Action] = []
    for k in np.flatnonzero(np.abs(step) > threshold):
        t, p = int(idx[k + 1]), int(idx[k])
        s = float(step[k])
        ratio = match_ratio(math.exp(s))
        rest = s - math.log(ratio) if ratio is not None else s
        if ratio is not None:
            found.append(Action(_date(days, t), "split", ratio, None, "inferred"))
        if abs(rest) <= threshold[k] or rest < 0:
            # A factor that falls is no dividend (Yahoo's adjustment only ever lowers history).
            continue
        before = logf[max(0, k + 1 - _PERSIST_DAYS) : k + 1]
        after = logf[k + 1 : k + 1 + _PERSIST_DAYS]
        if abs(float(np.median(after) - np.median(before))) < _PERSIST_SHARE * abs(s):
            continue
        # Yahoo divides history by (1 - D / close[t-1]); on a split day that close is
        # brought to the ex-date's share basis first.
        amount = (1.0 - math.exp(-rest)) * float(close[p]) / (ratio or 1.0)
        found.append(Action(_date(days, t), "dividend", None, round(amount, 6), "inferred"))
    return found


def suspect_splits(dates: Days, close: Floats, open_: Floats) -> list[Action]:
    """Suspected splits in a raw-only series (see the module docstring).

    Args:
        dates: Trading days, ascending.
        close: Close as traded (NaN where missing).
        open_: Open as traded (NaN where missing; a day without an open is never suspected).

    Returns:
        Suspected splits by date (``source = 'suspected'``).
    """
    idx = np.flatnonzero(np.isfinite(close) & (close > 0))
    days = _as_days(dates)
    found: list[Action] = []
    # Only days whose jump is at least the smallest clean ratio's less the tolerance are candidates.
    lo = min(abs(math.log(r)) for r in SPLIT_RATIOS) - SUSPECT_TOLERANCE
    jumps = np.abs(np.diff(np.log(close[idx]))) if len(idx) > 1 else np.zeros(0)
    for k in (np.flatnonzero(jumps > lo) + 1).tolist():
        t, p = int(idx[k]), int(idx[k - 1])
        jump = float(close[p] / close[t])
        ratio = match_ratio(jump, SUSPECT_TOLERANCE)
        if ratio is None or not (open_[t] > 0):
            continue
        if match_ratio(float(close[p] / open_[t]), SUSPECT_TOLERANCE) != ratio:
            continue
        # A level shift, not a move and its reversal: steady on both sides of the jump.
        half = abs(math.log(ratio)) / 2
        later = close[idx[k + 1 : k + 1 + _HOLD_DAYS]]
        earlier = close[idx[max(0, k - _HOLD_DAYS) : k]]
        if len(later) and np.max(np.abs(np.log(later / close[t]))) >= half:
            continue
        if np.max(np.abs(np.log(earlier / close[p]))) >= half:
            continue
        found.append(Action(_date(days, t), "split", ratio, None, "suspected"))
    return found


def later_split_factor(dates: Days, splits: Sequence[tuple[dt.date, float]]) -> Floats:
    """For each day, the product of the ratios of splits effective *after* it.

    A raw price on that day divided by this factor is in today's share basis.
    """
    day = _as_days(dates)
    k = np.ones(len(day))
    for when, ratio in splits:
        k[day < np.datetime64(when, "D")] *= ratio
    return k


@dataclass(frozen=True)
class Adjusted:
    """A series in the curated columns' meaning.

    Attributes:
        raw: Whether the received close was as traded (split steps found or known splits matched).
        factor: Product of later splits per day (1 where none).
        raw_close: Close as traded.
        close: Split-adjusted close.
        open: Split-adjusted open.
        high: Split-adjusted high.
        low: Split-adjusted low.
        volume: Volume in today's shares.
    """

    raw: bool
    factor: Floats
    raw_close: Floats
    close: Floats
    open: Floats
    high: Floats
    low: Floats
    volume: Floats


def _matches_jump(day: npt.NDArray[np.datetime64], close: Floats, when: dt.date, ratio: float) -> bool:
    """Whether the close jumps by ``ratio`` on ``when`` (prev / curr), as raw prices do on a split."""
    t = int(np.searchsorted(day, np.datetime64(when, "D")))
    if t == 0 or t >= len(day) or day[t] != np.datetime64(when, "D"):
        return False
    prev = close[:t][np.isfinite(close[:t])]
    if not len(prev) or not close[t] > 0:
        return False
    return abs(math.log(float(prev[-1] / close[t])) - math.log(ratio)) < SUSPECT_TOLERANCE


def adjust_series(
    dates: Days,
    close: Floats,
    open_: Floats,
    high: Floats,
    low: Floats,
    volume: Floats,
    splits: Sequence[tuple[dt.date, float]],
    raw: bool | None = None,
) -> Adjusted:
    """Bring one ticker's series to the curated meaning of its columns.

    Args:
        dates: Trading days, ascending.
        close: Close in the basis received (as traded, or already split-adjusted).
        open_: Open in the same basis.
        high: High in the same basis.
        low: Low in the same basis.
        volume: Volume in the same basis (NaN where missing).
        splits: ``(date, ratio)`` of the splits to apply (known and inferred; never suspected).
        raw: Whether the received basis is as traded; None decides it: as traded when any
            split's ratio shows as a jump in ``close`` on its day.

    Returns:
        The adjusted series (unchanged prices when the basis was already adjusted).
    """
    k = later_split_factor(dates, splits)
    if raw is None:
        days = _as_days(dates)
        raw = any(_matches_jump(days, close, d, r) for d, r in splits)
    if raw:
        return Adjusted(True, k, close, close / k, open_ / k, high / k, low / k, volume * k)
    return Adjusted(False, k, close * k, close, open_, high, low, volume)
