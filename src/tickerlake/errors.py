"""The error policy: every failure tickerlake raises on purpose is one of five kinds.

========================  ==================================================  ====  ====
class                     meaning                                             exit  HTTP
========================  ==================================================  ====  ====
:class:`UserError`        bad input, arguments or settings: fix the request   2     400
:class:`NotFoundError`    a named thing (table, ticker, query...) is missing  3     404
:class:`RefusedError`     understood, but not allowed (read-only SQL guard)   4     403
:class:`TransientError`   a service is briefly unreachable: try again later   75    503
:class:`InternalError`    a bug or a broken invariant: report it              1     500
========================  ==================================================  ====  ====

All are :class:`TickerlakeError`, whose message is one clear line. The CLI
(:mod:`tickerlake.cli._common`) and the web app (:mod:`tickerlake.web.errors`) each map
these classes to exit codes and HTTP statuses in one place; nothing matches message text.
A bare ``TickerlakeError`` (older code that did not say which kind) is treated as a
:class:`UserError`. Anything that is not a ``TickerlakeError`` is unexpected and treated
as internal.

Only :class:`TransientError` is worth retrying; :func:`tickerlake.retry.retry` is the one
helper that does so, with a bounded, jittered backoff, and raises a ``TransientError``
marked :attr:`~TransientError.exhausted` when it gives up, so that no outer retry loop
multiplies the wait.
"""

from __future__ import annotations

import errno

__all__ = [
    "OUTCOMES",
    "InputFileError",
    "InternalError",
    "NotFoundError",
    "QueryError",
    "QueryRefused",
    "RefusedError",
    "TickerlakeError",
    "TransientError",
    "UserError",
    "outcome_of",
]


class TickerlakeError(Exception):
    """Base class of tickerlake's own errors; the message is one line a user can act on.

    Raise one of the subclasses, which say what kind of failure it is (and so the exit
    code and HTTP status); a bare ``TickerlakeError`` counts as a :class:`UserError`.
    """


class UserError(TickerlakeError):
    """Bad input, arguments or settings: the same request will fail again until it is fixed."""


class NotFoundError(TickerlakeError):
    """A named thing (table, ticker, period, named query, lake...) does not exist."""


class RefusedError(TickerlakeError):
    """A well-formed request that is deliberately not carried out (not allowed)."""


class TransientError(TickerlakeError):
    """A failure that a later attempt can cure: a service is down, restarting or throttling.

    Args:
        message: One line saying what failed.
        retry_after_s: A hint of how long to wait before trying again, if known.
        exhausted: Set by :func:`tickerlake.retry.retry` when it already retried and gave
            up; such an error is not retried again by an outer loop.
    """

    def __init__(self, message: str, *, retry_after_s: float | None = None, exhausted: bool = False) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.exhausted = exhausted


class InternalError(TickerlakeError):
    """A bug or broken invariant; users see a generic message, the details go to the log."""


class InputFileError(UserError):
    """An input file that cannot be used at all (missing columns, empty, not a CSV...).

    Args:
        path: The file.
        problem: What is wrong.
        row: 1-based line number in the file, when one line is to blame.
    """

    def __init__(self, path: str, problem: str, row: int | None = None) -> None:
        self.path = path
        self.problem = problem
        self.row = row
        where = f"{path}:{row}" if row is not None else path
        super().__init__(f"{where}: {problem}")


class QueryError(UserError):
    """A SQL statement that cannot run: it does not parse, names no such column, times out..."""


class QueryRefused(RefusedError):
    """A SQL statement that the read-only query engine does not run."""


#: The one mapping from an error's class to what the shells do with it: the CLI's exit
#: code and the web API's HTTP status. Most specific first; the first matching class
#: decides, never the message. 75 is BSD sysexits' ``EX_TEMPFAIL`` (schedulers retry it).
OUTCOMES: tuple[tuple[type[Exception], int, int], ...] = (
    (InternalError, 1, 500),
    (TransientError, 75, 503),
    (NotFoundError, 3, 404),
    (RefusedError, 4, 403),
    (UserError, 2, 400),
    (TickerlakeError, 2, 400),
)


# The machine, not the code: a read-only or full lake, a missing permission. The user (or
# the operator) fixes it, so it is no internal error: exit 2, and 503 from a server.
_ENVIRONMENT_ERRNOS = frozenset({errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM})


def outcome_of(exc: BaseException) -> tuple[int, int]:
    """``(exit code, HTTP status)`` of an error (anything unknown is internal: 1, 500)."""
    for cls, code, status in OUTCOMES:
        if isinstance(exc, cls):
            return code, status
    if isinstance(exc, OSError) and exc.errno in _ENVIRONMENT_ERRNOS:
        return 2, 503
    return 1, 500
