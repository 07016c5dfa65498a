"""Yahoo source: wide-frame → long rows by label, and fetches replayed from a local HTTP server.

No test touches the internet: every request yfinance makes goes to the replay server on
127.0.0.1 (tests/fixtures/yahoo/replay.py), which serves recorded v8 chart responses.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tickerlake.errors import TickerlakeError
from tickerlake.lake.contract import RAW_ACTION_COLUMNS, RAW_BAR_COLUMNS
from tickerlake.sources.yahoo import BASE_URL_ENV, YahooReport, download_frame_to_raw, fetch_yahoo

REPLAY_PATH = Path(__file__).resolve().parents[2] / "fixtures" / "yahoo" / "replay.py"


def load_replay() -> ModuleType:
    """The replay-server helper module from the fixtures folder."""
    if "yahoo_replay" in sys.modules:
        return sys.modules["yahoo_replay"]
    spec = importlib.util.spec_from_file_location("yahoo_replay", REPLAY_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["yahoo_replay"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def replay() -> Iterator[Any]:
    with load_replay().replay_server() as server:
        yield server


@pytest.fixture(scope="module")
def yf_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("yfinance-cache")


def fetch(
    server: Any, cache: Path, tickers: list[str], start: str, end: str, **kwargs: Any
) -> tuple[dict, YahooReport]:
    report = YahooReport()
    out: dict[str, list[dict[str, str | None]]] = {}
    for dataset, table in fetch_yahoo(
        tickers,
        dt.date.fromisoformat(start),
        dt.date.fromisoformat(end),
        base_url=server.url,
        backoff_s=0.0,
        cache_dir=cache,
        report=report,
        **kwargs,
    ):
        expected = RAW_BAR_COLUMNS if dataset == "daily_bars" else RAW_ACTION_COLUMNS
        assert tuple(table.column_names) == expected
        assert all(t == pa.string() for t in table.schema.types)
        out.setdefault(dataset, []).extend(table.to_pylist())
    return out, report


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- pure conversion


def _frame(group_by: str, order: list[str]) -> pd.DataFrame:
    """A yfinance-shaped download of AAPL (with a 4:1 split) and GOOGL (one day missing)."""
    days = pd.DatetimeIndex(["2020-08-28", "2020-08-31"], name="Date")
    data = {
        "AAPL": {
            "Open": [126.012497, 127.580002],
            "High": [126.442497, 131.0],
            "Low": [124.577499, 126.0],
            "Close": [124.807503, 129.039993],
            "Adj Close": [123.114647, 127.289711],
            "Volume": [187630000, 225702700],
            "Dividends": [0.0, 0.0],
            "Stock Splits": [0.0, 4.0],
        },
        "GOOGL": {
            "Open": [np.nan, 82.178497],
            "High": [np.nan, 82.224998],
            "Low": [np.nan, 81.266502],
            "Close": [np.nan, 81.476501],
            "Adj Close": [np.nan, 81.476501],
            "Volume": [np.nan, 26422000.0],
            "Dividends": [np.nan, 0.0],
            "Stock Splits": [np.nan, 0.0],
        },
    }
    columns = [(t, f) for t in order for f in data[t]]
    frame = pd.DataFrame({c: data[c[0]][c[1]] for c in columns}, index=days)
    frame.columns = pd.MultiIndex.from_tuples(columns, names=["Ticker", "Price"])
    if group_by == "column":
        frame.columns = frame.columns.swaplevel(0, 1)
        frame = frame.sort_index(axis=1, level=0)
    return frame


EXPECTED_BARS = [
    (
        "AAPL",
        "2020-08-28",
        "126.012497",
        "126.442497",
        "124.577499",
        "124.807503",
        "123.114647",
        "187630000",
        "1",
    ),
    ("AAPL", "2020-08-31", "127.580002", "131.0", "126.0", "129.039993", "127.289711", "225702700", "2"),
    ("GOOGL", "2020-08-31", "82.178497", "82.224998", "81.266502", "81.476501", "81.476501", "26422000", "1"),
]


@pytest.mark.parametrize("group_by", ["ticker", "column"])
@pytest.mark.parametrize("order", [["AAPL", "GOOGL"], ["GOOGL", "AAPL"]])
def test_download_frame_to_raw_maps_by_label(group_by: str, order: list[str]) -> None:
    bars, actions = download_frame_to_raw(_frame(group_by, order), lambda t: f"chart/{t}")
    got = [
        tuple(
            r[c]
            for c in ("ticker", "date", "open", "high", "low", "close", "adj_close", "volume", "source_row")
        )
        for r in bars.to_pylist()
    ]
    assert got == EXPECTED_BARS
    assert {r["source"] for r in bars.to_pylist()} == {"yahoo"}
    assert [r["source_file"] for r in bars.to_pylist()] == ["chart/AAPL", "chart/AAPL", "chart/GOOGL"]
    assert actions.to_pylist() == [
        {
            "ticker": "AAPL",
            "date": "2020-08-31",
            "action": "split",
            "ratio": "4.0",
            "amount": None,
            "source": "yahoo",
            "source_file": "chart/AAPL",
            "source_row": "2",
        }
    ]


def test_download_frame_without_level_names_is_read_by_content() -> None:
    frame = _frame("column", ["GOOGL", "AAPL"])
    frame.columns = frame.columns.set_names([None, None])
    bars, _ = download_frame_to_raw(frame, lambda t: t)
    assert [(r["ticker"], r["close"]) for r in bars.to_pylist()] == [
        ("AAPL", "124.807503"),
        ("AAPL", "129.039993"),
        ("GOOGL", "81.476501"),
    ]


def test_empty_download_gives_empty_tables() -> None:
    bars, actions = download_frame_to_raw(pd.DataFrame(), lambda t: t)
    assert bars.num_rows == 0 and tuple(bars.column_names) == RAW_BAR_COLUMNS
    assert actions.num_rows == 0 and tuple(actions.column_names) == RAW_ACTION_COLUMNS


# --------------------------------------------------------------------------- replayed fetches


def test_fetch_replays_recorded_chart_responses(replay: Any, yf_cache: Path) -> None:
    out, report = fetch(replay, yf_cache, ["AAPL", "MSFT", "GOOGL"], "2020-08-17", "2020-09-04")
    bars = out["daily_bars"]
    by_ticker: dict[str, list[dict[str, str | None]]] = {}
    for r in bars:
        by_ticker.setdefault(r["ticker"], []).append(r)
    assert {t: len(v) for t, v in by_ticker.items()} == {"AAPL": 15, "GOOGL": 15, "MSFT": 15}
    aapl = {r["date"]: r for r in by_ticker["AAPL"]}
    # Yahoo's close is split-adjusted (4:1 on 2020-08-31), adj_close also for dividends.
    assert (aapl["2020-08-28"]["close"], aapl["2020-08-28"]["adj_close"]) == ("124.807503", "123.114647")
    assert (aapl["2020-08-31"]["open"], aapl["2020-08-31"]["close"], aapl["2020-08-31"]["volume"]) == (
        "127.580002",
        "129.039993",
        "225702700",
    )
    googl = {r["date"]: r["close"] for r in by_ticker["GOOGL"]}
    msft = {r["date"]: r["close"] for r in by_ticker["MSFT"]}
    assert (googl["2020-09-04"], msft["2020-09-04"]) == ("79.060501", "214.25")
    assert {r["source"] for r in bars} == {"yahoo"}
    assert by_ticker["MSFT"][0]["source_file"] == (
        f"{replay.url}/v8/finance/chart/MSFT?start=2020-08-17&end=2020-09-04"
    )
    actions = sorted(
        (r["ticker"], r["date"], r["action"], r["ratio"], r["amount"]) for r in out["corporate_actions"]
    )
    assert actions == [
        ("AAPL", "2020-08-31", "split", "4.0", None),
        ("MSFT", "2020-08-19", "dividend", None, "0.51"),
    ]
    assert report.errors == [] and report.downloads == 1 and report.retries == 0
    assert report.rows == {"daily_bars": 45, "corporate_actions": 2}
    # Every request reached the replay server: charts, plus yfinance's cookie and crumb calls.
    other = {p for p, _ in replay.requests if not p.startswith("/v8/finance/chart/")}
    assert other <= {"/", "/v1/test/getcrumb", "/consent"}


def test_end_date_is_inclusive_and_start_slices(replay: Any, yf_cache: Path) -> None:
    out, _ = fetch(replay, yf_cache, ["MSFT"], "2020-08-31", "2020-09-01")
    assert [(r["date"], r["close"]) for r in out["daily_bars"]] == [
        ("2020-08-31", "225.529999"),
        ("2020-09-01", "227.270004"),
    ]
    assert "corporate_actions" not in out


def test_one_download_per_batch(replay: Any, yf_cache: Path) -> None:
    _, report = fetch(replay, yf_cache, ["AAPL", "MSFT", "GOOGL"], "2020-09-01", "2020-09-04", batch_size=2)
    assert report.downloads == 2
    assert sorted(report.fetched) == ["AAPL", "GOOGL", "MSFT"]


def test_transient_failures_are_retried(replay: Any, yf_cache: Path) -> None:
    replay.fail["MSFT"] = 3  # yfinance retries once itself, so this takes two downloads
    out, report = fetch(replay, yf_cache, ["AAPL", "MSFT"], "2020-09-01", "2020-09-04", retries=2)
    assert report.errors == []
    assert report.retries >= 1
    assert sorted({r["ticker"] for r in out["daily_bars"]}) == ["AAPL", "MSFT"]
    assert len(out["daily_bars"]) == 8


def test_persistent_server_errors_become_per_ticker_errors(replay: Any, yf_cache: Path) -> None:
    replay.fail["MSFT"] = 1000
    out, report = fetch(replay, yf_cache, ["AAPL", "MSFT"], "2020-09-01", "2020-09-04", retries=1)
    assert {r["ticker"] for r in out["daily_bars"]} == {"AAPL"}
    assert [str(e) for e in report.errors] == ["yahoo: no data for MSFT after 2 attempts: HTTP 503"]


def test_unknown_ticker_is_a_one_line_error_and_the_rest_is_fetched(replay: Any, yf_cache: Path) -> None:
    out, report = fetch(replay, yf_cache, ["NOPE", "GOOGL"], "2020-09-01", "2020-09-04")
    assert {r["ticker"] for r in out["daily_bars"]} == {"GOOGL"}
    assert [str(e) for e in report.errors] == [
        "yahoo: no data for NOPE from 2020-09-01 to 2020-09-04: unknown or delisted ticker (HTTP 404)"
    ]
    assert report.retries == 0


def test_range_without_trading_days_is_reported(replay: Any, yf_cache: Path) -> None:
    out, report = fetch(replay, yf_cache, ["AAPL"], "2020-09-05", "2020-09-07")
    assert out == {}
    assert [str(e) for e in report.errors] == [
        "yahoo: no data for AAPL from 2020-09-05 to 2020-09-07: no prices in this date range"
    ]


def test_unreachable_server_is_one_clear_error(yf_cache: Path) -> None:
    with pytest.raises(TickerlakeError) as info:
        list(
            fetch_yahoo(
                ["AAPL"],
                dt.date(2020, 9, 1),
                dt.date(2020, 9, 4),
                base_url=f"http://127.0.0.1:{free_port()}",
                retries=1,
                backoff_s=0.0,
                cache_dir=yf_cache,
            )
        )
    message = str(info.value)
    assert message.startswith("cannot reach Yahoo Finance at http://127.0.0.1:")
    assert "after 2 attempts (offline?)" in message
    assert "\n" not in message


def test_base_url_from_environment(replay: Any, yf_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BASE_URL_ENV, replay.url)
    tables = list(
        fetch_yahoo(["GOOGL"], dt.date(2020, 9, 1), dt.date(2020, 9, 1), backoff_s=0.0, cache_dir=yf_cache)
    )
    assert [(d, t.column("close").to_pylist()) for d, t in tables] == [("daily_bars", ["82.753998"])]


def test_start_after_end_is_refused() -> None:
    with pytest.raises(TickerlakeError, match="start 2020-09-04 is after end 2020-09-01"):
        list(fetch_yahoo(["AAPL"], dt.date(2020, 9, 4), dt.date(2020, 9, 1)))
