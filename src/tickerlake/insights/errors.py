"""User-facing errors of the insights engine: each message is one clear line."""

from __future__ import annotations

from tickerlake.errors import TickerlakeError

__all__ = [
    "BadInput",
    "DateOutsideData",
    "EmptyWindow",
    "InsightError",
    "NoData",
    "NotATradingDay",
    "UnknownPeriod",
    "UnknownTicker",
    "WindowTooShort",
]


class InsightError(TickerlakeError):
    """Base class of the insight engine's errors."""


class BadInput(InsightError):
    """An argument or input table that cannot be used (bad column, bad measure, duplicate key...)."""


class NoData(InsightError):
    """The input table holds no usable bars."""


class DateOutsideData(InsightError):
    """A requested date lies before the first or after the last bar."""


class NotATradingDay(InsightError):
    """A requested date lies inside the data but has no bar (weekend or holiday)."""


class EmptyWindow(InsightError):
    """A requested window holds no trading day."""


class WindowTooShort(InsightError):
    """A window holds too few trading days for the method asked for."""


class UnknownTicker(InsightError):
    """A ticker that is not in the data."""


class UnknownPeriod(InsightError):
    """A named period (grain or recession window) that does not exist."""
