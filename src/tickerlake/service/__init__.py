"""The service layer: one function per user-visible operation, under the CLI and the web.

Each operation takes typed parameters (frozen dataclasses) and returns a typed result; the
CLI renders it as text or ``--json``, the web as JSON or HTML, both through
:func:`tickerlake.jsonable.jsonable`. So the two shells cannot give different answers,
and errors are the classes of :mod:`tickerlake.errors`, mapped to exit codes and HTTP
statuses by each shell in one place.

Modules (imported directly, so that a shell pays only for what it uses):

=================  ===========================================================================
``selection``      tickers, days, windows, measures and grains as the user names them (pure)
``market``         one lake state per commit: its index and its bars by the slice (:class:`~.market.MarketStore`), the lake's meta
``charts``         the line and candlestick series of the dashboard
``insights``       every insight kind, and the recession comparison across windows
``queries``        read-only SQL, named and saved queries, the query history, cancel, CSV cells
``watch``          crawl + ETL on new raw files and scheduled ingests, and their recorded runs
``catalog``        tables, snapshots and the last crawl
=================  ===========================================================================
"""

from __future__ import annotations

__all__ = ["catalog", "charts", "insights", "market", "queries", "selection"]
