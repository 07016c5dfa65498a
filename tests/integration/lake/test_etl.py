"""ETL against a real lake folder, real Iceberg catalog and DuckDB: counts, dedupe, merge, quarantine."""

import datetime as dt
import os

import pyarrow as pa
import pytest

from tickerlake.config import Settings
from tickerlake.lake.catalog import list_raw_tables, open_catalog
from tickerlake.lake.contract import RAW_ACTION_COLUMNS, RAW_BAR_COLUMNS, read_table
from tickerlake.lake.crawler import crawl, raw_changed
from tickerlake.lake.etl import run_etl
from tickerlake.lake.ingest import land
from tickerlake.lake.storage import LakeStorage

pytestmark = pytest.mark.integration


def bars(*rows: tuple) -> pa.Table:
    """Rows of (ticker, date, open, high, low, close, volume, source_row) as raw text."""
    cols = {c: [] for c in RAW_BAR_COLUMNS}
    for t, d, o, h, lo, c, v, r in rows:
        for k, val in zip(RAW_BAR_COLUMNS, (t, d, o, h, lo, c, c, v, "csv", "in.csv", r), strict=True):
            cols[k].append(None if val is None else str(val))
    return pa.table(cols)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(lake=str(tmp_path / "lake"))


def _land(settings, table, dataset="daily_bars", columns=RAW_BAR_COLUMNS):
    report = land(settings, "csv", [(dataset, table)], {dataset: columns})
    # Raw files are ordered by modification time; make each landing strictly later.
    for uri in report.files:
        path = uri.removeprefix("file://")
        st = os.stat(path)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + len(os.listdir(os.path.dirname(path))) * 10**9))
    return report


def closes(settings) -> dict:
    t = read_table(settings)
    return {(r["ticker"], r["date"].isoformat()): r["close"] for r in t.to_pylist()}


def test_first_load_dedupes_quarantines_and_reconciles(settings):
    _land(
        settings,
        bars(
            ("AAPL", "2020-01-02", 1, 2, 0.5, 1.5, 10, 2),
            ("AAPL", "2020-01-02", 1, 2, 0.5, 1.7, 10, 3),  # later row wins
            ("msft", "2020-01-02", 3, 4, 2, 3.5, 30, 4),  # normalised ticker
            ("MSFT", "not a date", 3, 4, 2, 3.5, 30, 5),
            ("MSFT", "2020-01-03", 3, 2, 4, 3.5, 30, 6),  # high < low
            ("NVDA", "2020-01-02", 3, 4, 2, -1, 30, 7),  # negative close
            ("NVDA", "01/03/2020", 3, 4, 2, 3, "1,000", 8),  # lenient date and number
        ),
    )
    report = run_etl(settings)
    assert report.crawled
    load = report.tables[0]
    assert (load.read, load.inserted, load.duplicates, load.quarantined) == (7, 3, 1, 3)
    assert load.reconciles
    assert closes(settings) == {
        ("AAPL", "2020-01-02"): 1.7,
        ("MSFT", "2020-01-02"): 3.5,
        ("NVDA", "2020-01-03"): 3.0,
    }
    nvda = read_table(settings, tickers=["NVDA"]).to_pylist()[0]
    assert nvda["volume"] == 1000 and nvda["ingested_at"].tzinfo is not None
    q = read_table(settings, "market.quarantine").to_pylist()
    assert sorted((r["source_row"], r["reason"]) for r in q) == [
        (5, "unparseable date 'not a date'; missing date"),
        (6, "high < low; open outside low..high; close outside low..high"),
        (7, "close <= 0: -1.0; adj_close <= 0: -1.0; close outside low..high"),
    ]
    assert all(r["source_file"] == "in.csv" for r in q)


def test_rerun_is_a_no_op_and_new_files_merge(settings):
    _land(
        settings,
        bars(("AAPL", "2020-01-02", 1, 2, 0.5, 1.5, 10, 2), ("MSFT", "2020-01-02", 3, 4, 2, 3.5, 30, 3)),
    )
    run_etl(settings)
    table = open_catalog(settings).load_table("market.daily_bars")
    snapshots = len(table.snapshots())

    again = run_etl(settings)
    assert not again.crawled
    assert again.tables[0].files == 0 and again.tables[0].read == 0
    assert len(open_catalog(settings).load_table("market.daily_bars").snapshots()) == snapshots

    _land(
        settings,
        bars(
            ("AAPL", "2020-01-02", 1, 2, 0.5, 1.5, 10, 2),  # identical: a duplicate, not rewritten
            ("MSFT", "2020-01-02", 3, 4, 2, 3.9, 30, 3),  # changed: last write wins
            ("MSFT", "2020-01-03", 3, 4, 2, 3.8, 30, 4),
            ("TSLA", "2020-01-03", 3, 4, 2, 3.0, 30, 5),
        ),
    )
    load = run_etl(settings).tables[0]
    assert (load.read, load.inserted, load.updated, load.duplicates, load.quarantined) == (4, 2, 1, 1, 0)
    assert closes(settings) == {
        ("AAPL", "2020-01-02"): 1.5,
        ("MSFT", "2020-01-02"): 3.9,
        ("MSFT", "2020-01-03"): 3.8,
        ("TSLA", "2020-01-03"): 3.0,
    }
    summary = open_catalog(settings).load_table("market.daily_bars").current_snapshot().summary
    assert summary.get("tickerlake.etl.files") == "1"


def test_malformed_lines_are_quarantined_not_dropped(settings):
    storage = LakeStorage(settings)
    header = ",".join(RAW_BAR_COLUMNS)
    body = f"{header}\nNFLX,2020-01-02,1,2,1,1.5,1.5,100,manual,,\nNFLX,2020-01-03,1,2\n"
    storage.write_bytes(storage.uri("raw", "daily_bars", "source=manual", "hand.csv"), body.encode())
    load = run_etl(settings).tables[0]
    assert (load.read, load.inserted, load.quarantined) == (3 - 1, 1, 1)
    q = read_table(settings, "market.quarantine").to_pylist()
    assert q[0]["source_row"] == 3 and q[0]["reason"].startswith("malformed CSV line: missing columns")
    assert q[0]["record"] == "NFLX,2020-01-03,1,2"


def test_corporate_actions_load(settings):
    cols = {c: [] for c in RAW_ACTION_COLUMNS}
    for row in (
        ("AAPL", "2020-08-31", "split", "4", "", "sim", "", ""),
        ("AAPL", "2020-08-07", "dividend", "", "0.82", "sim", "", ""),
    ):
        for k, v in zip(RAW_ACTION_COLUMNS, row, strict=True):
            cols[k].append(v)
    _land(settings, pa.table(cols), "corporate_actions", RAW_ACTION_COLUMNS)
    report = run_etl(settings)
    actions = {t.table: t for t in report.tables}["market.corporate_actions"]
    assert actions.inserted == 2
    rows = read_table(settings, "market.corporate_actions").to_pylist()
    assert [(r["date"], r["action"], r["ratio"], r["amount"]) for r in rows] == [
        (dt.date(2020, 8, 7), "dividend", None, 0.82),
        (dt.date(2020, 8, 31), "split", 4.0, None),
    ]


def test_crawler_reports_new_columns_type_changes_and_partitions(settings):
    storage = LakeStorage(settings)
    storage.write_bytes(storage.uri("raw", "quotes", "region=us", "a.csv"), b"ticker,px\nAAPL,1\nMSFT,2\n")
    first = crawl(settings)
    assert [(t.table, t.status) for t in first.tables] == [("quotes", "new")]
    assert not raw_changed(settings)
    table = list_raw_tables(settings)["quotes"]
    assert [(c.name, c.type) for c in table.columns] == [("ticker", "VARCHAR"), ("px", "BIGINT")]
    assert table.partition_keys == ["region"]

    storage.write_bytes(
        storage.uri("raw", "quotes", "region=eu", "b.csv"), b"ticker,px,venue\nSAP,1.5,XETRA\n"
    )
    storage.write_bytes(storage.uri("raw", "quotes", "region=eu", "notes.txt"), b"hello")
    assert raw_changed(settings)
    second = crawl(settings)
    change = second.tables[0]
    assert change.status == "updated"
    assert change.new_columns == ["venue"]
    assert change.type_changes == [("px", "BIGINT", "DOUBLE")]
    assert change.new_partitions == ["region=eu"]
    assert change.files_added == 1
    assert any("notes.txt" in p for p in change.problems)
    assert second.files_scanned == 2  # the unchanged file is not read again
    third = crawl(settings)
    assert third.tables[0].status == "unchanged"


def test_etl_on_a_lake_without_raw_zone_says_so_and_creates_nothing(tmp_path):
    from tickerlake.errors import TickerlakeError

    settings = Settings(lake=str(tmp_path / "none"))
    with pytest.raises(TickerlakeError, match="no raw zone"):
        run_etl(settings)
    assert not (tmp_path / "none").exists()
