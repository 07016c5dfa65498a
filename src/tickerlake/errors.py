"""Errors a user can act on. The CLI prints them as one line and exits non-zero."""

from __future__ import annotations

__all__ = ["InputFileError", "QueryRefused", "TickerlakeError", "TransientError"]


class TickerlakeError(Exception):
    """Base class: a terminal, user-facing error whose message is one clear line."""


class InputFileError(TickerlakeError):
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


class QueryRefused(TickerlakeError):
    """A SQL statement that the read-only query engine does not run."""


class TransientError(TickerlakeError):
    """A failure worth retrying (network, broker not yet up)."""
