"""``tickerlake query`` and ``tickerlake tables`` through the real CLI on a hand-written lake."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tickerlake.cli import app
from tickerlake.config import Settings

pytestmark = pytest.mark.integration


def run(settings: Settings, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["--lake", settings.lake, *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_query_json(lake: Settings) -> None:
    code, out, _ = run(
        lake,
        "query",
        "--format",
        "json",
        "select close from market.daily_bars where ticker='MSFT' and date='2023-02-01'",
    )
    assert code == 0
    assert json.loads(out) == [{"close": 220.0}]
    code, out, _ = run(
        lake, "query", "--json", "select ticker, date from market.daily_bars order by 1, 2 limit 1"
    )
    assert json.loads(out) == [{"ticker": "AAPL", "date": "2023-01-30"}]


def test_query_csv_with_truncation_note(lake: Settings) -> None:
    code, out, err = run(
        lake,
        "query",
        "-f",
        "csv",
        "--limit",
        "2",
        "select ticker, close from market.daily_bars order by 1, 2",
    )
    assert code == 0
    assert list(csv.reader(io.StringIO(out))) == [["ticker", "close"], ["AAPL", "99.0"], ["AAPL", "100.0"]]
    assert "truncated at 2 rows" in err


def test_query_table_and_stdin(lake: Settings) -> None:
    code, out, err = run(lake, "query", "-", stdin="select count(*) as n from raw.daily_bars")
    assert code == 0
    assert "│ 3 │" in out
    assert "1 row in" in err


def test_named_query_cli(lake: Settings) -> None:
    code, out, _ = run(
        lake, "query", "--named", "close_by_ticker", "-p", "tickers=msft", "-p", "start=2023-02-01",
        "-p", "end=2023-02-28", "--json",
    )  # fmt: skip
    assert code == 0
    assert json.loads(out) == [
        {"ticker": "MSFT", "date": "2023-02-01", "close": 220.0},
        {"ticker": "MSFT", "date": "2023-02-28", "close": 210.0},
    ]
    code, out, _ = run(lake, "query", "--named", "list", "--json")
    assert code == 0
    listed = {q["name"]: q for q in json.loads(out)}
    assert [p["name"] for p in listed["close_by_ticker"]["params"]] == ["tickers", "start", "end"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["query", "DROP VIEW market.daily_bars"], "refused: DROP VIEW statements are not allowed"),
        (["query", "select * from read_text('/etc/hostname')"], "refused: cannot read '/etc/hostname'"),
        (["query", "--named", "close_by_ticker", "-p", "tickers=AAPL"], "missing parameter start, end"),
        (
            ["query", "--named", "close_by_ticker", "-p", "tickers"],
            "--param 'tickers': write it as name=value",
        ),
        (["query", "--named", "nope"], "unknown named query 'nope'"),
        (["query"], "give a SQL statement"),
        (["query", "select 1", "--named", "drawdown"], "give either SQL or --named NAME, not both"),
        (["query", "select * from market.nope"], "Table with name nope does not exist"),
        (["tables", "market.nope"], "no table 'market.nope'"),
    ],
)
def test_cli_errors_are_one_line(lake: Settings, args: list[str], message: str) -> None:
    code, out, err = run(lake, *args)
    # refused 4; not found 3 (an unknown named query or table, as the API's 404); user error 2
    not_found = message.startswith(("unknown named query", "no table"))
    assert code == (4 if message.startswith("refused") else 3 if not_found else 2)
    assert out == ""
    assert message in " ".join(err.split())
    assert "Traceback" not in err


def test_tables(lake: Settings) -> None:
    code, out, _ = run(lake, "tables", "--json")
    assert code == 0
    tables = {t["name"]: t for t in json.loads(out)}
    assert tables["market.daily_bars"]["row_count"] == 7
    assert tables["raw.daily_bars"]["row_count"] == 3
    code, out, _ = run(lake, "tables")
    assert code == 0
    assert "market.daily_bars" in out and "raw csv" in out
    code, out, _ = run(lake, "tables", "market.daily_bars", "--json")
    detail = json.loads(out)
    assert detail["table"]["columns"][0] == {
        "name": "ticker",
        "type": "VARCHAR",
        "nullable": False,
        "partition": False,
    }
    assert detail["snapshots"][0]["summary"]["total-records"] == "7"


def test_acceptance_command_shape(tmp_path: Path, make_lake: Callable[[Path], Settings]) -> None:
    """The shape of the issue's acceptance check: JSON rows with the close."""
    settings = make_lake(tmp_path)
    code, out, _ = run(
        settings,
        "query",
        "--format",
        "json",
        "select close from market.daily_bars where ticker='AAPL' and date='2023-02-28'",
    )
    assert code == 0
    assert json.loads(out)[0]["close"] == 121.0
