"""What a user can ask for, parsed once for the CLI and the web: tickers, days, windows,
measures and grains.

Pure and light: no I/O, and the insights package (numpy, pandas; its errors too, since a
submodule import runs the package) is imported only when a function needs it, so that the
CLI can build its options from these names at start-up without paying for it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

from tickerlake.config import DEFAULT_TICKERS, Settings
from tickerlake.lake.contract import normalize_ticker

if TYPE_CHECKING:
    from tickerlake.insights import Window

__all__ = [
    "DEFAULT_RECESSION_PERIOD",
    "GRAINS",
    "LINE_MEASURES",
    "MEASURES",
    "OHLC_MEASURES",
    "PRICE_MEASURES",
    "RANK_BY",
    "TO_DATE_GRAINS",
    "Grain",
    "LineMeasure",
    "Measure",
    "OhlcMeasure",
    "PriceMeasure",
    "RankBy",
    "Span",
    "ToDateGrain",
    "all_windows",
    "one_ticker",
    "order_tickers",
    "parse_date",
    "parse_tickers",
    "resolve_span",
    "user_windows",
]

#: A value an insight is computed on.
Measure = Literal["close", "adj_close", "volume", "open", "high", "low"]
#: A price whose returns are analysed (returns-based insights).
PriceMeasure = Literal["close", "adj_close"]
#: A calendar grain.
Grain = Literal["day", "week", "month", "quarter", "year"]
#: The grains a "to date" period can have (a day-to-date is the day itself).
ToDateGrain = Literal["week", "month", "quarter", "year"]
#: How movers are ranked.
RankBy = Literal["pct_change", "change"]
#: Measures of the line chart: normalised is close rebased to 100 at the window start.
LineMeasure = Literal["close", "adj_close", "volume", "normalised"]
#: Measures a candlestick can be drawn in (volume has no candles).
OhlcMeasure = Literal["close", "adj_close", "normalised"]

MEASURES: tuple[str, ...] = get_args(Measure)
PRICE_MEASURES: tuple[str, ...] = get_args(PriceMeasure)
GRAINS: tuple[str, ...] = get_args(Grain)
TO_DATE_GRAINS: tuple[str, ...] = get_args(ToDateGrain)
RANK_BY: tuple[str, ...] = get_args(RankBy)
LINE_MEASURES: tuple[str, ...] = get_args(LineMeasure)
OHLC_MEASURES: tuple[str, ...] = get_args(OhlcMeasure)

#: The recession window analysed when none is named: the original study's focus.
DEFAULT_RECESSION_PERIOD = "study-2008-focus"


# --------------------------------------------------------------------------- tickers


def order_tickers(tickers: Sequence[str]) -> tuple[str, ...]:
    """Tickers in the customary FANGMANT order, then any others alphabetically."""
    rank = {t: i for i, t in enumerate(DEFAULT_TICKERS)}
    return tuple(sorted(set(tickers), key=lambda t: (rank.get(t, len(rank)), t)))


def parse_tickers(text: str | None, known: Sequence[str]) -> tuple[str, ...]:
    """A comma-separated ticker list checked against the lake's tickers.

    Args:
        text: ``"AAPL,msft"``; empty or None means every known ticker.
        known: The lake's tickers in display order.

    Returns:
        The tickers, upper-cased, without repeats, in the order of ``known``.

    Raises:
        BadInput: Text that cannot be a ticker symbol.
        UnknownTicker: A ticker the lake does not hold.
    """
    from tickerlake.insights import BadInput, UnknownTicker

    if text is None or not text.strip():
        return tuple(known)
    wanted: list[str] = []
    for raw in text.split(","):
        if not raw.strip():
            continue
        t = normalize_ticker(raw)
        if t is None:
            raise BadInput(f"bad ticker {raw.strip()[:20]!r}: expected a symbol such as AAPL")
        if t not in wanted:
            wanted.append(t)
    if not wanted:
        return tuple(known)
    missing = [t for t in wanted if t not in known]
    if missing:
        have = ", ".join(known) or "none: the lake is empty"
        raise UnknownTicker(f"unknown ticker {', '.join(missing)} (the lake has {have})")
    return tuple(t for t in known if t in wanted)


def one_ticker(text: str, known: Sequence[str], what: str) -> str:
    """Exactly one ticker of the lake (a forecast, a candlestick chart).

    Args:
        text: The ticker as typed.
        known: The lake's tickers.
        what: What needs it, for the message ("a forecast").

    Raises:
        BadInput: Not exactly one ticker symbol.
        UnknownTicker: A ticker the lake does not hold.
    """
    from tickerlake.insights import BadInput

    # Parsed first, so that an unknown ticker in "AAPL,ZZZ" is reported as unknown.
    chosen = parse_tickers(text, known)
    if "," in text or not text.strip() or len(chosen) != 1:
        raise BadInput(f"{what} needs exactly one ticker, got {text.strip()[:40]!r}")
    return chosen[0]


# --------------------------------------------------------------------------- days and windows


def parse_date(text: str | dt.date | None, what: str = "date") -> dt.date | None:
    """A day from ``YYYY-MM-DD`` text (the CLI's options); None and dates pass through.

    Raises:
        BadInput: Text that is not a date.
    """
    from tickerlake.insights import BadInput

    if text is None or isinstance(text, dt.date):
        return text
    if not text.strip():
        return None
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise BadInput(f"bad {what} {text!r}: expected YYYY-MM-DD") from None


def user_windows(settings: Settings, defined: Sequence[str] = ()) -> dict[str, Window]:
    """User-defined analysis windows: the ``recession_windows`` setting, then ``defined``.

    Args:
        settings: Runtime settings (``recession_windows``, when configured).
        defined: Extra ``NAME=YYYY-MM-DD..YYYY-MM-DD[:label]`` definitions (the CLI's ``--define``).

    Raises:
        BadInput: A malformed definition.
    """
    from tickerlake.insights import parse_windows

    text = str(getattr(settings, "recession_windows", "") or "")
    return {**parse_windows(text), **parse_windows(";".join(defined))}


def all_windows(settings: Settings, defined: Sequence[str] = ()) -> dict[str, Window]:
    """Built-in and user-defined analysis windows by name (user ones win)."""
    from tickerlake.insights import BUILTIN_WINDOWS

    return {**BUILTIN_WINDOWS, **user_windows(settings, defined)}


@dataclass(frozen=True)
class Span:
    """A resolved date selection.

    Attributes:
        start: First day asked for (None = the start of the data).
        end: Last day asked for (None = the end of the data).
        window: The named window it came from, if any.
        label: How to call it in prose.
    """

    start: dt.date | None
    end: dt.date | None
    window: str | None = None
    label: str = "the whole history"


def resolve_span(
    window: str | None,
    start: dt.date | None,
    end: dt.date | None,
    windows: Mapping[str, Window] | None = None,
) -> Span:
    """Combine a named window and explicit dates (explicit dates win over the window's).

    ``all`` and ``max`` name the whole history.

    Raises:
        UnknownPeriod: Unknown window name.
        BadInput: The span starts after it ends.
    """
    from tickerlake.insights import BadInput, resolve_window
    from tickerlake.insights.narrative import fmt_date

    name = None
    label = "the whole history"
    if window and window.strip() and window.strip().lower() not in ("all", "max"):
        w = resolve_window(window, windows)
        name, label = w.name, w.label
        start = start or w.start
        end = end or w.end
    if start is not None and end is not None and start > end:
        raise BadInput(f"the window starts ({fmt_date(start)}) after it ends ({fmt_date(end)})")
    if name is None and (start is not None or end is not None):
        s = fmt_date(start) if start else "the start"
        e = fmt_date(end) if end else "the end"
        label = f"{s} to {e}"
    return Span(start, end, name, label)
