"""The catalog as operations: every table queryable in SQL, one table's snapshots, the last crawl."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tickerlake.config import Settings
from tickerlake.errors import NotFoundError

# At run time, not only for type checking: the web describes its answers by these types.
from tickerlake.query.views import SnapshotInfo, TableInfo

__all__ = [
    "CatalogView",
    "SuspectedSplit",
    "TableDetail",
    "catalog",
    "crawl_report",
    "last_crawl",
    "suspected_splits",
    "table_detail",
    "tables",
]


@dataclass(frozen=True)
class SuspectedSplit:
    """A raw price jump matching a split ratio that no adjusted close or actions file confirms."""

    ticker: str
    date: str
    ratio: float


@dataclass(frozen=True)
class CatalogView:
    """Every table queryable in SQL, and the last crawl.

    Attributes:
        lake: The lake's URI.
        tables: Curated (Iceberg) tables first, then raw (crawled) ones.
        crawl: The last crawl's report (None before the first; ``{"error": ...}`` if unreadable).
        suspected_splits: Splits the ETL suspects in raw-only prices and did not apply; load
            them in a corporate-actions file to confirm them.
    """

    lake: str
    tables: list[TableInfo]
    crawl: dict[str, Any] | None
    suspected_splits: list[SuspectedSplit] = field(default_factory=list)


@dataclass(frozen=True)
class TableDetail:
    """One table with its Iceberg snapshots, newest first."""

    table: TableInfo
    snapshots: list[SnapshotInfo]


def tables(settings: Settings, row_counts: bool = True) -> list[TableInfo]:
    """Every table queryable in SQL with kind, columns, row count, snapshots and location."""
    from tickerlake.query.engine import list_tables

    return list_tables(settings, row_counts=row_counts)


def crawl_report(settings: Settings) -> dict[str, Any] | None:
    """The last crawl's report, None before the first crawl.

    An unreadable report is answered as ``{"error": why}``: the catalog page still shows
    the tables.
    """
    from tickerlake.lake.crawler import last_crawl_report

    try:
        return last_crawl_report(settings)
    except (OSError, ValueError) as e:
        return {"error": f"cannot read the last crawl report: {e}"}


def last_crawl(settings: Settings) -> dict[str, Any]:
    """The last crawl's report: new tables, new columns, type changes, partitions, problems.

    Raises:
        NotFoundError: No crawl yet.
    """
    report = crawl_report(settings)
    if report is None:
        raise NotFoundError("no crawl yet: run `tickerlake crawl` (or `tickerlake etl`)")
    return report


def catalog(settings: Settings) -> CatalogView:
    """Curated and raw tables with schema, partitions and row counts, and the last crawl report."""
    return CatalogView(
        settings.lake_uri, tables(settings), crawl_report(settings), suspected_splits(settings)
    )


def suspected_splits(settings: Settings) -> list[SuspectedSplit]:
    """The ``suspected`` split rows of ``market.corporate_actions`` (never applied to the prices)."""
    from tickerlake.lake.contract import read_actions

    rows = read_actions(settings).to_pylist()
    return [
        SuspectedSplit(r["ticker"], r["date"].isoformat(), float(r["ratio"]))
        for r in rows
        if r.get("source") == "suspected" and r.get("action") == "split" and r.get("ratio")
    ]


def table_detail(settings: Settings, name: str) -> TableDetail:
    """A table's schema, partitions and counts, with its Iceberg snapshots newest first.

    Raises:
        NotFoundError: No such table (the message lists the tables).
    """
    from tickerlake.query.engine import table_history

    found = [t for t in tables(settings) if t.name == name]
    if not found:
        known = ", ".join(t.name for t in tables(settings, row_counts=False))
        raise NotFoundError(f"no table {name!r} (tables: {known or 'none yet'})")
    return TableDetail(found[0], table_history(settings, name))
