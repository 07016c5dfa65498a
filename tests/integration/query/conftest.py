"""A small hand-written lake for the query engine tests.

``market.daily_bars`` gets one pyiceberg append of :data:`BARS`, ``market.corporate_actions``
exists without snapshots, and two raw datasets are registered the way the crawler does:
a CSV dataset partitioned by ``source`` and a JSONL dataset.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from tickerlake.config import Settings
from tickerlake.lake.catalog import RawColumn, RawTable, ensure_table, open_catalog, save_raw_tables
from tickerlake.lake.contract import DAILY_BARS, arrow_schema
from tickerlake.query import clear_engines

INGESTED = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)

# (ticker, date, close, volume); open/high/low are derived from close.
BARS = [
    ("AAPL", "2023-01-30", 100.0, 1000),
    ("AAPL", "2023-01-31", 110.0, 2000),
    ("AAPL", "2023-02-01", 99.0, 3000),
    ("AAPL", "2023-02-28", 121.0, 4000),
    ("MSFT", "2023-01-31", 200.0, 500),
    ("MSFT", "2023-02-01", 220.0, 600),
    ("MSFT", "2023-02-28", 210.0, 700),
]

RAW_CSV = {
    "source=sim/part-a.csv": "ticker,date,close,volume\nAAPL,2023-01-30,100.0,1000\nAAPL,2023-01-31,110.5,2000\n",
    "source=csv/part-b.csv": "ticker,date,close,volume\nMSFT,2023-01-31,200.25,\n",
}


def bars_table(rows: list[tuple[str, str, float, int]]) -> pa.Table:
    """Hand-written rows as an Arrow table in the daily_bars schema."""
    records = [
        {
            "ticker": t,
            "date": dt.date.fromisoformat(d),
            "open": c - 1,
            "high": c + 2,
            "low": c - 2,
            "close": c,
            "adj_close": c / 2,
            "volume": v,
            "source": "test",
            "ingested_at": INGESTED,
        }
        for t, d, c, v in rows
    ]
    return pa.Table.from_pylist(records, schema=arrow_schema(DAILY_BARS))


def make_lake(root: Path) -> Settings:
    """A lake with market.daily_bars (one append), an empty market.corporate_actions,
    a raw CSV dataset partitioned by source and a raw JSONL dataset."""
    settings = Settings(lake=str(root / "lake"), query_timeout_s=30.0, query_row_limit=10_000)
    catalog = open_catalog(settings)
    ensure_table(catalog, "market.daily_bars").append(bars_table(BARS))
    ensure_table(catalog, "market.corporate_actions")
    lake = root / "lake"
    for rel, text in RAW_CSV.items():
        path = lake / "raw" / "daily_bars" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    events = lake / "raw" / "events"
    events.mkdir(parents=True)
    (events / "part-0.jsonl").write_text(
        json.dumps({"ticker": "AAPL", "ts": "2023-01-30T14:30:00Z", "price": 101.5})
        + "\n"
        + json.dumps({"ticker": "MSFT", "price": 201.0})
        + "\n"
    )
    save_raw_tables(
        settings,
        {
            "daily_bars": RawTable(
                name="daily_bars",
                location=f"file://{lake}/raw/daily_bars",
                format="csv",
                columns=[
                    RawColumn("ticker", "VARCHAR", False),
                    RawColumn("date", "DATE", False),
                    RawColumn("close", "DOUBLE", False),
                    RawColumn("volume", "BIGINT", True),
                ],
                partition_keys=["source"],
                partitions=["source=csv", "source=sim"],
                files=2,
                size_bytes=sum(len(t) for t in RAW_CSV.values()),
            ),
            "events": RawTable(
                name="events",
                location=f"file://{lake}/raw/events",
                format="jsonl",
                columns=[
                    RawColumn("ticker", "VARCHAR", False),
                    RawColumn("ts", "TIMESTAMP WITH TIME ZONE", True),
                    RawColumn("price", "DOUBLE", False),
                ],
                files=1,
            ),
        },
    )
    return settings


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A lake shared by the tests of a module that do not change it."""
    settings = make_lake(tmp_path_factory.mktemp("querylake"))
    yield settings
    clear_engines()


@pytest.fixture
def fresh_lake(tmp_path: Path) -> Iterator[Settings]:
    """A lake of its own, for tests that append to it."""
    settings = make_lake(tmp_path)
    yield settings
    clear_engines()


@pytest.fixture(name="make_lake")
def make_lake_fixture() -> Iterator[Callable[[Path], Settings]]:
    """:func:`make_lake` for tests that need their own settings; engines closed afterwards."""
    yield make_lake
    clear_engines()


@pytest.fixture(name="bars_table")
def bars_table_fixture() -> Callable[[list[tuple[str, str, float, int]]], pa.Table]:
    """:func:`bars_table`, to append more hand-written rows."""
    return bars_table
