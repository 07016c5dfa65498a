"""One contract, every stage: a ticker with a slash and a raw file name with a quote.

``BRK/B`` is ingested from a CSV file, loaded by the ETL, queried in SQL, served by the
web API and decoded by the stream's bar decoder against the lake's tickers; a raw file
named ``o'brien.csv`` is crawled, loaded and read back through ``raw.daily_bars``. Before
the lake had one contract the web API refused the slash and the crawler's SQL broke on
the quote.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tickerlake.cli import app
from tickerlake.config import Settings
from tickerlake.lake.contract import RAW_BAR_COLUMNS, LakeLayout, read_tickers
from tickerlake.lake.crawler import crawl, crawled_files
from tickerlake.lake.etl import run_etl
from tickerlake.query import clear_engines, run_query
from tickerlake.stream.replay import load_bars
from tickerlake.stream.schema import Rules, decode_bars, encode_bars

pytestmark = pytest.mark.integration

_HEADER = "ticker,date,open,high,low,close,adj_close,volume\n"
_SOURCE_ROWS = [
    "BRK/B,2023-12-04,360.0,362.0,358.0,361.0,361.0,3000000",
    "BRK/B,2023-12-05,361.0,363.0,359.0,362.5,362.5,3100000",
    "AAPL,2023-12-04,189.9,190.1,187.3,189.4,189.4,43000000",
    "AAPL,2023-12-05,190.2,194.4,190.2,193.4,193.4,66000000",
]
_QUOTED_NAME = "o'brien.csv"


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[Settings]:
    """A lake with the CSV ingested, plus a hand-landed raw file whose name has a quote."""
    source = tmp_path / "bars.csv"
    source.write_text(_HEADER + "\n".join(_SOURCE_ROWS) + "\n")
    settings = Settings(lake=str(tmp_path / "lake"), query_timeout_s=20.0)
    result = CliRunner().invoke(app, ["--lake", str(tmp_path / "lake"), "ingest", "csv", str(source)])
    assert result.exit_code == 0, result.output
    # Landed by hand, as a user dropping a file into the raw zone would: lower case, and one
    # row whose ticker is no symbol at all.
    layout = LakeLayout.of(settings)
    quoted = Path(layout.storage.path(layout.raw_file("daily_bars", "manual", _QUOTED_NAME)))
    quoted.parent.mkdir(parents=True)
    rows = [
        ["brk/b", "2023-12-06", "362.0", "364.0", "361.0", "363.0", "363.0", "2900000", "manual", "", "1"],
        ["NOT A TICKER", "2023-12-06", "1", "1", "1", "1", "1", "1", "manual", "", "2"],
    ]
    quoted.write_text(",".join(RAW_BAR_COLUMNS) + "\n" + "\n".join(",".join(r) for r in rows) + "\n")
    yield settings
    clear_engines()


def test_slash_ticker_and_quoted_file_name_pass_every_stage(lake: Settings) -> None:
    # crawl: the quoted file is sniffed and registered, not reported as a problem
    report = crawl(lake)
    (bars,) = [t for t in report.tables if t.table == "daily_bars"]
    assert bars.problems == []
    files = crawled_files(lake)
    assert files is not None
    assert any(u.endswith(_QUOTED_NAME) for u in files["daily_bars"])

    # etl: both files load; the row that is no ticker is quarantined by the same rule
    etl = run_etl(lake)
    (load,) = [t for t in etl.tables if t.table == "market.daily_bars"]
    assert load.reconciles
    assert (load.inserted, load.quarantined) == (5, 1)
    assert list(load.reasons) == ["invalid ticker"]

    # query: the curated table, the raw table over the quoted file, the quarantine
    curated = run_query(lake, "SELECT date::VARCHAR FROM market.daily_bars WHERE ticker = 'BRK/B' ORDER BY 1")
    assert [r[0] for r in curated.rows()] == ["2023-12-04", "2023-12-05", "2023-12-06"]
    raw = run_query(lake, "SELECT close FROM raw.daily_bars WHERE ticker = 'brk/b'")
    assert [float(r[0]) for r in raw.rows()] == [363.0]
    quarantined = run_query(lake, "SELECT source_file FROM market.quarantine")
    assert [r[0].endswith(_QUOTED_NAME) for r in quarantined.rows()] == [True]
    assert read_tickers(lake) == ("AAPL", "BRK/B")

    # web API: routes that take tickers accept the symbol the lake holds
    from fastapi.testclient import TestClient

    from tickerlake.web.app import create_app

    with TestClient(create_app(lake), raise_server_exceptions=False) as client:
        answer = client.get("/api/bars", params={"tickers": "brk/b,AAPL"})
        assert answer.status_code == 200, answer.text
        assert [s["ticker"] for s in answer.json()["series"]] == ["AAPL", "BRK/B"]
        candles = client.get("/api/ohlc", params={"ticker": "BRK/B"})
        assert candles.status_code == 200, candles.text
        assert candles.json()["close"] == [361.0, 362.5, 363.0]
        movers = client.get("/api/insights/movers", params={"tickers": "BRK/B,AAPL"})
        assert movers.status_code == 200, movers.text

    # stream: replayed bars decode against the lake's tickers, as the sink checks them
    replayed = load_bars(lake, ["BRK/B"])
    decoded = decode_bars(encode_bars(replayed), Rules(known_tickers=frozenset(read_tickers(lake))))
    assert decoded.rejected == []
    assert decoded.columns["ticker"].to_pylist() == ["BRK/B"] * 3
