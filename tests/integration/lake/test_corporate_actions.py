"""Corporate actions inferred by the ETL from real Yahoo prices (tests/fixtures/real), through the CLI."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from tickerlake.cli import app
from tickerlake.config import Settings
from tickerlake.lake.catalog import ensure_table, open_catalog
from tickerlake.lake.contract import DAILY_BARS, arrow_schema, read_actions, read_table
from tickerlake.service.catalog import SuspectedSplit, catalog

pytestmark = pytest.mark.integration

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "real"


def run(lake: str, *args: str) -> dict:
    result = CliRunner().invoke(app, ["--lake", lake, *args, "--json"])
    assert result.exit_code == 0, result.stderr + result.stdout
    return json.loads(result.stdout)


def actions(lake: str) -> list[tuple]:
    rows = read_actions(Settings(lake=lake)).to_pylist()
    return sorted((r["ticker"], r["date"].isoformat(), r["action"], r["source"]) for r in rows)


def bar(lake: str, ticker: str, day: str) -> dict:
    rows = read_table(Settings(lake=lake), tickers=[ticker]).to_pylist()
    return next(r for r in rows if r["date"] == dt.date.fromisoformat(day))


@pytest.fixture(scope="module")
def real_lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    lake = str(tmp_path_factory.mktemp("real") / "lake")
    # A lake written before raw_close existed (one ticker's bars in a file without the
    # column): the ETL evolves the table, keeps working and fills raw_close everywhere.
    old = DAILY_BARS.select(*(f.name for f in DAILY_BARS.fields if f.name != "raw_close"))
    table = ensure_table(open_catalog(Settings(lake=lake)), "market.daily_bars", old)
    days = [dt.date(2004, 1, 5) + dt.timedelta(days=i) for i in range(5)]
    rows = {"ticker": ["OLD"] * 5, "date": days, "open": [10.0] * 5, "high": [12.0] * 5, "low": [9.0] * 5}
    rows |= {"close": [10.0, 11.0, 10.5, 11.5, 11.0], "adj_close": [10.0, 11.0, 10.5, 11.5, 11.0]}
    rows |= {
        "volume": [100] * 5,
        "source": ["old"] * 5,
        "ingested_at": [dt.datetime(2024, 1, 1, tzinfo=dt.UTC)] * 5,
    }
    table.append(pa.Table.from_pydict(rows, schema=arrow_schema(old)))
    run(lake, "ingest", "csv", str(REAL / "yahoo_2004_2008.csv"))
    return lake, run(lake, "etl")


def test_split_and_dividends_are_inferred_and_close_is_split_adjusted(real_lake) -> None:
    lake, report = real_lake
    bars = next(t for t in report["tables"] if t["table"] == "market.daily_bars")
    assert (bars["read"], bars["loaded"], bars["reconciles"]) == (4368, 4368, True)
    found = actions(lake)
    assert [a for a in found if a[2] == "split"] == [("AAPL", "2005-02-28", "split", "inferred")]
    assert {a[3] for a in found} == {"inferred"}
    rows = {
        (r["ticker"], r["date"].isoformat(), r["action"]): r
        for r in read_actions(Settings(lake=lake)).to_pylist()
    }
    assert rows[("MSFT", "2004-11-15", "dividend")]["amount"] == pytest.approx(3.03, abs=0.02)
    # AAPL paid no dividend in these years; IBM and MSFT four a year (MSFT's first is the special one).
    per = {
        t: sum(1 for a in found if a[0] == t and a[2] == "dividend") for t in ("AAPL", "GOOG", "IBM", "MSFT")
    }
    assert per == {"AAPL": 0, "GOOG": 0, "IBM": 17, "MSFT": 17}
    assert report["corporate_actions"]["splits"] == 1 and report["corporate_actions"]["dividends"] == 34
    # The Friday before the split: close divided by 2, volume doubled, raw close as traded.
    before = bar(lake, "AAPL", "2005-02-25")
    assert (before["close"], before["raw_close"], before["volume"]) == (44.495, 88.99, 2 * 16348400)
    after = bar(lake, "AAPL", "2005-02-28")
    assert (after["close"], after["raw_close"], after["volume"]) == (44.86, 44.86, 11635900)
    # The evolved table (files with and without raw_close) answers the insights, and the
    # rows written before the column have it too.
    assert run(lake, "insights", "anomalies", "--end", "2005-03-31")["days_scanned"] > 100
    assert bar(lake, "OLD", "2004-01-06")["raw_close"] == 11.0
    # Without a split, raw_close is the close.
    assert bar(lake, "MSFT", "2004-11-12")["raw_close"] == bar(lake, "MSFT", "2004-11-12")["close"] == 29.97


def test_rerunning_etl_changes_nothing(real_lake) -> None:
    lake, _ = real_lake
    catalog = open_catalog(Settings(lake=lake))
    snaps = {
        t: len(catalog.load_table(t).snapshots()) for t in ("market.daily_bars", "market.corporate_actions")
    }
    again = run(lake, "etl")
    assert again["corporate_actions"] is None
    assert {t: len(catalog.load_table(t).snapshots()) for t in snaps} == snaps


def test_a_known_split_takes_precedence_over_the_inferred_one(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    run(lake, "ingest", "csv", str(REAL / "yahoo_2004_2008.csv"))
    known = tmp_path / "splits.csv"
    known.write_text("Ticker,Date,Stock Splits\nAAPL,2005-02-28,2:1\n")
    run(lake, "ingest", "csv", str(known))
    run(lake, "etl")
    splits = [a for a in actions(lake) if a[2] == "split"]
    assert (
        len(splits) == 1 and splits[0][:3] == ("AAPL", "2005-02-28", "split") and splits[0][3] != "inferred"
    )
    assert bar(lake, "AAPL", "2005-02-25")["close"] == 44.495


def test_raw_only_prices_get_a_suspected_split_that_is_not_applied(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    src = tmp_path / "aapl_raw.csv"
    with open(REAL / "yahoo_2004_2008.csv", encoding="utf-8") as f, open(src, "w", encoding="utf-8") as out:
        for row in csv.DictReader(f):
            if row["Ticker"] == "AAPL":
                out.write(
                    ",".join(
                        (
                            row["Ticker"],
                            row["Date"],
                            row["Open"],
                            row["High"],
                            row["Low"],
                            row["Close"],
                            row["Volume"],
                        )
                    )
                    + "\n"
                )
    src.write_text("Ticker,Date,Open,High,Low,Close,Volume\n" + src.read_text())
    run(lake, "ingest", "csv", str(src))
    report = run(lake, "etl")
    assert [(s["ticker"], s["date"], s["ratio"]) for s in report["corporate_actions"]["suspected"]] == [
        ("AAPL", "2005-02-28", 2.0)
    ]
    assert actions(lake) == [("AAPL", "2005-02-28", "split", "suspected")]
    assert bar(lake, "AAPL", "2005-02-25")["close"] == 88.99  # never applied
    # The catalog lists it, for a person to confirm with a corporate-actions file.
    assert catalog(Settings(lake=lake)).suspected_splits == [SuspectedSplit("AAPL", "2005-02-28", 2.0)]
    result = CliRunner().invoke(app, ["--lake", lake, "tables"])
    assert (
        result.exit_code == 0
        and "suspected split: AAPL on 2005-02-28 (ratio 2), not applied" in result.stdout
    )


def test_fb_lands_as_meta_with_the_rename_recorded(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    run(lake, "ingest", "csv", str(REAL / "fb_2012.csv"))
    run(lake, "etl")
    tickers = set(read_table(Settings(lake=lake), columns=("ticker",)).column("ticker").to_pylist())
    assert tickers == {"META"}
    rows = read_actions(Settings(lake=lake)).to_pylist()
    assert [(r["ticker"], r["date"], r["action"], r["old_ticker"], r["source"]) for r in rows] == [
        ("META", dt.date(2022, 6, 9), "rename", "FB", "tickerlake")
    ]
    assert bar(lake, "META", "2012-05-18")["close"] == 38.2318
