"""Insights on real Yahoo prices (tests/fixtures/real) through the CLI: ingest csv → etl → insights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tickerlake.cli import app
from tickerlake.config import Settings
from tickerlake.lake.contract import read_actions

pytestmark = pytest.mark.integration

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "real" / "yahoo_2004_2008.csv"


def run(lake: str, *args: str) -> dict:
    result = CliRunner().invoke(app, ["--lake", lake, *args, "--json"])
    assert result.exit_code == 0, result.stderr + result.stdout
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = str(tmp_path_factory.mktemp("real-insights") / "lake")
    run(root, "ingest", "csv", str(REAL))
    run(root, "etl")
    return root


def test_no_corporate_action_day_is_an_anomaly_and_the_2008_crash_is_market_wide(lake: str) -> None:
    res = run(lake, "insights", "anomalies")  # Sep 2004 to Dec 2008
    flagged = {a["date"]: a for a in res["anomalies"]}
    actions = read_actions(Settings(lake=lake)).to_pylist()
    # The AAPL split and every dividend (MSFT's $3 special one included) the ETL inferred:
    # none is a single-ticker anomaly of its ticker (a market-wide day may fall on an
    # ex-date: Nov 13, 2007 is a broad rally and MSFT's ex-dividend day).
    assert len(actions) == 35 and {r["source"] for r in actions} == {"inferred"}
    own = {(a["date"], a["scored_series"]) for a in res["anomalies"] if a["view"] == "single-ticker"}
    assert not own & {(r["date"].isoformat(), r["ticker"]) for r in actions}
    assert "2005-02-28" not in flagged and "2004-11-15" not in flagged
    # The crash: Sep 29 (the House rejects the bailout) and Oct 7 and 15, 2008, found by the
    # market-wide view, with every ticker's contribution and the top ones named.
    for day in ("2008-09-29", "2008-10-07", "2008-10-15"):
        a = flagged[day]
        assert a["view"] == "market-wide" and a["direction"] == "lower"
        assert {c["ticker"] for c in a["contributions"]} == {"AAPL", "GOOG", "IBM", "MSFT"}
        assert len(a["top"]) == 3 and all(c["contribution"] < 0 for c in a["top"])
        assert sum(c["contribution"] for c in a["contributions"]) == pytest.approx(a["deviation"])
        assert f"{a['score']:.1f} robust sigmas" in a["narrative"]
    # The rebound of Oct 13, 2008 (+11% for the basket) is market-wide too.
    assert flagged["2008-10-13"]["view"] == "market-wide" and flagged["2008-10-13"]["direction"] == "higher"


def test_forecast_from_the_2007_peak_shows_what_happened_next(lake: str) -> None:
    res = run(
        lake,
        "insights",
        "forecast",
        "--tickers",
        "AAPL,IBM,MSFT",
        "--origin",
        "2007-12-26",
        "--horizon",
        "60",
    )
    assert res["ticker"] == "TOTAL" and res["tickers"] == ["AAPL", "IBM", "MSFT"]
    assert res["last_date"] == "2007-12-26" and res["actual_days"] == 60
    first = res["points"][0]
    assert first["date"] == "2007-12-27" and first["actual"] is not None
    # The 2008 sell-off: the total close 60 trading days later sat below the forecast's centre.
    assert res["points"][-1]["actual"] < res["points"][-1]["median"]
    assert 0 <= res["inside95"] <= 60 and "It was actually" in res["narrative"]
