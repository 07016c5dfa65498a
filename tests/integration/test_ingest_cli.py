"""``tickerlake ingest csv|yahoo|sim`` end to end into a temporary lake (raw zone only)."""

from __future__ import annotations

import importlib.util
import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from typer.testing import CliRunner

from tickerlake.cli import app
from tickerlake.lake.contract import RAW_ACTION_COLUMNS, RAW_BAR_COLUMNS

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def load_replay() -> ModuleType:
    if "yahoo_replay" in sys.modules:
        return sys.modules["yahoo_replay"]
    spec = importlib.util.spec_from_file_location("yahoo_replay", FIXTURES / "yahoo" / "replay.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["yahoo_replay"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def replay() -> Iterator[Any]:
    with load_replay().replay_server() as server:
        yield server


def run(lake: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["--lake", str(lake), "ingest", *args])


def raw_rows(lake: Path, dataset: str, source: str) -> list[dict[str, Any]]:
    folder = lake / "raw" / dataset / f"source={source}"
    files = sorted(folder.glob("part-*.csv"))
    if not files:
        return []
    # Read back as text, as the raw zone holds it.
    names = dict.fromkeys((*RAW_BAR_COLUMNS, *RAW_ACTION_COLUMNS))
    opts = pacsv.ConvertOptions(column_types={c: pa.string() for c in names})
    tables = [pacsv.read_csv(f, convert_options=opts) for f in files]
    return pa.concat_tables(tables, promote_options="permissive").to_pylist()


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_ingest_csv_folder_lands_raw_files(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    result = run(lake, "csv", str(FIXTURES / "csv" / "per_ticker"))
    assert result.exit_code == 0, result.output
    rows = raw_rows(lake, "daily_bars", "csv")
    assert sorted((r["ticker"], r["date"], r["close"]) for r in rows) == [
        ("AAPL", "2020-08-28", "124.807503"),
        ("AAPL", "2020-08-31", "129.039993"),
        ("MSFT", "2020-08-28", "228.910004"),
    ]
    assert {r["source"] for r in rows} == {"csv"}
    assert {r["source_file"] for r in rows} == {
        str(FIXTURES / "csv" / "per_ticker" / "AAPL.csv"),
        str(FIXTURES / "csv" / "per_ticker" / "MSFT.csv"),
    }
    assert "traceback" not in result.output.lower()

    # Same input again: same content-addressed file, nothing new.
    again = run(lake, "csv", str(FIXTURES / "csv" / "per_ticker"), "--json")
    assert again.exit_code == 0
    payload = json.loads(again.stdout)
    assert payload["files_written"] == 0 and payload["files_unchanged"] >= 1
    assert (
        len(list((lake / "raw" / "daily_bars" / "source=csv").glob("part-*.csv")))
        == payload["files_unchanged"]
    )


def test_ingest_csv_bad_file_exits_non_zero_after_landing_the_good_ones(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    bad = FIXTURES / "csv" / "missing_close.csv"
    result = run(lake, "csv", str(FIXTURES / "csv" / "wide_column_3rows.csv"), str(bad))
    assert result.exit_code == 1
    assert error_lines(result.stderr) == [
        f"error: {bad}:1: missing required columns: close (header: 'Ticker,Date,Open,Volume'; "
        "map them with --columns close=LABEL)"
    ]
    assert "Traceback" not in result.output
    rows = raw_rows(lake, "daily_bars", "csv")
    closes = {(r["ticker"], r["date"]): r["close"] for r in rows}
    assert closes == {
        ("AAPL", "2020-08-28"): "124.807503",
        ("AAPL", "2020-08-31"): "129.039993",
        ("MSFT", "2020-08-28"): "228.910004",
        ("MSFT", "2020-08-31"): "225.529999",
    }


def test_ingest_csv_json_report(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    result = run(
        lake,
        "csv",
        str(FIXTURES / "csv" / "rowlevel.csv"),
        str(FIXTURES / "csv" / "history"),
        str(FIXTURES / "csv" / "mixed_folder"),
        "--json",
    )
    assert result.exit_code == 0  # row-level problems and stray files are warnings, not unusable input
    payload = json.loads(result.stdout)
    assert payload["source"] == "csv"
    assert payload["rows"] == {"daily_bars": 11, "corporate_actions": 1}
    assert payload["errors"] == []
    assert payload["warnings"] == [
        f"{FIXTURES / 'csv' / 'rowlevel.csv'}:9: expected 8 fields, got 4",
        # A text file in a folder is tried as a price file (Kaggle ships .txt), then skipped.
        f"{FIXTURES / 'csv' / 'mixed_folder' / 'readme.txt'}: not a price file (skipped: unrecognised "
        "layout: no date or price columns in header 'Downloaded from Yahoo Finance.')",
    ]
    assert [line for line in result.stderr.splitlines() if line.startswith("warning:")] == [
        f"warning: {w}" for w in payload["warnings"]
    ]
    assert [(i["layout"], i["rows"]) for i in payload["inputs"]] == [
        ("long", {"daily_bars": 8}),
        ("per_ticker", {"daily_bars": 2, "corporate_actions": 1}),
        ("per_ticker", {"daily_bars": 1}),
    ]
    actions = raw_rows(lake, "corporate_actions", "csv")
    assert [(a["ticker"], a["action"], a["ratio"]) for a in actions] == [("AAPL", "split", "4.0")]


def test_ingest_csv_missing_path(tmp_path: Path) -> None:
    result = run(tmp_path / "lake", "csv", str(tmp_path / "nope.csv"))
    assert result.exit_code == 1
    assert error_lines(result.stderr) == [f"error: {tmp_path / 'nope.csv'}: no such file or folder"]


def test_ingest_yahoo_from_replayed_responses(tmp_path: Path, replay: Any) -> None:
    lake = tmp_path / "lake"
    result = run(
        lake, "yahoo", "--tickers", "aapl, msft", "GOOGL", "--start", "2020-08-17", "--end", "2020-09-04",
        "--base-url", replay.url, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["tickers"] == ["AAPL", "MSFT", "GOOGL"]
    assert payload["rows"] == {"daily_bars": 45, "corporate_actions": 2}
    bars = raw_rows(lake, "daily_bars", "yahoo")
    assert len(bars) == 45
    closes = {(r["ticker"], r["date"]): r["close"] for r in bars}
    assert closes[("AAPL", "2020-08-31")] == "129.039993"
    assert closes[("GOOGL", "2020-08-31")] == "81.476501"
    assert closes[("MSFT", "2020-08-31")] == "225.529999"
    actions = sorted(
        (a["ticker"], a["date"], a["action"]) for a in raw_rows(lake, "corporate_actions", "yahoo")
    )
    assert actions == [("AAPL", "2020-08-31", "split"), ("MSFT", "2020-08-19", "dividend")]


def test_ingest_yahoo_unknown_ticker_exits_non_zero(tmp_path: Path, replay: Any) -> None:
    lake = tmp_path / "lake"
    result = run(
        lake,
        "yahoo",
        "-t",
        "MSFT NOPE",
        "--start",
        "2020-09-01",
        "--end",
        "2020-09-04",
        "--base-url",
        replay.url,
    )
    assert result.exit_code == 1
    assert error_lines(result.stderr) == [
        "error: yahoo: no data for NOPE from 2020-09-01 to 2020-09-04: unknown or delisted ticker (HTTP 404)"
    ]
    assert {r["ticker"] for r in raw_rows(lake, "daily_bars", "yahoo")} == {"MSFT"}


def test_ingest_yahoo_offline_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run(
        tmp_path / "lake", "yahoo", "-t", "AAPL", "--retries", "0", "--base-url", f"http://127.0.0.1:{port}"
    )
    assert result.exit_code == 75  # transient: EX_TEMPFAIL, try again later
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith(
        f"error: cannot reach Yahoo Finance at http://127.0.0.1:{port}"
    )
    assert "Traceback" not in result.output


def test_ingest_bad_date_is_one_line(tmp_path: Path) -> None:
    result = run(tmp_path / "lake", "yahoo", "--start", "2020-13-01")
    assert result.exit_code == 2
    assert error_lines(result.stderr) == ["error: --start: '2020-13-01' is not a date (use YYYY-MM-DD)"]


def test_ingest_sim_is_deterministic(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    args = [
        "sim",
        "--tickers",
        "AAPL,MSFT",
        "--start",
        "2020-01-02",
        "--end",
        "2020-03-31",
        "--seed",
        "7",
        "--json",
    ]
    first = run(lake, *args)
    assert first.exit_code == 0, first.output
    payload = json.loads(first.stdout)
    assert payload["source"] == "sim" and payload["seed"] == 7
    assert payload["rows"]["daily_bars"] > 0 and payload["files_written"] >= 1
    bars = raw_rows(lake, "daily_bars", "sim")
    assert {r["ticker"] for r in bars} == {"AAPL", "MSFT"}
    assert {r["source"] for r in bars} == {"sim"}
    again = json.loads(run(lake, *args).stdout)
    assert again["files_written"] == 0 and again["files_unchanged"] == payload["files_written"]


def test_ingest_sim_unknown_ticker_is_one_line(tmp_path: Path) -> None:
    result = run(tmp_path / "lake", "sim", "--tickers", "ZZZZ")
    assert result.exit_code == 2
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and "ZZZZ" in lines[0]


def test_ingest_nasdaq_download_needs_and_takes_a_ticker(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    src = tmp_path / "HistoricalData_1656624000000.csv"
    src.write_bytes((FIXTURES / "csv" / "layouts" / "nasdaq" / "AAPL" / src.name).read_bytes())
    refused = run(lake, "csv", str(src))
    assert refused.exit_code == 1
    assert error_lines(refused.stderr) == [
        f"error: {src}: cannot determine the ticker: no ticker column and the file name "
        f"'{src.name}' is not a ticker symbol (pass --ticker SYMBOL, or rename the file SYMBOL.csv)"
    ]
    result = run(lake, "csv", str(src), "--ticker", "AAPL", "--json")
    assert result.exit_code == 0, result.output
    [inp] = json.loads(result.stdout)["inputs"]
    assert (inp["layout"], inp["tickers"], inp["date_format"], inp["decimal"]) == (
        "per_ticker",
        ["AAPL"],
        "MM/DD/YYYY",
        ".",
    )
    rows = raw_rows(lake, "daily_bars", "csv")
    assert [(r["date"], r["close"]) for r in rows] == [
        ("2022-06-30", "136.72"),
        ("2022-06-03", "145.38"),
        ("2022-06-02", "151.21"),
        ("2022-06-01", "148.71"),
    ]


def test_ingest_bad_option_values_are_one_line_user_errors(tmp_path: Path) -> None:
    result = run(tmp_path / "lake", "file", str(FIXTURES / "csv" / "layouts" / "kaggle"), "--decimal", "x")
    assert result.exit_code == 2
    assert "command line: decimal: 'x' must be . or ," in result.output
    assert "Traceback" not in result.output
