"""The insight-ready layer: derived Iceberg tables the ETL keeps next to ``market.daily_bars``.

What SPICE is to QuickSight. ``market.daily_bars`` is clustered by ticker (one ticker's
history reads in one row group); a question about the whole market on one day would read
a piece of every row group. So the ETL also keeps, in the same run:

``market.daily_by_date``
    The bars clustered by date (one Parquet file per calendar year, sorted by date and
    ticker), with ``ret``: the day's log return on the basis no corporate action can move
    (``adj_close`` where the ticker has it on both days, else ``close`` unless a split's
    ratio explains the jump; NULL on a ticker's first day and after a gap of a market day).
    A day or a window across thousands of tickers reads a few row groups.
``market.ticker_years``
    Per ticker and year: first and last day and number of bars (the lake's index without
    a scan of the bars).
``market.daily_totals``
    Per trading day: how many tickers traded, the total close and volume, the
    equal-weight basket's log return and its 21-day volatility (annualised).

Each is rebuilt only for the years whose bars changed: the bars' data files and their
date bounds are recorded in ``market.daily_by_date``'s properties, and a run compares
them with the table's current files (an appended day touches one year; a rewritten
ticker, every year it spans). A reader trusts the layer only when it was built from the
bars' current files (see :mod:`tickerlake.lake.pushdown`), so it is never stale: a stream commit or a
concurrent ETL after it simply makes readers fall back to ``market.daily_bars``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
import uuid
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyiceberg.expressions import And, BooleanExpression, GreaterThanOrEqual, LessThanOrEqual, Or, Reference
from pyiceberg.expressions.literals import literal
from pyiceberg.schema import Schema
from pyiceberg.types import DateType, DoubleType, IntegerType, LongType, NestedField, StringType

from tickerlake.config import Settings
from tickerlake.lake.contract import ACTIONS, BARS, sql_list, sql_literal

__all__ = [
    "BY_DATE",
    "DAILY_TOTALS",
    "DERIVED_SCHEMAS",
    "DIGEST_PROP",
    "SOURCE_PROP",
    "TICKER_YEARS",
    "DerivedReport",
    "bars_sources",
    "refresh_derived",
    "source_digest",
]

BY_DATE = "market.daily_by_date"
TICKER_YEARS = "market.ticker_years"
DAILY_TOTALS = "market.daily_totals"
#: Table property: the ``market.daily_bars`` files (path → [first day, last day]) the layer was built from.
SOURCE_PROP = "tickerlake.derived.sources"
#: Table property on every derived table: a digest of those files (what readers compare).
DIGEST_PROP = "tickerlake.derived.digest"

_BY_DATE_SCHEMA = Schema(
    NestedField(1, "ticker", StringType(), required=False),
    NestedField(2, "date", DateType(), required=False),
    NestedField(3, "open", DoubleType(), required=False),
    NestedField(4, "high", DoubleType(), required=False),
    NestedField(5, "low", DoubleType(), required=False),
    NestedField(6, "close", DoubleType(), required=False),
    NestedField(7, "adj_close", DoubleType(), required=False),
    NestedField(8, "volume", LongType(), required=False),
    NestedField(9, "raw_close", DoubleType(), required=False),
    NestedField(10, "ret", DoubleType(), required=False),
)
_TICKER_YEARS_SCHEMA = Schema(
    NestedField(1, "ticker", StringType(), required=False),
    NestedField(2, "year", IntegerType(), required=False),
    NestedField(3, "first_date", DateType(), required=False),
    NestedField(4, "last_date", DateType(), required=False),
    NestedField(5, "bars", LongType(), required=False),
)
_TOTALS_SCHEMA = Schema(
    NestedField(1, "date", DateType(), required=False),
    NestedField(2, "tickers", LongType(), required=False),
    NestedField(3, "close_total", DoubleType(), required=False),
    NestedField(4, "volume_total", DoubleType(), required=False),
    NestedField(5, "basket_return", DoubleType(), required=False),
    NestedField(6, "basket_vol_21d", DoubleType(), required=False),
)
#: The derived tables' schemas by identifier.
DERIVED_SCHEMAS: dict[str, Schema] = {
    BY_DATE: _BY_DATE_SCHEMA,
    TICKER_YEARS: _TICKER_YEARS_SCHEMA,
    DAILY_TOTALS: _TOTALS_SCHEMA,
}
# A split day's close-based return is dropped when the jump is within this log distance
# of the ratio (as insights._panel does).
_SPLIT_LOG_TOLERANCE = 0.15
# Rows of a Parquet row group: about a fortnight of a 5,700-ticker market.
_ROW_GROUP = 65_536


@dataclass
class DerivedReport:
    """What one refresh of the insight-ready layer did.

    Attributes:
        years: The calendar years rebuilt (empty: the layer was up to date).
        rows: Rows written to ``market.daily_by_date``.
        tables: The tables written.
        seconds: Wall-clock duration.
    """

    years: list[int] = field(default_factory=list)
    rows: int = 0
    tables: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _day(raw: bytes | None) -> str | None:
    """An Iceberg date bound (little-endian days since 1970) as ISO text."""
    if raw is None:
        return None
    return (
        dt.date(1970, 1, 1) + dt.timedelta(days=int.from_bytes(raw[:4], "little", signed=True))
    ).isoformat()


def bars_sources(table: Any) -> dict[str, list[str | None]]:
    """The bars table's current data files → [first day, last day] (from the manifests).

    Raises:
        RuntimeError: The plan carries delete files (the ETL never writes them).
    """
    if table.current_snapshot() is None:
        return {}
    date_id = table.schema().find_field("date").field_id
    out: dict[str, list[str | None]] = {}
    for task in table.scan().plan_files():
        if task.delete_files:
            raise RuntimeError(
                f"{table.name()}: row-level delete files are not supported by the derived layer"
            )
        f = task.file
        out[f.file_path] = [
            _day((f.lower_bounds or {}).get(date_id)),
            _day((f.upper_bounds or {}).get(date_id)),
        ]
    return out


def source_digest(paths: Iterable[str]) -> str:
    """A digest of a set of ``market.daily_bars`` data files (what the derived tables record)."""
    return hashlib.sha256(json.dumps(sorted(paths), separators=(",", ":")).encode()).hexdigest()[:32]


def _years(bounds: list[str | None]) -> set[int]:
    first, last = bounds
    if first is None or last is None:
        return set()
    return set(range(int(first[:4]), int(last[:4]) + 1))


def _year_filter(years: list[int], column: str = "date") -> BooleanExpression:
    parts: list[BooleanExpression] = [
        And(
            GreaterThanOrEqual(term=Reference(column), value=literal(f"{y}-01-01")),
            LessThanOrEqual(term=Reference(column), value=literal(f"{y}-12-31")),
        )
        for y in years
    ]
    out = parts[0]
    for p in parts[1:]:
        out = Or(out, p)
    return out


def _local(settings: Settings, uri: str) -> str:
    return uri.removeprefix("file://") if settings.is_local else uri


def refresh_derived(settings: Settings, run_id: str | None = None) -> DerivedReport:
    """Bring the insight-ready tables up to date with ``market.daily_bars``, year by year.

    Args:
        settings: Runtime settings.
        run_id: The ETL run's id, for file names and snapshot summaries.

    Returns:
        Which years were rebuilt.
    """
    from pyiceberg.expressions import AlwaysTrue

    from tickerlake.lake.catalog import ensure_table, load_table_or_none, open_catalog
    from tickerlake.lake.duck import connect

    started = time.perf_counter()
    run_id = run_id or uuid.uuid4().hex[:12]
    report = DerivedReport()
    catalog = open_catalog(settings)
    bars = load_table_or_none(catalog, BARS.table)
    if bars is None:
        return report
    now = bars_sources(bars)
    digest = source_digest(now)
    tables = {name: ensure_table(catalog, name, schema) for name, schema in DERIVED_SCHEMAS.items()}
    by_date = tables[BY_DATE]
    if all(t.properties.get(DIGEST_PROP) == digest for t in tables.values()):
        report.seconds = time.perf_counter() - started
        return report
    before: dict[str, list[str | None]] = json.loads(by_date.properties.get(SOURCE_PROP) or "{}")
    built = by_date.current_snapshot() is not None and by_date.properties.get(DIGEST_PROP) is not None
    changed: set[int] = set()
    for path in (set(now) ^ set(before)) if built else set(now):
        changed |= _years(now.get(path) or before.get(path) or [None, None])
    years = sorted(changed)
    summary = {"tickerlake.run-id": run_id}
    con = connect(settings, extensions=())
    con.execute("SET enable_progress_bar = false")
    written: list[str] = []
    try:
        src = f"read_parquet({sql_list([_local(settings, p) for p in now])})" if now else None
        actions = load_table_or_none(catalog, ACTIONS.table)
        act_files = [t.file.file_path for t in actions.scan().plan_files()] if actions is not None else []
        splits = (
            f"(SELECT ticker, date, ratio FROM read_parquet({sql_list([_local(settings, p) for p in act_files])}) "
            "WHERE action = 'split' AND ratio > 0 AND ratio <> 1)"
            if act_files
            else "(SELECT NULL::VARCHAR AS ticker, NULL::DATE AS date, NULL::DOUBLE AS ratio WHERE FALSE)"
        )
        have = {f.name for f in bars.schema().fields}
        raw_close = "raw_close" if "raw_close" in have else "NULL::DOUBLE AS raw_close"
        base = by_date.location().rstrip("/") + "/data"
        if settings.is_local:
            Path(_local(settings, base)).mkdir(parents=True, exist_ok=True)
        if src and years:
            # One pass over the changed years (and the December before the first, for the
            # first day's return), written as one file per year.
            lo, hi = sql_literal(f"{years[0] - 1}-12-01"), sql_literal(f"{years[-1]}-12-31")
            keep = " OR ".join(f"year(l.date) = {y}" for y in years)
            out_dir = f"{base}/derived-{run_id}"
            sql = f"""
                WITH b AS (SELECT ticker, date, open, high, low, close, adj_close, volume, {raw_close}
                           FROM {src} WHERE date BETWEEN DATE {lo} AND DATE {hi}),
                days AS (SELECT date, row_number() OVER (ORDER BY date) AS k FROM (SELECT DISTINCT date FROM b)),
                l AS (SELECT b.*, days.k,
                        lag(days.k) OVER w AS pk, lag(close) OVER w AS pc, lag(adj_close) OVER w AS pa
                      FROM b JOIN days USING (date) WINDOW w AS (PARTITION BY ticker ORDER BY date))
                SELECT l.ticker, l.date, l.open, l.high, l.low, l.close, l.adj_close, l.volume, l.raw_close,
                  CASE WHEN l.pk IS NULL OR l.pk <> l.k - 1 THEN NULL
                       WHEN l.adj_close > 0 AND l.pa > 0 THEN ln(l.adj_close / l.pa)
                       WHEN l.close > 0 AND l.pc > 0 AND NOT EXISTS (
                         SELECT 1 FROM {splits} s WHERE s.ticker = l.ticker AND s.date = l.date
                           AND abs(ln(l.pc / l.close) - ln(s.ratio)) < {_SPLIT_LOG_TOLERANCE})
                         THEN ln(l.close / l.pc)
                  END AS ret,
                  year(l.date) AS yr
                FROM l WHERE {keep} ORDER BY l.date, l.ticker
            """
            con.execute(
                f"COPY ({sql}) TO {sql_literal(_local(settings, out_dir))} "
                f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {_ROW_GROUP}, PARTITION_BY (yr))"
            )
            found = con.execute(
                f"SELECT file FROM glob({sql_literal(_local(settings, out_dir) + '/*/*.parquet')}) ORDER BY 1"
            ).fetchall()
            local_prefix = "file://" if settings.is_local else ""
            written = [local_prefix + str(r[0]) if settings.is_local else str(r[0]) for r in found]
        props = {SOURCE_PROP: json.dumps(now, separators=(",", ":")), DIGEST_PROP: digest}
        # pyiceberg warns when a delete matches no rows (a year that is new): expected here.
        warnings.filterwarnings("ignore", "Delete operation did not match any records")
        with by_date.transaction() as tx:
            if built and years:
                tx.delete(_year_filter(years), snapshot_properties=summary)
            elif by_date.current_snapshot() is not None:
                tx.delete(AlwaysTrue(), snapshot_properties=summary)
            if written:
                tx.add_files(written, snapshot_properties=summary, check_duplicate_files=False)
            tx.set_properties(props)
        if written:
            report.rows = int(
                con.execute(
                    f"SELECT count(*) FROM read_parquet({sql_list([_local(settings, w) for w in written])})"
                ).fetchone()[0]  # type: ignore[index]
            )
        _refresh_summaries(con, settings, tables, years, built, written, summary, digest)
    finally:
        con.close()
    report.years = years
    report.tables = list(DERIVED_SCHEMAS)
    report.seconds = time.perf_counter() - started
    return report


def _refresh_summaries(
    con: Any,
    settings: Settings,
    tables: dict[str, Any],
    years: list[int],
    built: bool,
    written: list[str],
    summary: dict[str, str],
    digest: str,
) -> None:
    """Replace the changed years' rows of ``market.ticker_years``; rewrite ``market.daily_totals``."""
    from pyiceberg.expressions import AlwaysTrue, EqualTo

    from tickerlake.lake.contract import arrow_schema

    fresh = f"read_parquet({sql_list([_local(settings, w) for w in written])})" if written else None
    ty = tables[TICKER_YEARS]
    per_year = (
        con.execute(
            f"SELECT ticker, CAST(year(date) AS INTEGER) AS year, min(date) AS first_date, max(date) AS last_date, "
            f"count(*) AS bars FROM {fresh} GROUP BY 1, 2 ORDER BY 1, 2"
        ).to_arrow_table()
        if fresh
        else arrow_schema(_TICKER_YEARS_SCHEMA).empty_table()
    ).cast(arrow_schema(_TICKER_YEARS_SCHEMA))
    with ty.transaction() as tx:
        if not built and ty.current_snapshot() is not None:
            tx.delete(AlwaysTrue(), snapshot_properties=summary)
        elif built:
            for y in years:
                tx.delete(EqualTo(term=Reference("year"), value=literal(y)), snapshot_properties=summary)
        if per_year.num_rows:
            tx.append(per_year, snapshot_properties=summary)
        tx.set_properties({DIGEST_PROP: digest})
    totals = tables[DAILY_TOTALS]
    kept = totals.scan().to_arrow() if built else arrow_schema(_TOTALS_SCHEMA).empty_table()
    con.register("_kept", kept)
    new_days = (
        f"SELECT date, count(*) AS tickers, sum(close) AS close_total, sum(volume)::DOUBLE AS volume_total, "
        f"ln(avg(exp(ret))) AS basket_return FROM {fresh} GROUP BY date"
        if fresh
        else "SELECT NULL::DATE AS date, 0::BIGINT AS tickers, NULL::DOUBLE AS close_total, "
        "NULL::DOUBLE AS volume_total, NULL::DOUBLE AS basket_return WHERE FALSE"
    )
    changed = "FALSE" if not years else " OR ".join(f"year(date) = {y}" for y in years)
    rows = con.execute(
        f"""
        WITH d AS (
            SELECT date, tickers, close_total, volume_total, basket_return FROM _kept WHERE NOT ({changed})
            UNION ALL {new_days})
        SELECT date, tickers, close_total, volume_total, basket_return,
               stddev_samp(basket_return) OVER (ORDER BY date ROWS BETWEEN 20 PRECEDING AND CURRENT ROW)
                 * sqrt(252) AS basket_vol_21d
        FROM d ORDER BY date
        """
    ).to_arrow_table()
    con.unregister("_kept")
    with totals.transaction() as tx:
        tx.overwrite(rows.cast(arrow_schema(_TOTALS_SCHEMA)), snapshot_properties=summary)
        tx.set_properties({DIGEST_PROP: digest})
