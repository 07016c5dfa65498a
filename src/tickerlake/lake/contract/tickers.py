"""The ticker rule: what a ticker symbol looks like everywhere in the lake. No I/O.

Every stage checks tickers with this one rule, so a symbol one stage accepts is never
refused by the next (``BRK/B`` landing through the stream and then being refused by the
web API was the bug this prevents). It is the union of what real sources write:

* dots and hyphens for share classes and exchanges (``BRK.B``, ``BF-B``, ``7203.T``);
* slashes for share classes as some feeds write them (``BRK/B``, ``RDS/A``);
* a leading caret for indices (``^GSPC``), ``=`` for currencies and futures
  (``EURUSD=X``, ``GC=F``), ``&`` for names such as ``M&M.NS``.

The canonical form is upper case, at most :data:`TICKER_MAX_LENGTH` characters.
"""

from __future__ import annotations

import re

__all__ = ["TICKER_MAX_LENGTH", "TICKER_PATTERN", "is_ticker", "normalize_ticker"]

#: Longest symbol accepted (Yahoo's longest real symbols are about 12 characters).
TICKER_MAX_LENGTH = 20
#: A canonical (upper-case) ticker, as a regular expression that Python, RE2 (pyarrow)
#: and DuckDB all read the same way.
TICKER_PATTERN = rf"^[A-Z0-9^][A-Z0-9.\-/^=&]{{0,{TICKER_MAX_LENGTH - 1}}}$"
_TICKER = re.compile(TICKER_PATTERN)


def is_ticker(text: str) -> bool:
    """Whether ``text`` is a ticker in canonical form (upper case, no surrounding space)."""
    return _TICKER.fullmatch(text) is not None


def normalize_ticker(text: str) -> str | None:
    """The canonical form of a ticker as users and files write it, or None when it is not one.

    ``" brk/b "`` → ``"BRK/B"``; ``"AA PL"`` → None.
    """
    canonical = text.strip().upper()
    return canonical if is_ticker(canonical) else None
