"""Slices of the curated bars read by DuckDB, with file pruning: only the rows a view needs.

The insights and the dashboard never hold ``market.daily_bars`` whole. For one lake state
(a catalog fingerprint) :class:`LakeSlices` plans the table's live data files once with
pyiceberg, then answers every request with DuckDB SQL over exactly those Parquet files:
the ETL writes one row group per ticker in date order, so a ticker filter skips every
other ticker's row groups and a date filter the rest of each one. What reaches Python is
a slice (some tickers, some days, some columns), the lake's index (tickers with their
first and last day, the trading days) and a few boundary rows.

When the insight-ready tables (:mod:`tickerlake.lake.derived`) were built from the bars'
current files, the index comes from ``market.ticker_years`` and ``market.daily_totals``
(thousands of rows, not millions) and a slice of many tickers over a bounded span from
``market.daily_by_date`` (clustered by date: a day reads a row group or two).

A table whose plan carries delete files (merge-on-read deletes, which tickerlake's own
writers never make) is read through pyiceberg's scan instead, with the same filters, so a
slice is always the table's current rows.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from tickerlake.config import Settings
from tickerlake.lake.contract import (
    ACTIONS,
    BAR_COLUMNS,
    BARS,
    TABLES,
    arrow_schema,
    read_table,
    sql_ident,
    sql_list,
    sql_literal,
)

__all__ = ["BY_DATE_ROWS", "BY_DATE_TICKERS", "MEMORY_ROWS", "LakeIndex", "LakeSlices"]

#: Slices of more tickers than this (over a bounded span) read ``market.daily_by_date``.
BY_DATE_TICKERS = 200
#: So does a slice of fewer whose span holds at most this many rows over every ticker
#: (two years of a 5,700-ticker market): reading that span whole and filtering it costs
#: less than the ticker-clustered table's per-file footers.
BY_DATE_ROWS = 3_000_000
#: A lake of at most this many bars (a few dozen tickers over decades, tens of megabytes)
#: is copied into memory once per lake state: each slice is then a scan of that copy, not
#: a read of Parquet files; bigger lakes are read from their files, slice by slice.
MEMORY_ROWS = 500_000


@dataclass(frozen=True, eq=False)
class LakeIndex:
    """What the bars cover, without the bars.

    Attributes:
        tickers: Sorted tickers.
        first: Each ticker's first day (``datetime64[D]``, aligned with ``tickers``).
        last: Each ticker's last day.
        rows: Each ticker's number of bars.
        dates: Sorted trading days, the union over tickers (``datetime64[D]``).
    """

    tickers: tuple[str, ...]
    first: np.ndarray
    last: np.ndarray
    rows: np.ndarray
    dates: np.ndarray


def _date_sql(d: dt.date) -> str:
    return f"DATE {sql_literal(d.isoformat())}"


def _materialise(con: Any, name: str, table: pa.Table) -> str:
    """``table`` as a table of ``con`` (registered Arrow is not seen by the connection's cursors)."""
    con.register("_arrow", table)
    con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _arrow")
    con.unregister("_arrow")
    return name


def _parquet(settings: Settings, paths: Sequence[str]) -> str:
    local = settings.is_local
    # By name: files written before a column was added (raw_close) lack it.
    return f"read_parquet({sql_list([p.removeprefix('file://') if local else p for p in paths])}, union_by_name = true)"


def _derived_sources(settings: Settings, catalog: Any, bar_files: list[str]) -> dict[str, str]:
    """The insight-ready tables' relations, when all three were built from exactly ``bar_files``."""
    from tickerlake.lake.catalog import load_table_or_none
    from tickerlake.lake.derived import BY_DATE, DAILY_TOTALS, DIGEST_PROP, TICKER_YEARS, source_digest

    digest = source_digest(bar_files)
    out: dict[str, str] = {}
    for key, name in (("by_date", BY_DATE), ("ticker_years", TICKER_YEARS), ("totals", DAILY_TOTALS)):
        table = load_table_or_none(catalog, name)
        if table is None or table.properties.get(DIGEST_PROP) != digest:
            return {}
        tasks = list(table.scan().plan_files())
        if not tasks or any(t.delete_files for t in tasks):
            return {}
        out[key] = _parquet(settings, [t.file.file_path for t in tasks])
    return out


def _in(values: Sequence[str]) -> str:
    return "(" + ", ".join(sql_literal(v) for v in values) + ")"


class LakeSlices:
    """SQL reads of one lake state's curated bars (thread-safe: one cursor per call).

    Open with :meth:`open` (a lake) or :meth:`of_tables` (Arrow tables, e.g. in tests).

    Args:
        con: A DuckDB connection.
        sources: Per table (``bars``, ``actions``) the SQL relation to read.
        columns: The bar table's columns.
    """

    def __init__(self, con: Any, sources: dict[str, str], columns: set[str]) -> None:
        self._con = con
        self._src = sources
        self._have = columns
        self._lock = threading.Lock()
        self._codes: pa.Array | None = None

    @property
    def derived(self) -> bool:
        """Whether the insight-ready layer (:mod:`tickerlake.lake.derived`) is current and used."""
        return "by_date" in self._src

    @classmethod
    def open(cls, settings: Settings) -> LakeSlices:
        """The current state of a lake's curated tables."""
        from tickerlake.lake.catalog import load_table_or_none, open_catalog
        from tickerlake.lake.duck import connect

        catalog = open_catalog(settings)
        con = connect(settings, extensions=())
        sources: dict[str, str] = {}
        columns: set[str] = set(BAR_COLUMNS)
        rows = 0
        for key, name in (("bars", BARS.table), ("actions", ACTIONS.table)):
            table = load_table_or_none(catalog, name)
            if table is None:
                sources[key] = _materialise(con, f"_{key}", arrow_schema(TABLES[name]).empty_table())
                continue
            tasks = list(table.scan().plan_files())
            if key == "bars":
                columns = {f.name for f in table.schema().fields}
                rows = sum(t.file.record_count for t in tasks)
            if not tasks:
                sources[key] = _materialise(con, f"_{key}", arrow_schema(TABLES[name]).empty_table())
            elif any(t.delete_files for t in tasks):
                # Delete files need merge-on-read (tickerlake's writers never make them):
                # pyiceberg's scan applies them.
                sources[key] = _materialise(con, f"_{key}", read_table(settings, name))
            else:
                sources[key] = _parquet(settings, [t.file.file_path for t in tasks])
                if key == "bars":
                    sources.update(_derived_sources(settings, catalog, [t.file.file_path for t in tasks]))
        if rows <= MEMORY_ROWS:
            for key, relation in sources.items():
                if relation.startswith("read_parquet("):
                    con.execute(f"CREATE OR REPLACE TABLE _{key} AS SELECT * FROM {relation}")
                    sources[key] = f"_{key}"
        return cls(con, sources, columns)

    @classmethod
    def of_tables(cls, bars: pa.Table, actions: pa.Table | None = None) -> LakeSlices:
        """Slices of in-memory bars (rows in the ``market.daily_bars`` schema)."""
        import duckdb

        con = duckdb.connect(config={"preserve_insertion_order": "false"})
        empty = actions is None or not actions.num_columns
        acts = arrow_schema(TABLES[ACTIONS.table]).empty_table() if empty else actions
        sources = {"bars": _materialise(con, "_bars", bars), "actions": _materialise(con, "_actions", acts)}
        return cls(con, sources, set(bars.column_names))

    def _sql(self, sql: str) -> pa.Table:
        with self._lock:
            cur = self._con.cursor()
        try:
            return cur.execute(sql).to_arrow_table()
        finally:
            cur.close()

    def columns(self, wanted: Sequence[str] = BAR_COLUMNS) -> list[str]:
        """The bar columns of ``wanted`` that the table has (a lake written before a column
        was added lacks it until the ETL's next run)."""
        return [c for c in wanted if c in self._have]

    def index(self) -> LakeIndex:
        """Tickers with their first and last day and bar count, and the trading days."""
        if self.derived:
            return self._derived_index()
        src = self._src["bars"]
        per = self._sql(
            f"SELECT upper(ticker) AS ticker, min(date) AS first, max(date) AS last, count(*) AS n "
            f"FROM {src} WHERE ticker IS NOT NULL AND date IS NOT NULL GROUP BY 1 ORDER BY 1"
        )
        days = self._sql(f"SELECT DISTINCT date FROM {src} WHERE date IS NOT NULL ORDER BY 1")

        def _days(col: pa.ChunkedArray) -> np.ndarray:
            return col.to_numpy().astype("datetime64[D]") if len(col) else np.array([], dtype="datetime64[D]")

        return LakeIndex(
            tuple(per.column("ticker").to_pylist()),
            _days(per.column("first")),
            _days(per.column("last")),
            per.column("n").to_numpy().astype(np.int64),
            _days(days.column("date")),
        )

    def _derived_index(self) -> LakeIndex:
        """:meth:`index` from ``market.ticker_years`` and ``market.daily_totals`` (a few thousand rows)."""
        per = self._sql(
            "SELECT ticker, min(first_date) AS first, max(last_date) AS last, sum(bars) AS n "
            f"FROM {self._src['ticker_years']} GROUP BY 1 ORDER BY 1"
        )
        days = self._sql(f"SELECT date FROM {self._src['totals']} ORDER BY 1")
        return LakeIndex(
            tuple(per.column("ticker").to_pylist()),
            per.column("first").to_numpy().astype("datetime64[D]"),
            per.column("last").to_numpy().astype("datetime64[D]"),
            per.column("n").to_numpy().astype(np.int64),
            days.column("date").to_numpy().astype("datetime64[D]"),
        )

    def _where(
        self, tickers: Sequence[str] | None, start: dt.date | None, end: dt.date | None, alias: str = ""
    ) -> str:
        parts = ["TRUE"]
        if tickers is not None:
            parts.append(f"{alias}ticker IN {_in(tickers)}" if tickers else "FALSE")
        if start is not None:
            parts.append(f"{alias}date >= {_date_sql(start)}")
        if end is not None:
            parts.append(f"{alias}date <= {_date_sql(end)}")
        return " AND ".join(parts)

    def bars(
        self,
        tickers: Sequence[str] | None = None,
        start: dt.date | None = None,
        end: dt.date | None = None,
        columns: Sequence[str] = BAR_COLUMNS,
        span_rows: int | None = None,
    ) -> pa.Table:
        """The bars of ``tickers`` (None: all) in ``[start, end]``, sorted by (ticker, date).

        Args:
            tickers: The tickers (None: all).
            start: First day (None: open).
            end: Last day (None: open).
            columns: Bar columns wanted.
            span_rows: How many rows the span holds over every ticker, when the caller
                knows (its trading days × the lake's tickers).
        """
        select = ", ".join(sql_ident(c) for c in self.columns(columns))
        # Many tickers over a bounded span, or a span of the date-clustered copy small
        # enough to read whole: it reads a few row groups where the ticker-clustered table
        # reads a piece of every one (and parses every file's footer of one row group
        # per ticker: most of a selection's time on a universe).
        wide = tickers is None or len(tickers) > BY_DATE_TICKERS
        small = span_rows is not None and span_rows <= BY_DATE_ROWS
        src = (
            self._src["by_date"] if self.derived and (wide or small) and (start or end) else self._src["bars"]
        )
        return self._sql(
            f"SELECT {select} FROM {src} WHERE {self._where(tickers, start, end)} ORDER BY ticker, date"
        )

    def stored_returns(
        self, start: dt.date | None, end: dt.date | None, columns: Sequence[str] = ("ticker", "date", "close")
    ) -> pa.Table | None:
        """Every ticker's bar ``columns`` and stored return (``ret``) in ``[start, end]`` (see
        :meth:`universe`); None without a current insight-ready layer."""
        return self.universe(start, end, (*columns, "ret"))

    def universe(
        self, start: dt.date | None, end: dt.date | None, columns: Sequence[str] = ("ticker", "date", "close")
    ) -> pa.Table | None:
        """Every ticker's ``columns`` of ``market.daily_by_date`` in ``[start, end]``, in no
        particular order (a pivot needs none); None without a current insight-ready layer.

        The ticker comes back dictionary-encoded (a code per row, the names once): millions
        of rows of a universe would otherwise cost a string each, to decode, to sort and to
        pivot (and DuckDB's allocator keeps what a sort of them took).
        """
        if not self.derived:
            return None
        names = self._ticker_codes()
        # ``ret`` is the layer's own column (the day's return on the basis), not a bar column.
        wanted = [c for c in columns if c == "ret" or c in self._have]
        select = ", ".join("c.code AS ticker" if c == "ticker" else f"b.{sql_ident(c)}" for c in wanted)
        where = self._where(None, start, end, "b.")
        out = self._sql(
            f"SELECT {select} FROM {self._src['by_date']} b JOIN _ticker_codes c ON b.ticker = c.ticker WHERE {where}"
        )
        if "ticker" not in out.column_names:
            return out
        at = out.column_names.index("ticker")
        codes = out.column(at)
        tickers = pa.chunked_array(
            [pa.DictionaryArray.from_arrays(chunk, names) for chunk in codes.chunks],
            pa.dictionary(pa.int32(), pa.string()),
        )
        return out.set_column(at, "ticker", tickers)

    def _ticker_codes(self) -> pa.Array:
        """The derived layer's tickers (sorted), registered once as ``_ticker_codes`` (ticker, code)."""
        with self._lock:
            if self._codes is None:
                names = (
                    self._con.execute(
                        f"SELECT DISTINCT ticker FROM {self._src['ticker_years']} WHERE ticker IS NOT NULL ORDER BY 1"
                    )
                    .to_arrow_table()
                    .column(0)
                    .combine_chunks()
                )
                codes = pa.table({"ticker": names, "code": pa.array(range(len(names)), pa.int32())})
                _materialise(self._con, "_ticker_codes", codes)
                self._codes = names
            return self._codes

    def boundary(
        self, tickers: Sequence[str], day: dt.date, measure: str, columns: Sequence[str] = BAR_COLUMNS
    ) -> pa.Table:
        """Each ticker's first bar, last bar before ``day`` and last bar with a ``measure`` before it.

        The rows a day-over-day view needs from outside its slice: a ticker's previous value
        may be weeks old (a halt, a gap), and its first bar says whether it was listed yet.
        """
        cols = self.columns(columns)
        if not tickers or measure not in cols:
            return self.bars([], columns=cols)
        d = _date_sql(day)
        select = ", ".join("b." + sql_ident(c) for c in cols)
        return self._sql(
            f"WITH b AS (SELECT * FROM {self._src['bars']} WHERE {self._where(tickers, None, None)}), "
            f"k AS (SELECT ticker, min(date) AS f, max(date) FILTER (WHERE date < {d}) AS l, "
            f"max(date) FILTER (WHERE date < {d} AND {sql_ident(measure)} IS NOT NULL) AS lv "
            "FROM b GROUP BY ticker) "
            f"SELECT {select} FROM b JOIN k ON b.ticker = k.ticker "
            "AND (b.date = k.f OR b.date = k.l OR b.date = k.lv) ORDER BY b.ticker, b.date"
        )

    def firsts(self, tickers: Sequence[str], columns: Sequence[str] = BAR_COLUMNS) -> pa.Table:
        """Each ticker's first bar."""
        select = ", ".join(sql_ident(c) for c in self.columns(columns))
        return self._sql(
            f"SELECT {select} FROM {self._src['bars']} WHERE {self._where(tickers, None, None)} "
            "QUALIFY date = min(date) OVER (PARTITION BY ticker) ORDER BY ticker, date"
        )

    def actions(self) -> pa.Table:
        """The corporate actions, sorted by (ticker, date)."""
        return self._sql(f"SELECT * FROM {self._src['actions']} ORDER BY ticker, date")

    def close(self) -> None:
        """Close the DuckDB connection."""
        self._con.close()
