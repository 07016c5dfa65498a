"""The Catalog page lists the splits the ETL suspects in raw-only prices (never applied)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tickerlake.cli import app

from .conftest import serve

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real" / "yahoo_2004_2008.csv"


@pytest.fixture(scope="module")
def raw_only_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``tickerlake serve`` on AAPL's real 2004-2008 closes as traded, without an adjusted close."""
    root = tmp_path_factory.mktemp("raw-only")
    src = root / "aapl.csv"
    with open(REAL, encoding="utf-8") as f, open(src, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["Ticker", "Date", "Open", "High", "Low", "Close", "Volume"])
        for r in csv.DictReader(f):
            if r["Ticker"] == "AAPL":
                writer.writerow([r[k] for k in ("Ticker", "Date", "Open", "High", "Low", "Close", "Volume")])
    lake = root / "lake"
    for args in (["ingest", "csv", str(src)], ["etl"]):
        result = CliRunner().invoke(app, ["--lake", str(lake), *args, "--json"])
        assert result.exit_code == 0, result.stdout
    with serve(lake) as url:
        yield url


def test_catalog_page_lists_the_suspected_split(raw_only_server: str, page: Any) -> None:
    page.goto(raw_only_server + "catalog")
    page.wait_for_selector('#suspected-body[data-drawn="true"]')
    rows = page.eval_on_selector_all(
        "#suspected-table tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    assert rows == [["AAPL", "2005-02-28", "2:1"]]
    assert "never applied" in page.inner_text("#suspected-card")
