"""The whole historical path through the real CLI: ingest → crawl → etl → query."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
TL = [str(Path(sys.executable).parent / "tickerlake")]


def tl(lake: Path, *args: str) -> dict | list:
    out = subprocess.run([*TL, "--lake", str(lake), *args], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def sql(lake: Path, query: str) -> list[dict]:
    return tl(lake, "query", "--format", "json", query)


def test_sim_market_end_to_end(tmp_path):
    lake = tmp_path / "lake"
    ingest = tl(
        lake,
        "ingest",
        "sim",
        "--tickers",
        "AAPL,TSLA",
        "--start",
        "2020-08-01",
        "--end",
        "2020-09-30",
        "--json",
    )
    # Aug 2020 has 21 NYSE sessions, Sep 2020 has 21 (Labor Day closed): 42 per ticker.
    assert ingest["rows"]["daily_bars"] == 84
    again = tl(
        lake,
        "ingest",
        "sim",
        "--tickers",
        "AAPL,TSLA",
        "--start",
        "2020-08-01",
        "--end",
        "2020-09-30",
        "--json",
    )
    assert again["files_written"] == 0  # same seed, same bytes, same content-addressed files

    crawl = tl(lake, "crawl", "--json")
    assert {t["table"]: t["status"] for t in crawl["tables"]} == {
        "corporate_actions": "new",
        "daily_bars": "new",
        "daily_bars_unadjusted": "new",
    }  # no anomaly was injected in these two months
    etl = tl(lake, "etl", "--json")
    assert not etl["crawled"]  # nothing changed since the crawl
    bars = next(t for t in etl["tables"] if t["table"] == "market.daily_bars")
    assert (bars["read"], bars["loaded"], bars["duplicates"], bars["quarantined"]) == (84, 84, 0, 0)

    rows = sql(
        lake,
        "SELECT ticker, count(*) AS n, min(date) AS first, max(date) AS last FROM market.daily_bars GROUP BY 1 ORDER BY 1",
    )
    assert rows == [
        {"ticker": "AAPL", "n": 42, "first": "2020-08-03", "last": "2020-09-30"},
        {"ticker": "TSLA", "n": 42, "first": "2020-08-03", "last": "2020-09-30"},
    ]
    assert sql(lake, "SELECT count(*) AS n FROM market.daily_bars WHERE date = '2020-09-07'") == [{"n": 0}]
    splits = sql(
        lake, "SELECT ticker, date, ratio FROM market.corporate_actions WHERE action = 'split' ORDER BY 1"
    )
    assert splits == [
        {"ticker": "AAPL", "date": "2020-08-31", "ratio": 4.0},
        {"ticker": "TSLA", "date": "2020-08-31", "ratio": 5.0},
    ]
    # The unadjusted prices stay a raw table: before the split they are 4x the adjusted close.
    pair = sql(
        lake,
        """SELECT r.close::DOUBLE / b.close AS factor FROM raw.daily_bars_unadjusted r
           JOIN market.daily_bars b ON b.ticker = r.ticker AND b.date = r.date::DATE
           WHERE r.ticker = 'AAPL' AND r.date::DATE = DATE '2020-08-28'""",
    )
    assert pair[0]["factor"] == pytest.approx(4.0, rel=1e-3)
    rerun = tl(lake, "etl", "--json")
    assert all(t["read"] == 0 for t in rerun["tables"])


def test_real_yahoo_prices_end_to_end(tmp_path):
    lake = tmp_path / "lake"
    ingest = tl(lake, "ingest", "csv", str(FIXTURES / "yahoo" / "bars.csv"), "--json")
    assert ingest["rows"]["daily_bars"] == 45
    etl = tl(lake, "etl", "--json")
    bars = next(t for t in etl["tables"] if t["table"] == "market.daily_bars")
    assert (bars["read"], bars["loaded"], bars["quarantined"]) == (45, 45, 0)
    # Yahoo's single-precision 129.039993 is AAPL's real 129.04 close on its split day.
    assert sql(
        lake, "SELECT close, volume FROM market.daily_bars WHERE ticker = 'AAPL' AND date = '2020-08-31'"
    ) == [{"close": 129.04, "volume": 225702700}]
    assert sql(lake, "SELECT count(DISTINCT ticker) AS n, count(*) AS rows FROM market.daily_bars") == [
        {"n": 3, "rows": 45}
    ]
