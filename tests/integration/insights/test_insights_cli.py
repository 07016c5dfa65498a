"""``tickerlake insights KIND`` through the real CLI on a simulated lake (ingest sim → etl)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tickerlake.cli import app

pytestmark = pytest.mark.integration


def run(lake: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["--lake", lake, *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = str(tmp_path_factory.mktemp("insights") / "lake")
    code, _, err = run(
        root, "ingest", "sim", "-t", "AAPL,MSFT,NVDA", "--start", "2019-01-01", "--end", "2020-12-31"
    )
    assert code == 0, err
    code, _, err = run(root, "etl", "--json")
    assert code == 0, err
    return root


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (["movers", "--date", "2020-03-16", "--bottom"], "rows"),
        (["period", "--date", "2020-03-16"], "tickers"),
        (["period", "--date", "2020-03-16", "--grain", "month", "--measure", "volume"], "tickers"),
        (["period-to-date", "--date", "2020-03-16", "--grain", "quarter"], "tickers"),
        (["growth", "--start", "2019-01-01", "--end", "2020-12-31", "--grain", "year"], "tickers"),
        (["ranked", "--start", "2020-02-01", "--end", "2020-04-30"], "ranked"),
        (["extremes", "--start", "2020-02-01", "--end", "2020-04-30"], "tickers"),
        (["anomalies", "--sensitivity", "0.6"], "anomalies"),
        (["forecast", "--ticker", "msft", "--horizon", "10"], "points"),
        (["recessions", "--period", "nber-2020"], "tickers"),
        (["recessions", "--define", "dip=2020-02-19..2020-03-23:the dip", "--period", "dip"], "tickers"),
        (["summary", "--start", "2020-01-01", "--end", "2020-06-30"], "insights"),
    ],
)
def test_every_kind_json(lake: str, args: list[str], key: str) -> None:
    code, out, err = run(lake, "insights", *args, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["narrative"] and key in doc
    code, out, err = run(lake, "insights", *args)
    assert code == 0, err
    assert doc["narrative"].split(" ")[0] in out


def test_movers_identity_matches_the_table(lake: str) -> None:
    code, out, _ = run(lake, "insights", "movers", "--date", "2020-03-16", "--n", "3", "--json")
    assert code == 0
    rows = {r["ticker"]: r for r in json.loads(out)["rows"]}
    for ticker, row in rows.items():
        sql = f"select close from market.daily_bars where ticker='{ticker}' and date='2020-03-16'"
        code, q, _ = run(lake, "query", "--json", sql)
        assert code == 0 and json.loads(q) == [{"close": row["current"]}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["movers", "--date", "1990-01-02"], "is outside the data"),
        (["movers", "--date", "2020-03-14"], "is not a trading day"),
        (["movers", "--date", "2020-13-01"], "bad date"),
        (["forecast", "--ticker", "ZZZZ"], "unknown ticker"),
        (["ranked", "--tickers", "ZZZZ"], "unknown ticker ZZZZ"),
        (["recessions", "--period", "nope"], "unknown period"),
        (
            ["growth", "--start", "2020-01-01", "--end", "2020-01-20", "--grain", "month"],
            "at least one month",
        ),
        (["ranked", "--start", "2020-03-14", "--end", "2020-03-15"], "no trading day between"),
    ],
)
def test_errors_are_one_line(lake: str, args: list[str], message: str) -> None:
    code, out, err = run(lake, "insights", *args)
    # A missing ticker or period is not found (3, as the API's 404); any other bad input 2.
    assert code == (3 if message.startswith(("unknown ticker", "unknown period")) else 2)
    assert message in err and "Traceback" not in err + out
    assert len(err.strip().splitlines()) == 1


def test_empty_lake(tmp_path: Path) -> None:
    code, _, err = run(str(tmp_path / "empty"), "insights", "summary")
    assert code == 3 and "no daily bars" in err  # not found: there is no lake there
