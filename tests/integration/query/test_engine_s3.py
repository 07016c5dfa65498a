"""The query engine on a lake in an S3-compatible store (the dev S3Proxy server): Iceberg
metadata and data files and raw CSV files are read through DuckDB's httpfs extension from
its pinned package, and the lock-down holds for other buckets and prefixes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from tickerlake.config import Settings
from tickerlake.errors import QueryRefused
from tickerlake.lake.catalog import RawColumn, RawTable, ensure_table, open_catalog, save_raw_tables
from tickerlake.lake.contract import DAILY_BARS, arrow_schema
from tickerlake.lake.storage import LakeStorage
from tickerlake.query import clear_engines, list_tables, run_named, run_query
from tickerlake.services import S3Endpoint

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def s3_lake(s3_endpoint: S3Endpoint, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    state: Path = tmp_path_factory.mktemp("s3state")
    settings = s3_endpoint.settings(lake=f"s3://{s3_endpoint.bucket}/querylake", state_dir=str(state))
    rows = [
        ("AAPL", dt.date(2023, 1, 30), 100.0),
        ("AAPL", dt.date(2023, 1, 31), 110.0),
        ("MSFT", dt.date(2023, 1, 31), 200.0),
    ]
    table = pa.Table.from_pylist(
        [
            {"ticker": t, "date": d, "open": c, "high": c, "low": c, "close": c, "adj_close": c, "volume": 1}
            | {"source": "test", "ingested_at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)}
            for t, d, c in rows
        ],
        schema=arrow_schema(DAILY_BARS),
    )
    ensure_table(open_catalog(settings), "market.daily_bars").append(table)
    storage = LakeStorage(settings)
    storage.write_bytes(storage.uri("raw", "prices", "source=s3", "part-0.csv"), b"ticker,close\nNVDA,50.5\n")
    # A readable object in the same bucket but outside the lake.
    storage.write_bytes(f"s3://{s3_endpoint.bucket}/elsewhere/secret.csv", b"a\n1\n")
    save_raw_tables(
        settings,
        {
            "prices": RawTable(
                name="prices",
                location=storage.uri("raw", "prices"),
                format="csv",
                columns=[RawColumn("ticker", "VARCHAR"), RawColumn("close", "DOUBLE")],
                partition_keys=["source"],
            )
        },
    )
    yield settings
    clear_engines()


def test_curated_and_raw_tables_on_s3(s3_lake: Settings) -> None:
    bars = run_query(s3_lake, "SELECT ticker, date, close FROM market.daily_bars ORDER BY ticker, date")
    assert bars.rows() == [
        ("AAPL", dt.date(2023, 1, 30), 100.0),
        ("AAPL", dt.date(2023, 1, 31), 110.0),
        ("MSFT", dt.date(2023, 1, 31), 200.0),
    ]
    assert run_query(s3_lake, "SELECT * FROM raw.prices").rows() == [("NVDA", 50.5, "s3")]
    total = run_named(s3_lake, "daily_total_close", {"start": "2023-01-31", "end": "2023-01-31"})
    assert total.rows() == [(dt.date(2023, 1, 31), 310.0, 2)]
    counts = {t.name: t.row_count for t in list_tables(s3_lake)}
    assert counts == {"market.daily_bars": 3, "raw.prices": 1}


@pytest.mark.parametrize(
    "template",
    [
        "SELECT * FROM read_csv('s3://{bucket}/elsewhere/secret.csv')",
        "SELECT * FROM read_csv('s3://other-bucket/x.csv')",
        "SELECT * FROM glob('s3://{bucket}/*')",
        "SELECT * FROM read_text('/etc/hostname')",
    ],
)
def test_outside_the_lake_is_refused_on_s3(s3_lake: Settings, template: str) -> None:
    bucket = s3_lake.lake.removeprefix("s3://").split("/")[0]
    with pytest.raises(QueryRefused, match="refused: cannot read"):
        run_query(s3_lake, template.format(bucket=bucket))
