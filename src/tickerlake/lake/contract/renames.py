"""Ticker renames: the same company and share class trading under a new symbol. No I/O.

Bars of the old symbol dated before the effective date land under the new symbol, so an
old file with ``FB`` becomes META history; the ETL records each rename it finds in the
lake as a ``rename`` row of ``market.corporate_actions`` (``ticker`` = new symbol,
``date`` = effective date, ``old_ticker``, ``source = 'tickerlake'``).

Only plain symbol changes belong here. A new share class (GOOG/GOOGL, 2014), a merger or a
spin-off is not a rename: its prices are another security's. Keep the list small and each
entry checked against the company's own announcement.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from tickerlake.lake.contract.sql import sql_literal

__all__ = ["RENAMES", "Rename", "rename_sql"]


@dataclass(frozen=True)
class Rename:
    """One symbol change.

    Attributes:
        old: The symbol before.
        new: The symbol from ``effective`` on.
        effective: First trading day under the new symbol.
        company: Who, for the reader.
    """

    old: str
    new: str
    effective: dt.date
    company: str


#: The built-in renames.
RENAMES: tuple[Rename, ...] = (
    Rename("FB", "META", dt.date(2022, 6, 9), "Meta Platforms (formerly Facebook)"),
    Rename("PCLN", "BKNG", dt.date(2018, 2, 27), "Booking Holdings (formerly The Priceline Group)"),
    Rename("ANTM", "ELV", dt.date(2022, 6, 28), "Elevance Health (formerly Anthem)"),
)


def rename_sql(ticker: str, date: str) -> str:
    """SQL giving the current symbol of the (upper-case) ticker expression on the date expression."""
    if not RENAMES:
        return ticker
    arms = " ".join(
        f"WHEN {ticker} = {sql_literal(r.old)} AND {date} < DATE {sql_literal(r.effective.isoformat())} "
        f"THEN {sql_literal(r.new)}"
        for r in RENAMES
    )
    return f"CASE {arms} ELSE {ticker} END"
