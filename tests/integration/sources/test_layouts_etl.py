"""Every site layout, ingested and loaded by the ETL, gives the same rows in market.daily_bars."""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tickerlake.cli import app
from tickerlake.config import Settings
from tickerlake.lake.contract import read_bars
from tickerlake.lake.etl import run_etl
from tickerlake.query import clear_engines, run_query

pytestmark = pytest.mark.integration

LAYOUTS = Path(__file__).resolve().parents[2] / "fixtures" / "csv" / "layouts"

#: June 2022 bars, hand-copied: (ticker, date, open, high, low, close, volume).
EXPECTED = [
    ("AAPL", dt.date(2022, 6, 1), 149.90, 151.74, 147.68, 148.71, 74286600),
    ("AAPL", dt.date(2022, 6, 2), 147.83, 151.27, 146.86, 151.21, 72348100),
    ("AAPL", dt.date(2022, 6, 3), 146.90, 147.97, 144.46, 145.38, 88570300),
    ("AAPL", dt.date(2022, 6, 30), 137.25, 138.37, 133.77, 136.72, 98964500),
    ("MSFT", dt.date(2022, 6, 1), 275.20, 277.69, 270.04, 272.42, 25292300),
    ("MSFT", dt.date(2022, 6, 2), 270.31, 274.65, 261.60, 274.58, 40818200),
    ("MSFT", dt.date(2022, 6, 3), 270.31, 273.45, 268.41, 270.02, 28052200),
    ("MSFT", dt.date(2022, 6, 30), 257.05, 259.53, 252.90, 256.83, 31730900),
]


def ingest(lake: Path, *args: str) -> dict[str, object]:
    result = CliRunner().invoke(app, ["--lake", str(lake), "ingest", "file", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def curated(lake: Path) -> list[tuple[object, ...]]:
    settings = Settings(lake=str(lake))
    report = run_etl(settings)
    assert all(t.reconciles for t in report.tables)
    bars = read_bars(
        settings, columns=["ticker", "date", "open", "high", "low", "close", "adj_close", "volume"]
    )
    rows = bars.to_pylist()
    assert all(r["adj_close"] is None for r in rows)
    return [(r["ticker"], r["date"], r["open"], r["high"], r["low"], r["close"], r["volume"]) for r in rows]


def kaggle_zip(tmp: Path) -> Path:
    archive = tmp / "huge-stock-market-dataset.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted((LAYOUTS / "kaggle" / "Stocks").iterdir()):
            z.write(f, f"Stocks/{f.name}")
    return archive


@pytest.mark.parametrize(
    "layout",
    ["nasdaq", "stooq/us_daily.txt", "kaggle", "kaggle.zip", "european", "jsonl/producer_rows.jsonl"],
)
def test_each_layout_loads_to_identical_rows(tmp_path: Path, layout: str) -> None:
    source = kaggle_zip(tmp_path) if layout == "kaggle.zip" else LAYOUTS / layout
    lake = tmp_path / "lake"
    landed = ingest(lake, str(source))
    assert landed["errors"] == []
    assert curated(lake) == EXPECTED


def test_the_original_symbols_are_kept_in_the_raw_zone(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    ingest(lake, str(LAYOUTS / "stooq" / "us_daily.txt"))
    settings = Settings(lake=str(lake))
    assert curated(lake) == EXPECTED  # the ETL loads the bars and leaves the symbol record alone
    try:
        rows = run_query(
            settings, "SELECT source_symbol, ticker, rule FROM raw.source_symbols ORDER BY 1"
        ).rows()
    finally:
        clear_engines()
    assert rows == [("AAPL.US", "AAPL", "exchange suffix"), ("MSFT.US", "MSFT", "exchange suffix")]


def test_values_that_misfit_the_file_are_quarantined_not_misread(tmp_path: Path) -> None:
    src = tmp_path / "AAPL.csv"
    src.write_text('Date,Close\n06/30/2022,$136.72\n06/29/2022,"139,2"\n13/06/2022,$1.5\n')
    lake = tmp_path / "lake"
    ingest(lake, str(src), "--decimal", ".")
    assert [(r[0], r[1], r[5]) for r in curated(lake)] == [("AAPL", dt.date(2022, 6, 30), 136.72)]
    settings = Settings(lake=str(lake))
    try:
        rows = run_query(
            settings, "SELECT source_row, reason FROM market.quarantine ORDER BY source_row"
        ).rows()
    finally:
        clear_engines()
    assert [r[0] for r in rows] == [3, 4]
