"""The read-only query engine on a real lake (see conftest.py: Iceberg tables written with
pyiceberg, raw CSV/JSONL files registered like the crawler does), DuckDB with its
extensions from the pinned packages. Every expected value below is computed by hand from
the rows in conftest.BARS and conftest.RAW_CSV.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from tickerlake.config import Settings
from tickerlake.errors import NotFoundError, QueryRefused
from tickerlake.lake.catalog import (
    RawColumn,
    RawTable,
    ensure_table,
    list_raw_tables,
    open_catalog,
    save_raw_tables,
)
from tickerlake.lake.contract import STREAM_TICKS
from tickerlake.lake.crawler import crawl
from tickerlake.query import (
    NamedQueryError,
    QueryError,
    QueryTimeout,
    clear_engines,
    get_engine,
    list_tables,
    run_named,
    run_query,
    table_history,
)

pytestmark = pytest.mark.integration

INGESTED = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)  # as written by conftest.make_lake

MakeLake = Callable[[Path], Settings]
BarsTable = Callable[[list[tuple[str, str, float, int]]], pa.Table]


# --------------------------------------------------------------------------- reading tables


def test_select_returns_the_written_rows(lake: Settings) -> None:
    result = run_query(lake, "SELECT * FROM market.daily_bars WHERE ticker = 'AAPL' ORDER BY date")
    assert result.columns == [
        "ticker",
        "date",
        "open",
        "high",
        "low",
        "close",
        "adj_close",
        "volume",
        "source",
        "ingested_at",
        "raw_close",  # added by a later schema version: appended, so old files still read
    ]
    assert result.types == [
        "VARCHAR",
        "DATE",
        "DOUBLE",
        "DOUBLE",
        "DOUBLE",
        "DOUBLE",
        "DOUBLE",
        "BIGINT",
        "VARCHAR",
        "TIMESTAMP WITH TIME ZONE",
        "DOUBLE",
    ]
    assert result.row_count == 4
    assert not result.truncated
    rows = result.rows()
    assert rows[0][:9] == ("AAPL", dt.date(2023, 1, 30), 99.0, 102.0, 98.0, 100.0, 50.0, 1000, "test")
    assert rows[0][9] == INGESTED
    assert [r[5] for r in rows] == [100.0, 110.0, 99.0, 121.0]
    assert result.records()[3] == {
        "ticker": "AAPL",
        "date": "2023-02-28",
        "open": 120.0,
        "high": 123.0,
        "low": 119.0,
        "close": 121.0,
        "adj_close": 60.5,
        "volume": 4000,
        "source": "test",
        "ingested_at": "2024-01-02T03:04:05+00:00",
        "raw_close": None,  # written straight to the table here, not by the ETL that fills it
    }


def test_acceptance_style_point_lookup(lake: Settings) -> None:
    result = run_query(lake, "select close from market.daily_bars where ticker='MSFT' and date='2023-02-01'")
    assert result.records() == [{"close": 220.0}]


def test_empty_iceberg_table_has_its_columns(lake: Settings) -> None:
    result = run_query(lake, "SELECT * FROM market.corporate_actions")
    assert result.row_count == 0
    assert result.columns == [
        "ticker",
        "date",
        "action",
        "ratio",
        "amount",
        "source",
        "ingested_at",
        "old_ticker",
    ]
    assert result.types[:4] == ["VARCHAR", "DATE", "VARCHAR", "DOUBLE"]


def test_raw_csv_table_with_partitions_and_crawled_types(lake: Settings) -> None:
    result = run_query(lake, "SELECT * FROM raw.daily_bars ORDER BY ticker, date")
    assert result.columns == ["ticker", "date", "close", "volume", "source"]
    assert result.types == ["VARCHAR", "DATE", "DOUBLE", "BIGINT", "VARCHAR"]
    assert result.rows() == [
        ("AAPL", dt.date(2023, 1, 30), 100.0, 1000, "sim"),
        ("AAPL", dt.date(2023, 1, 31), 110.5, 2000, "sim"),
        ("MSFT", dt.date(2023, 1, 31), 200.25, None, "csv"),
    ]
    by_source = run_query(lake, "SELECT source, count(*) FROM raw.daily_bars GROUP BY 1 ORDER BY 1")
    assert by_source.rows() == [("csv", 1), ("sim", 2)]


def test_raw_jsonl_table(lake: Settings) -> None:
    result = run_query(lake, "SELECT ticker, ts, price FROM raw.events ORDER BY ticker")
    assert result.types == ["VARCHAR", "TIMESTAMP WITH TIME ZONE", "DOUBLE"]
    assert result.rows() == [
        ("AAPL", dt.datetime(2023, 1, 30, 14, 30, tzinfo=dt.UTC), 101.5),
        ("MSFT", None, 201.0),
    ]


def test_raw_tables_registered_by_the_real_crawler(tmp_path: Path) -> None:
    """A file the crawler rejected stays out of the raw table instead of breaking it."""
    settings = Settings(lake=str(tmp_path / "lake"))
    zone = tmp_path / "lake" / "raw" / "prices"
    (zone / "source=a").mkdir(parents=True)
    (zone / "source=b").mkdir(parents=True)
    (zone / "source=a" / "p1.csv").write_text("ticker,close\nAAPL,1.5\n")
    (zone / "source=b" / "p2.csv").write_text("ticker,close\nMSFT,2.5\n")
    (zone / "source=b" / "bad.csv").write_bytes(b'ticker,close\n"unterminated,2\nx,y,z\n' + bytes(range(256)))
    report = crawl(settings)
    assert any("bad.csv" in p for t in report.tables for p in t.problems)
    try:
        result = run_query(settings, "SELECT ticker, close, source FROM raw.prices ORDER BY ticker")
        assert result.rows() == [("AAPL", 1.5, "a"), ("MSFT", 2.5, "b")]
        (info,) = list_tables(settings)
        assert (info.name, info.row_count, info.error) == ("raw.prices", 2, None)
    finally:
        clear_engines()


def test_an_unreadable_raw_table_raises_instead_of_looking_empty(tmp_path: Path) -> None:
    settings = Settings(lake=str(tmp_path / "lake"))
    zone = tmp_path / "lake" / "raw" / "junk"
    zone.mkdir(parents=True)
    (zone / "x.csv").write_bytes(b'a,b\n"unterminated,2\nx,y,z\n' + bytes(range(256)))
    save_raw_tables(
        settings,
        {
            "junk": RawTable(
                "junk", f"file://{zone}", "csv", [RawColumn("a", "VARCHAR"), RawColumn("b", "VARCHAR")]
            )
        },
    )
    try:
        with pytest.raises(QueryError, match=r"raw\.junk cannot be read: .*sniffing file"):
            run_query(settings, "SELECT * FROM raw.junk")
        (info,) = list_tables(settings)
        assert info.error is not None and "sniffing file" in info.error
        assert [c.name for c in info.columns] == ["a", "b"]
    finally:
        clear_engines()


def test_curated_and_raw_join(lake: Settings) -> None:
    result = run_query(
        lake,
        "SELECT r.ticker, r.date, r.close AS raw_close, b.close AS curated_close "
        "FROM raw.daily_bars r JOIN market.daily_bars b USING (ticker, date) ORDER BY 1, 2",
    )
    assert result.rows() == [
        ("AAPL", dt.date(2023, 1, 30), 100.0, 100.0),
        ("AAPL", dt.date(2023, 1, 31), 110.5, 110.0),
        ("MSFT", dt.date(2023, 1, 31), 200.25, 200.0),
    ]


def test_show_describe_summarize_explain(lake: Settings) -> None:
    described = run_query(lake, "DESCRIBE market.daily_bars")
    assert [r[0] for r in described.rows()][:3] == ["ticker", "date", "open"]
    tables = run_query(
        lake, "SELECT table_schema || '.' || table_name FROM information_schema.tables ORDER BY 1"
    )
    assert [r[0] for r in tables.rows()] == [
        "market.corporate_actions",
        "market.daily_bars",
        "raw.daily_bars",
        "raw.events",
    ]
    summary = run_query(lake, "SUMMARIZE SELECT close FROM market.daily_bars")
    assert summary.records()[0]["count"] == 7
    plan = run_query(lake, "EXPLAIN SELECT count(*) FROM market.daily_bars")
    assert plan.row_count >= 1


def test_records_are_json_ready(lake: Settings) -> None:
    result = run_query(
        lake,
        "SELECT sum(volume) AS v, 1.50::DECIMAL(5, 2) AS d, 'nan'::DOUBLE AS n, 1 AS a, 2 AS a, "
        "INTERVAL 90 SECOND AS i, [1, 2] AS l, {'k': DATE '2023-01-02'} AS s FROM market.daily_bars",
    )
    assert result.records() == [
        {
            "v": 11800,
            "d": 1.5,
            "n": None,
            "a": 1,
            "a_2": 2,
            "i": "P0M0DT90S",
            "l": [1, 2],
            "s": {"k": "2023-01-02"},
        }
    ]
    assert json.loads(json.dumps(result.records())) == result.records()


def test_prepared_parameters(lake: Settings) -> None:
    result = run_query(
        lake,
        "SELECT count(*) AS n FROM market.daily_bars WHERE ticker = $t AND date >= $d",
        {"t": "AAPL", "d": dt.date(2023, 2, 1)},
    )
    assert result.rows() == [(2,)]
    # A value is a value: quotes in it do not become SQL.
    injected = run_query(lake, "SELECT count(*) FROM market.daily_bars WHERE ticker = ?", ["AAPL' OR '1'='1"])
    assert injected.rows() == [(0,)]


def test_bad_sql_gives_one_line_errors(lake: Settings) -> None:
    with pytest.raises(QueryError) as info:
        run_query(lake, "SELECT * FROM market.nope")
    message = str(info.value)
    assert "\n" not in message
    assert "Table with name nope does not exist" in message
    assert "market.daily_bars" in message
    with pytest.raises(QueryError, match="syntax error"):
        run_query(lake, "SELEKT 1")
    with pytest.raises(QueryError, match='Referenced column "nope" not found'):
        run_query(lake, "SELECT nope FROM market.daily_bars")


# --------------------------------------------------------------------------- read-only


FORBIDDEN = [
    "INSERT INTO market.daily_bars SELECT * FROM market.daily_bars",
    "UPDATE market.daily_bars SET close = 0",
    "DELETE FROM market.daily_bars",
    "DROP VIEW market.daily_bars",
    "CREATE TABLE main.t AS SELECT 1",
    "CREATE OR REPLACE VIEW market.daily_bars AS SELECT 1",
    "ALTER VIEW market.daily_bars RENAME TO x",
    "COPY (SELECT * FROM market.daily_bars) TO '{lake}/raw/stolen.csv'",
    "EXPORT DATABASE '{lake}/raw/export'",
    "ATTACH '{lake}/raw/new.duckdb' AS n",
    "DETACH memory",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SET allowed_directories = ['/']",
    "RESET lock_configuration",
    "PRAGMA enable_profiling",
    "CALL checkpoint()",
    "SELECT * FROM checkpoint()",
    "SELECT * FROM query('SELECT 1')",
    "SELECT 1; DROP VIEW market.daily_bars",
]


@pytest.mark.parametrize("template", FORBIDDEN)
def test_forbidden_statements_are_refused(lake: Settings, template: str) -> None:
    lake_path = Path(lake.lake_uri.removeprefix("file://"))
    before = sorted(p.relative_to(lake_path) for p in lake_path.rglob("*") if "_state" not in p.parts)
    with pytest.raises(QueryRefused) as info:
        run_query(lake, template.format(lake=lake_path))
    assert str(info.value).startswith("refused: ")
    assert "\n" not in str(info.value)
    after = sorted(p.relative_to(lake_path) for p in lake_path.rglob("*") if "_state" not in p.parts)
    assert after == before
    assert run_query(lake, "SELECT count(*) FROM market.daily_bars").rows() == [(7,)]


@pytest.fixture(scope="module")
def outside_file(tmp_path_factory: pytest.TempPathFactory, lake: Settings) -> Path:
    """A readable CSV outside the lake (refusals must not be mere 'file not found'), and one
    in a sibling folder whose name starts with the lake's name."""
    path = tmp_path_factory.mktemp("outside") / "secret.csv"
    path.write_text("a,b\n1,2\n")
    sibling = Path(lake.lake_uri.removeprefix("file://") + "_evil")
    sibling.mkdir(exist_ok=True)
    (sibling / "secret.csv").write_text("a,b\n1,2\n")
    return path


OUTSIDE = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM read_blob('/etc/hostname')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM read_csv('{outside}')",
    "SELECT * FROM read_csv_auto('file://{outside}')",
    "SELECT * FROM '{outside}'",
    "SELECT * FROM sniff_csv('{outside}')",
    "SELECT * FROM read_json('{outside}')",
    "SELECT * FROM read_parquet('{outside}')",
    "SELECT * FROM parquet_metadata('{outside}')",
    "SELECT * FROM read_csv('{lake}/raw/../../../{outside_rel}')",
    "SELECT * FROM read_csv('{lake}_evil/secret.csv')",
    "SELECT * FROM glob('{lake}_evil/*')",
    "SELECT * FROM glob('{lake}/../*')",
    "SELECT * FROM read_text('https://example.com/x')",
    "SELECT * FROM iceberg_scan('{outside}')",
]


@pytest.mark.parametrize("template", OUTSIDE)
def test_reading_outside_the_lake_is_refused(lake: Settings, outside_file: Path, template: str) -> None:
    lake_path = lake.lake_uri.removeprefix("file://")
    # <tmp>/pytest-N/querylakeX/lake/raw/../../.. is <tmp>/pytest-N, the parent of outsideX.
    outside_rel = outside_file.relative_to(Path(lake_path).parents[1])
    sql = template.format(outside=outside_file, lake=lake_path, outside_rel=outside_rel)
    with pytest.raises(QueryRefused) as info:
        run_query(lake, sql)
    message = str(info.value)
    assert message.startswith("refused: cannot read ")
    assert "queries may only read files inside the lake" in message
    assert "\n" not in message


def test_reading_inside_the_lake_is_allowed(lake: Settings) -> None:
    lake_path = lake.lake_uri.removeprefix("file://")
    files = run_query(lake, f"SELECT count(*) FROM glob('{lake_path}/raw/daily_bars/**/*.csv')")
    assert files.rows() == [(2,)]
    direct = run_query(
        lake, f"SELECT count(*) FROM read_csv('{lake_path}/raw/daily_bars/source=sim/part-a.csv')"
    )
    assert direct.rows() == [(2,)]
    # The catalog is part of the lake, like Glue's catalog is visible to Athena users.
    registry = run_query(lake, f"SELECT count(*) FROM read_text('{lake_path}/catalog/raw_tables.json')")
    assert registry.rows() == [(1,)]


def test_getenv_and_python_objects_are_not_reachable(lake: Settings) -> None:
    with pytest.raises(QueryRefused):
        run_query(lake, "SELECT getenv('HOME')")
    local_secret = pa.table({"x": [42]})  # noqa: F841 - DuckDB could scan Python locals by name
    with pytest.raises(QueryError, match="local_secret does not exist"):
        run_query(lake, "SELECT * FROM local_secret")


def test_the_connection_itself_is_locked(lake: Settings) -> None:
    """The second wall, without the guard: the DuckDB connection refuses on its own."""
    engine = get_engine(lake)
    con = engine._con
    assert con is not None
    cursor = con.cursor()
    with pytest.raises(duckdb.Error, match="configuration has been locked"):
        cursor.execute("SET enable_external_access = true")
    with pytest.raises(duckdb.Error, match="configuration has been locked"):
        cursor.execute("SET allowed_directories = ['/']")
    with pytest.raises(duckdb.PermissionException):
        cursor.execute("SELECT * FROM read_text('/etc/hostname')").fetchall()
    with pytest.raises(duckdb.PermissionException):
        cursor.execute("INSTALL httpfs")
    with pytest.raises(duckdb.PermissionException):
        cursor.execute("LOAD httpfs")
    with pytest.raises(duckdb.Error):
        cursor.execute("ATTACH '/tmp/x.duckdb'")
    cursor.close()


# --------------------------------------------------------------------------- limits


def test_row_limit_truncates(lake: Settings) -> None:
    result = run_query(lake, "SELECT range AS i FROM range(100)", limit=10)
    assert result.row_count == 10
    assert result.truncated
    assert [r[0] for r in result.rows()] == list(range(10))
    exact = run_query(lake, "SELECT range AS i FROM range(100)", limit=100)
    assert exact.row_count == 100
    assert not exact.truncated
    unlimited = run_query(lake, "SELECT range FROM range(20000)", limit=0)
    assert unlimited.row_count == 20000
    assert not unlimited.truncated


def test_default_row_limit_comes_from_settings(tmp_path: Path, make_lake: MakeLake) -> None:
    settings = make_lake(tmp_path)
    limited = Settings(lake=settings.lake, query_row_limit=3)
    try:
        result = run_query(limited, "SELECT * FROM market.daily_bars ORDER BY ticker, date")
        assert result.row_count == 3
        assert result.truncated
    finally:
        clear_engines()


def test_a_huge_result_stops_early(lake: Settings) -> None:
    started = time.perf_counter()
    result = run_query(lake, "SELECT range FROM range(10000000000)", limit=5)
    assert result.row_count == 5
    assert result.truncated
    assert time.perf_counter() - started < 10


def test_timeout_interrupts_a_long_query(lake: Settings) -> None:
    started = time.perf_counter()
    with pytest.raises(QueryTimeout, match=r"query stopped at the 0\.5 s time limit"):
        run_query(
            lake,
            "SELECT count(*) FROM range(1000000) a, range(1000000) b WHERE a.range + b.range = -1",
            timeout_s=0.5,
        )
    assert time.perf_counter() - started < 10
    # The engine is still usable afterwards.
    assert run_query(lake, "SELECT count(*) FROM market.daily_bars").rows() == [(7,)]


def test_concurrent_queries_share_one_engine(lake: Settings) -> None:
    results: list[object] = []

    def worker(ticker: str) -> None:
        for _ in range(5):
            results.append(
                run_query(lake, f"SELECT count(*) FROM market.daily_bars WHERE ticker = '{ticker}'").rows()
            )

    threads = [threading.Thread(target=worker, args=(t,)) for t in ("AAPL", "MSFT", "AAPL", "MSFT")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(map(str, results)) == sorted(["[(4,)]"] * 10 + ["[(3,)]"] * 10)


# --------------------------------------------------------------------------- named queries


def test_close_by_ticker(lake: Settings) -> None:
    result = run_named(
        lake, "close_by_ticker", {"tickers": "aapl", "start": "2023-01-31", "end": "2023-02-28"}
    )
    assert result.columns == ["ticker", "date", "close"]
    assert result.rows() == [
        ("AAPL", dt.date(2023, 1, 31), 110.0),
        ("AAPL", dt.date(2023, 2, 1), 99.0),
        ("AAPL", dt.date(2023, 2, 28), 121.0),
    ]
    both = run_named(
        lake, "close_by_ticker", {"tickers": "MSFT,AAPL", "start": "2023-02-01", "end": "2023-02-01"}
    )
    assert both.rows() == [("AAPL", dt.date(2023, 2, 1), 99.0), ("MSFT", dt.date(2023, 2, 1), 220.0)]
    injected = run_named(
        lake, "close_by_ticker", {"tickers": "AAPL') OR ('1'='1", "start": "2023-01-01", "end": "2023-12-31"}
    )
    assert injected.rows() == []


def test_daily_total_close(lake: Settings) -> None:
    result = run_named(lake, "daily_total_close", {"start": "2023-01-30", "end": "2023-02-28"})
    assert result.columns == ["date", "total_close", "tickers"]
    assert result.rows() == [
        (dt.date(2023, 1, 30), 100.0, 1),
        (dt.date(2023, 1, 31), 310.0, 2),
        (dt.date(2023, 2, 1), 319.0, 2),
        (dt.date(2023, 2, 28), 331.0, 2),
    ]
    only_msft = run_named(
        lake, "daily_total_close", {"start": "2023-02-01", "end": "2023-02-28", "tickers": "MSFT"}
    )
    assert only_msft.rows() == [(dt.date(2023, 2, 1), 220.0, 1), (dt.date(2023, 2, 28), 210.0, 1)]


def test_normalised_performance(lake: Settings) -> None:
    result = run_named(lake, "normalised_performance", {"start": "2023-01-31", "end": "2023-02-28"})
    got = [(t, d, c, round(n, 9)) for t, d, c, n in result.rows()]
    assert got == [
        ("AAPL", dt.date(2023, 1, 31), 110.0, 100.0),
        ("AAPL", dt.date(2023, 2, 1), 99.0, 90.0),
        ("AAPL", dt.date(2023, 2, 28), 121.0, 110.0),
        ("MSFT", dt.date(2023, 1, 31), 200.0, 100.0),
        ("MSFT", dt.date(2023, 2, 1), 220.0, 110.0),
        ("MSFT", dt.date(2023, 2, 28), 210.0, 105.0),
    ]


def test_monthly_returns(lake: Settings) -> None:
    result = run_named(lake, "monthly_returns", {"start": "2023-01-01", "end": "2023-02-28"})
    assert result.columns == ["ticker", "month", "last_day", "close", "return_pct"]
    rows = result.rows()
    assert [r[:4] for r in rows] == [
        ("AAPL", dt.date(2023, 1, 1), dt.date(2023, 1, 31), 110.0),
        ("AAPL", dt.date(2023, 2, 1), dt.date(2023, 2, 28), 121.0),
        ("MSFT", dt.date(2023, 1, 1), dt.date(2023, 1, 31), 200.0),
        ("MSFT", dt.date(2023, 2, 1), dt.date(2023, 2, 28), 210.0),
    ]
    assert rows[0][4] is None and rows[2][4] is None
    assert math.isclose(rows[1][4], 10.0)  # 121 / 110 - 1
    assert math.isclose(rows[3][4], 5.0)  # 210 / 200 - 1


def test_drawdown(lake: Settings) -> None:
    result = run_named(lake, "drawdown", {"start": "2023-01-01", "end": "2023-12-31"})
    got = [(t, d.isoformat(), c, p, round(x, 9)) for t, d, c, p, x in result.rows()]
    assert got == [
        ("AAPL", "2023-01-30", 100.0, 100.0, 0.0),
        ("AAPL", "2023-01-31", 110.0, 110.0, 0.0),
        ("AAPL", "2023-02-01", 99.0, 110.0, -10.0),
        ("AAPL", "2023-02-28", 121.0, 121.0, 0.0),
        ("MSFT", "2023-01-31", 200.0, 200.0, 0.0),
        ("MSFT", "2023-02-01", 220.0, 220.0, 0.0),
        ("MSFT", "2023-02-28", 210.0, 220.0, round(100 * (210 / 220 - 1), 9)),
    ]
    assert round(got[-1][4], 4) == -4.5455


def test_volume_by_ticker(lake: Settings) -> None:
    result = run_named(lake, "volume_by_ticker", {"start": "2023-01-01", "end": "2023-12-31"})
    assert result.columns == ["ticker", "total_volume", "avg_daily_volume", "trading_days"]
    assert result.types == ["VARCHAR", "BIGINT", "DOUBLE", "BIGINT"]
    assert result.rows() == [("AAPL", 10000, 2500.0, 4), ("MSFT", 1800, 600.0, 3)]


def test_named_query_errors(lake: Settings) -> None:
    with pytest.raises(NamedQueryError, match=r"close_by_ticker: missing parameter end \(--param end=…\)"):
        run_named(lake, "close_by_ticker", {"tickers": "AAPL", "start": "2023-01-01"})
    with pytest.raises(NamedQueryError, match="unknown parameter 'ticker'"):
        run_named(
            lake, "close_by_ticker", {"ticker": "AAPL", "tickers": "AAPL", "start": "2023-01-01", "end": "x"}
        )
    with pytest.raises(NamedQueryError, match="parameter end: 'x' is not a date"):
        run_named(lake, "close_by_ticker", {"tickers": "AAPL", "start": "2023-01-01", "end": "x"})
    with pytest.raises(NamedQueryError, match="unknown named query 'nope'"):
        run_named(lake, "nope", {})


def test_named_query_latency(lake: Settings) -> None:
    """Not a benchmark: a loose bound that catches an engine rebuilt on every call."""
    run_named(lake, "close_by_ticker", {"tickers": "AAPL", "start": "2023-01-01", "end": "2023-12-31"})
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        run_named(lake, "close_by_ticker", {"tickers": "AAPL", "start": "2023-01-01", "end": "2023-12-31"})
        timings.append(time.perf_counter() - started)
    assert sorted(timings)[2] < 0.5


# --------------------------------------------------------------------------- catalog


def test_list_tables(lake: Settings) -> None:
    tables = {t.name: t for t in list_tables(lake)}
    assert list(tables) == ["market.corporate_actions", "market.daily_bars", "raw.daily_bars", "raw.events"]
    bars = tables["market.daily_bars"]
    assert (bars.kind, bars.format, bars.row_count, bars.snapshot_count, bars.files) == (
        "iceberg",
        "iceberg",
        7,
        1,
        1,
    )
    assert bars.location.endswith("/warehouse/market/daily_bars")
    assert [(c.name, c.type, c.nullable) for c in bars.columns[:3]] == [
        ("ticker", "VARCHAR", False),
        ("date", "DATE", False),
        ("open", "DOUBLE", True),
    ]
    actions = tables["market.corporate_actions"]
    assert (actions.row_count, actions.snapshot_count, actions.current_snapshot_id) == (0, 0, None)
    raw = tables["raw.daily_bars"]
    assert (raw.kind, raw.format, raw.row_count, raw.partition_keys) == ("raw", "csv", 3, ["source"])
    assert [(c.name, c.type, c.partition) for c in raw.columns] == [
        ("ticker", "VARCHAR", False),
        ("date", "DATE", False),
        ("close", "DOUBLE", False),
        ("volume", "BIGINT", False),
        ("source", "VARCHAR", True),
    ]
    assert tables["raw.events"].row_count == 2
    assert all(t.error is None for t in tables.values())


def test_history(lake: Settings) -> None:
    (snap,) = table_history(lake, "market.daily_bars")
    assert snap.current
    assert snap.operation == "append"
    assert snap.summary["added-records"] == "7"
    assert table_history(lake, "raw.daily_bars") == []
    with pytest.raises(NotFoundError, match=r"no table 'market\.nope'"):
        table_history(lake, "market.nope")


def test_views_follow_new_commits_and_tables(fresh_lake: Settings, bars_table: BarsTable) -> None:
    assert run_query(fresh_lake, "SELECT count(*) FROM market.daily_bars").rows() == [(7,)]
    catalog = open_catalog(fresh_lake)
    catalog.load_table("market.daily_bars").append(bars_table([("NVDA", "2023-02-01", 50.0, 10)]))
    # Same shared engine, no restart: the new snapshot is visible at once.
    assert run_query(fresh_lake, "SELECT count(*) FROM market.daily_bars").rows() == [(8,)]
    assert run_query(fresh_lake, "SELECT close FROM market.daily_bars WHERE ticker = 'NVDA'").rows() == [
        (50.0,)
    ]
    # A table created after the engine started appears too.
    ensure_table(catalog, "stream.ticks", STREAM_TICKS)
    assert run_query(fresh_lake, "SELECT count(*) FROM stream.ticks").rows() == [(0,)]
    names = [t.name for t in list_tables(fresh_lake)]
    assert "stream.ticks" in names
    assert len(table_history(fresh_lake, "market.daily_bars")) == 2
    # The crawler registering a raw table (and dropping one) shows at once as well.
    registry = list_raw_tables(fresh_lake)
    events = registry.pop("events")
    registry["events_v2"] = dataclasses.replace(events, name="events_v2")
    save_raw_tables(fresh_lake, registry)
    assert run_query(fresh_lake, "SELECT count(*) FROM raw.events_v2").rows() == [(2,)]
    with pytest.raises(QueryError, match="Table with name events does not exist"):
        run_query(fresh_lake, "SELECT * FROM raw.events")


def test_a_commit_reloads_only_the_table_it_changed(
    fresh_lake: Settings, bars_table: BarsTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tickerlake.query import engine as engine_module

    catalog = open_catalog(fresh_lake)
    ensure_table(catalog, "stream.ticks", STREAM_TICKS)
    assert run_query(fresh_lake, "SELECT count(*) FROM market.daily_bars").rows() == [(7,)]
    loaded: list[str] = []
    real = engine_module.load_table

    def counting(catalog: object, identifier: tuple[str, ...]) -> object:
        loaded.append(".".join(identifier))
        return real(catalog, identifier)  # type: ignore[arg-type]

    monkeypatch.setattr(engine_module, "load_table", counting)
    catalog.load_table("market.daily_bars").append(bars_table([("NVDA", "2023-02-01", 50.0, 10)]))
    assert run_query(fresh_lake, "SELECT count(*) FROM market.daily_bars").rows() == [(8,)]
    assert loaded == ["market.daily_bars"]
    assert run_query(fresh_lake, "SELECT count(*) FROM stream.ticks").rows() == [(0,)]
    assert loaded == ["market.daily_bars"]  # nothing changed: nothing read again


def test_a_column_added_to_a_table_shows_in_its_view(fresh_lake: Settings, bars_table: BarsTable) -> None:
    from pyiceberg.types import StringType

    assert run_query(fresh_lake, "SELECT count(*) FROM market.daily_bars").rows() == [(7,)]
    table = open_catalog(fresh_lake).load_table("market.daily_bars")
    with table.update_schema() as update:
        update.add_column("venue", StringType())
    rows = bars_table([("NVDA", "2023-02-01", 50.0, 10)]).append_column("venue", pa.array(["XNAS"]))
    table.append(rows)
    got = run_query(fresh_lake, "SELECT venue, count(*) FROM market.daily_bars GROUP BY 1 ORDER BY 1")
    assert got.rows() == [("XNAS", 1), (None, 7)]
    assert "venue" in [
        c.name for c in next(t for t in list_tables(fresh_lake) if t.name == "market.daily_bars").columns
    ]


def test_a_raw_table_outside_the_lake_folder_leaves_the_others_readable(
    fresh_lake: Settings, tmp_path: Path
) -> None:
    # Its folder must be allowed, which takes a new DuckDB connection: the Iceberg views read
    # their metadata files from a variable that the new connection has to be given too.
    assert run_query(fresh_lake, "SELECT count(*) FROM market.daily_bars").rows() == [(7,)]
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "part-0.csv").write_text("ticker,close\nNVDA,50.0\n")
    registry = list_raw_tables(fresh_lake)
    registry["outside"] = RawTable(
        name="outside",
        location=f"file://{outside}",
        format="csv",
        columns=[RawColumn("ticker", "VARCHAR", False), RawColumn("close", "DOUBLE", False)],
        files=1,
    )
    save_raw_tables(fresh_lake, registry)
    assert run_query(fresh_lake, "SELECT ticker FROM raw.outside").rows() == [("NVDA",)]
    assert run_query(fresh_lake, "SELECT count(*) FROM market.daily_bars").rows() == [(7,)]


def test_missing_lake_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no lake at file://"):
        run_query(Settings(lake=str(tmp_path / "nowhere")), "SELECT 1")
    assert not (tmp_path / "nowhere").exists()


def test_nothing_is_installed_or_downloaded(lake: Settings) -> None:
    """Extensions load straight from the package folders; the install folder is outside the
    allowed folders, so even an INSTALL sent past the guard fails before any download."""
    engine = get_engine(lake)
    assert engine._con is not None
    cursor = engine._con.cursor()
    setting = cursor.execute("SELECT current_setting('extension_directory')").fetchone()
    assert setting is not None
    extension_dir = Path(setting[0])
    assert not extension_dir.is_relative_to(Path(lake.lake_uri.removeprefix("file://")))
    assert not extension_dir.is_relative_to(Path.home() / ".duckdb")
    assert cursor.execute("SELECT current_setting('autoinstall_known_extensions')").fetchone() == (False,)
    with pytest.raises(duckdb.PermissionException, match="disabled by configuration"):
        cursor.execute("FORCE INSTALL httpfs FROM 'http://127.0.0.1:9'")
    assert not extension_dir.exists()
    cursor.close()
