"""Apache Spark reads the lake's Iceberg tables through Iceberg's JDBC catalog (the SQLite file
and a PostgreSQL database; a local lake and an S3 one) and every named query gives the same
answer as DuckDB."""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections.abc import Iterator
from typing import Any

import pytest

from tickerlake.config import Settings
from tickerlake.lake.etl import run_etl
from tickerlake.lake.ingest import land
from tickerlake.query.dialects import transpile_named
from tickerlake.query.engine import clear_engines, run_named
from tickerlake.query.named import list_named
from tickerlake.sources.sim import DATASET_COLUMNS, simulate

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TICKERS = ["AAPL", "MSFT", "NVDA"]
VALUES = {"start": "2023-02-01", "end": "2023-11-30", "tickers": "AAPL,NVDA"}


def _norm(value: Any) -> Any:
    """One comparable form across engines: floats to 9 significant digits, dates as dates."""
    if isinstance(value, float | decimal.Decimal):
        f = float(value)
        return None if math.isnan(f) else float(f"{f:.9g}")
    if isinstance(value, dt.datetime):
        return value.date() if value.time() == dt.time() and value.tzinfo is None else value
    return value


def _rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [tuple(_norm(v) for v in row) for row in rows]


def _lake(
    tmp_path, catalog_uri: str = "", catalog_name: str = "tickerlake", settings: Settings | None = None
) -> Settings:
    settings = settings or Settings(
        lake=str(tmp_path / "lake"), catalog_uri=catalog_uri, catalog_name=catalog_name
    )
    land(
        settings,
        "sim",
        simulate(TICKERS, dt.date(2023, 1, 1), dt.date(2023, 12, 31)),
        columns=dict(DATASET_COLUMNS),
    )
    run_etl(settings)
    return settings


@pytest.fixture
def spark_for() -> Iterator[Any]:
    from tickerlake.services.spark import spark_session

    sessions: list[Any] = []

    def open_for(settings: Settings) -> Any:
        session = spark_session(settings)
        sessions.append(session)
        return session

    yield open_for
    for s in sessions:
        s.stop()


def _check_every_named_query(spark, settings: Settings) -> None:
    assert spark.sql("SELECT count(*) FROM market.daily_bars").collect()[0][0] == 3 * 250
    clear_engines()
    for query in list_named():
        values = {p.name: VALUES[p.name] for p in query.params if p.name in VALUES}
        duck = run_named(settings, query.name, values, limit=0)
        sql = transpile_named(query, values, "spark")
        got = [tuple(r) for r in spark.sql(sql).collect()]
        assert len(duck.rows()) > 0, query.name
        assert _rows(got) == _rows(duck.rows()), query.name


def test_spark_answers_every_named_query_like_duckdb_on_sqlite(tmp_path, spark_for) -> None:
    settings = _lake(tmp_path)
    _check_every_named_query(spark_for(settings), settings)


def test_spark_answers_every_named_query_like_duckdb_on_postgres(
    tmp_path, spark_for, postgres_catalog
) -> None:
    # Another catalog name: Spark's catalog is named like pyiceberg's, and a session may
    # still be around from the SQLite test.
    settings = _lake(tmp_path, postgres_catalog, "lake_pg")
    spark = spark_for(settings)
    _check_every_named_query(spark, settings)
    # Spark sees new commits: one more ETL run's rows appear.
    land(
        settings,
        "sim",
        simulate(["TSLA"], dt.date(2023, 1, 1), dt.date(2023, 12, 31)),
        columns=dict(DATASET_COLUMNS),
    )
    run_etl(settings)
    spark.sql("REFRESH TABLE market.daily_bars")
    assert spark.sql("SELECT count(DISTINCT ticker) FROM market.daily_bars").collect()[0][0] == 4


def test_spark_reads_an_s3_lake_through_icebergs_s3_file_io(tmp_path, spark_for, s3_endpoint) -> None:
    # The lake's files are only in the S3 server; Spark reaches them with Iceberg's S3FileIO
    # (no Hadoop S3A), through the lake's SQLite catalog.
    lake = f"s3://{s3_endpoint.bucket}/spark-{tmp_path.name}/lake"
    settings = _lake(
        tmp_path,
        settings=s3_endpoint.settings(lake, state_dir=str(tmp_path / "state"), catalog_name="lake_s3"),
    )
    spark = spark_for(settings)
    files = spark.sql("SELECT file_path FROM market.daily_bars.files").collect()
    assert files and all(row[0].startswith(lake + "/") for row in files)
    _check_every_named_query(spark, settings)
