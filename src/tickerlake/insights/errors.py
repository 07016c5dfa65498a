"""User-facing errors of the insights engine: each message is one clear line.

Each error is also one of the policy's kinds (:mod:`tickerlake.errors`), so the CLI's exit
code and the web's HTTP status follow from the class: a missing ticker, period or data
set is a :class:`~tickerlake.errors.NotFoundError` (exit 3, HTTP 404), any other insight
error a :class:`~tickerlake.errors.UserError` (exit 2, HTTP 400).
"""

from __future__ import annotations

from tickerlake.errors import NotFoundError, TickerlakeError, UserError

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
    """Base class of the insight engine's errors.

    Never raised itself: each subclass also derives from the policy kind it belongs to.
    """


class BadInput(InsightError, UserError):
    """An argument or input table that cannot be used (bad column, bad measure, duplicate key...)."""


class NoData(InsightError, NotFoundError):
    """The input table holds no usable bars."""


class DateOutsideData(InsightError, UserError):
    """A requested date lies before the first or after the last bar."""


class NotATradingDay(InsightError, UserError):
    """A requested date lies inside the data but has no bar (weekend or holiday)."""


class EmptyWindow(InsightError, UserError):
    """A requested window holds no trading day."""


class WindowTooShort(InsightError, UserError):
    """A window holds too few trading days for the method asked for."""


class UnknownTicker(InsightError, NotFoundError):
    """A ticker that is not in the data."""


class UnknownPeriod(InsightError, NotFoundError):
    """A named period (grain or recession window) that does not exist."""
