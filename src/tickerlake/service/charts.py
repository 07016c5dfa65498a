"""The series the charts draw: one line per ticker on a shared date axis, and candles.

Pure functions of a :class:`~tickerlake.service.market.Market` (unit-tested directly),
plus one operation per chart that resolves the user's selection first. The answers are
plain JSON types already (lists of floats and ISO dates), so a shell encodes them as they are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tickerlake.insights import BadInput, Window
from tickerlake.service.market import Market
from tickerlake.service.selection import (
    LINE_MEASURES,
    OHLC_MEASURES,
    LineMeasure,
    OhlcMeasure,
    one_ticker,
    resolve_span,
)

__all__ = [
    "CHART_SERIES",
    "MEASURE_LABELS",
    "BarsParams",
    "OhlcParams",
    "bars",
    "line_series",
    "most_traded",
    "ohlc",
    "ohlc_series",
]

#: A line chart draws at most this many series by default: hundreds of lines are no chart.
CHART_SERIES = 20


def _floats(v: np.ndarray, digits: int) -> list[float | None]:
    """Rounded floats as a list, None for NaN."""
    r = np.round(v, digits)
    out: list[float | None] = r.tolist()
    missing = np.flatnonzero(np.isnan(r))
    for i in missing.tolist():
        out[i] = None
    return out


def _ints(v: np.ndarray) -> list[int | None]:
    """Whole numbers as a list, None for NaN."""
    ok = ~np.isnan(v)
    out: list[int | None] = np.where(ok, v, 0).astype(np.int64).tolist()
    for i in np.flatnonzero(~ok).tolist():
        out[i] = None
    return out


def _stats(v: np.ndarray, iso: Sequence[str]) -> dict[str, Any]:
    """First/last value with dates, change, min and max of one series (NaNs skipped)."""
    ok = np.flatnonzero(~np.isnan(v))
    if len(ok) == 0:
        return {"first": None, "first_date": None, "last": None, "last_date": None,
                "change_pct": None, "min": None, "max": None}  # fmt: skip
    a, b = int(ok[0]), int(ok[-1])
    first, last = float(v[a]), float(v[b])
    return {
        "first": first,
        "first_date": iso[a],
        "last": last,
        "last_date": iso[b],
        "change_pct": (last / first - 1.0) * 100.0 if first else None,
        "min": float(np.nanmin(v)),
        "max": float(np.nanmax(v)),
    }


def _rebase(block: np.ndarray) -> np.ndarray:
    """Each column divided by its first value and times 100 (NaN before the first value)."""
    ok = ~np.isnan(block)
    first_row = np.argmax(ok, axis=0)
    base = block[first_row, np.arange(block.shape[1])]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok.any(axis=0) & (base > 0), block / base * 100.0, np.nan)


MEASURE_LABELS: dict[str, str] = {
    "close": "Close (split-adjusted)",
    "adj_close": "Adjusted close (splits and dividends)",
    "volume": "Volume (shares)",
    "normalised": "Close rebased to 100 at the window start",
}


def line_series(
    market: Market,
    tickers: Sequence[str],
    start: dt.date | None,
    end: dt.date | None,
    measure: str = "close",
    total: bool = False,
) -> dict[str, Any]:
    """One series per ticker for the line chart, on a shared date axis.

    Args:
        market: The lake's bars.
        tickers: Tickers to draw (each must be in the market).
        start: First day (None = first in the data).
        end: Last day (None = last in the data).
        measure: close, adj_close, volume, or normalised (close rebased to 100 at each
            ticker's first trading day in the window).
        total: Also return the total across the tickers (QuickSight's SUM) per day, over
            the tickers that have a value that day.

    Returns:
        ``{measure, label, start, end, dates, series: [{ticker, values, first, last, ...}], total}``.

    Raises:
        BadInput: Unknown measure, or a total of normalised values.
        NoData, DateOutsideData, EmptyWindow, UnknownTicker: See :meth:`Market.rows`.
    """
    if measure not in LINE_MEASURES:
        raise BadInput(f"unknown measure {measure!r} (one of {', '.join(LINE_MEASURES)})")
    if total and measure == "normalised":
        raise BadInput("a total of rebased values means nothing: ask for close, adj_close or volume")
    lo, hi = market.rows(start, end)
    for t in tickers:
        market.col(t)
    source = "close" if measure == "normalised" else measure
    block = market.matrix(source, list(tickers), lo, hi)
    if measure == "normalised":
        block = _rebase(block)
    iso = market.iso[lo:hi]
    series = []
    for k, ticker in enumerate(tickers):
        v = block[:, k]
        values = _ints(v) if measure == "volume" else _floats(v, 3 if measure == "normalised" else 4)
        series.append({"ticker": ticker, "values": values, **_stats(v, iso)})
    out: dict[str, Any] = {
        "measure": measure,
        "label": MEASURE_LABELS[measure],
        "start": iso[0],
        "end": iso[-1],
        "days": hi - lo,
        "dates": iso,
        "series": series,
        "total": None,
    }
    if total:
        has = (~np.isnan(block)).any(axis=1)
        sums = np.where(has, np.nansum(block, axis=1), np.nan)
        out["total"] = {
            "values": _ints(sums) if measure == "volume" else _floats(sums, 4),
            "tickers": [int(n) for n in (~np.isnan(block)).sum(axis=1).tolist()],
            **_stats(sums, iso),
        }
    return out


def ohlc_series(
    market: Market,
    ticker: str,
    start: dt.date | None,
    end: dt.date | None,
    measure: str = "close",
) -> dict[str, Any]:
    """Open/high/low/close and volume of one ticker for a candlestick chart.

    The curated open/high/low/close are split-adjusted like ``close``. For ``adj_close``
    each day's four prices are scaled by that day's ``adj_close / close`` (as Yahoo's
    adjusted OHLC is); for ``normalised`` by ``100 / first close in the window``.

    Raises:
        BadInput: Unknown measure.
        NoData, DateOutsideData, EmptyWindow, UnknownTicker: See :meth:`Market.rows`.
    """
    if measure not in OHLC_MEASURES:
        raise BadInput(f"candles are drawn in {', '.join(OHLC_MEASURES)}, not {measure!r}")
    lo, hi = market.rows(start, end)
    market.col(ticker)

    def values(name: str) -> np.ndarray:
        column: np.ndarray = market.matrix(name, [ticker], lo, hi)[:, 0]
        return column

    close = values("close")
    factor = np.ones_like(close)
    if measure == "adj_close":
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = values("adj_close") / close
    elif measure == "normalised":
        ok = np.flatnonzero(~np.isnan(close))
        factor = factor * (100.0 / close[ok[0]] if len(ok) and close[ok[0]] > 0 else np.nan)
    keep = ~np.isnan(close)
    iso = [d for d, k in zip(market.iso[lo:hi], keep.tolist(), strict=True) if k]
    out: dict[str, Any] = {
        "ticker": ticker,
        "measure": measure,
        "label": MEASURE_LABELS[measure],
        "dates": iso,
    }
    for name in ("open", "high", "low", "close"):
        out[name] = _floats((values(name) * factor)[keep], 4)
    out["volume"] = _ints(values("volume")[keep])
    out.update(_stats(close[keep] * factor[keep], iso))
    return out


# --------------------------------------------------------------------------- operations


@dataclass(frozen=True)
class BarsParams:
    """What the line chart asks for.

    Attributes:
        tickers: Comma-separated tickers (None: all).
        window: A named window; ``start``/``end`` override its dates.
        start: First day.
        end: Last day.
        measure: close, adj_close, volume, or normalised (close rebased to 100).
        total: Also the total across the tickers per day (the tickers drawn).
        limit: At most this many series (the most traded).
    """

    tickers: str | None = None
    window: str | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    measure: LineMeasure = "close"
    total: bool = False
    limit: int = CHART_SERIES


@dataclass(frozen=True)
class OhlcParams:
    """What the candlestick chart asks for.

    Attributes:
        ticker: Exactly one ticker.
        window: A named window; ``start``/``end`` override its dates.
        start: First day.
        end: Last day.
        measure: close, adj_close or normalised.
    """

    ticker: str
    window: str | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    measure: OhlcMeasure = "close"


def most_traded(market: Market, tickers: Sequence[str], day: dt.date, n: int) -> list[str]:
    """The ``n`` tickers of ``tickers`` with the highest dollar volume (close × volume) on ``day``
    (ties alphabetical), in display order; those without a bar that day come last."""
    bars = market.bars_for(tickers, day, day, columns=("ticker", "date", "close", "volume"))
    dollars = dict.fromkeys(tickers, -1.0)
    for t, c, v in zip(*(bars.column(k).to_pylist() for k in ("ticker", "close", "volume")), strict=True):
        dollars[t] = (c or 0.0) * (v or 0.0)
    top = set(sorted(tickers, key=lambda t: (-dollars[t], t))[:n])
    return [t for t in tickers if t in top]


def bars(market: Market, p: BarsParams, windows: Mapping[str, Window] | None = None) -> dict[str, Any]:
    """The line chart's series (see :func:`line_series`) for a selection.

    A selection of more than ``p.limit`` tickers is drawn as its ``p.limit`` most traded
    (dollar volume on the window's last day); ``shown`` says which and out of how many.
    """
    span = resolve_span(p.window, p.start, p.end, windows)
    chosen = market.select(p.tickers)
    shown = list(chosen)
    if len(chosen) > p.limit:
        _, hi = market.rows(span.start, span.end)
        shown = most_traded(market, chosen, market.date(hi - 1), p.limit)
    out = line_series(market, shown, span.start, span.end, p.measure, p.total)
    out["shown"] = {"tickers": len(shown), "of": len(chosen), "by": "dollar volume on the last day"}
    return out


def ohlc(market: Market, p: OhlcParams, windows: Mapping[str, Window] | None = None) -> dict[str, Any]:
    """One ticker's candles (see :func:`ohlc_series`) for a selection."""
    span = resolve_span(p.window, p.start, p.end, windows)
    market.require()
    ticker = one_ticker(p.ticker, market.tickers, "candles")
    return ohlc_series(market, ticker, span.start, span.end, p.measure)
