"""A universe on the dashboard: the ticker picker searches, the chart draws the most traded."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tickerlake.cli import app

from .conftest import serve

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DRAWN = '[data-drawn="true"]'


@pytest.fixture(scope="module")
def universe_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``tickerlake serve`` on 30 simulated tickers (S00001…S00030) over 2023."""
    lake = tmp_path_factory.mktemp("universe") / "lake"
    for args in (["ingest", "sim", "--universe", "30", "--start", "2023-01-01"], ["etl"]):
        result = CliRunner().invoke(app, ["--lake", str(lake), *args, "--json"])
        assert result.exit_code == 0, result.stdout
    with serve(lake) as url:
        yield url


def traces(page: Any) -> list[str]:
    """The chart's ticker series (a single ticker's chart also has its volume)."""
    names = page.evaluate("document.getElementById('market-chart').data.map(t => t.name)")
    return [n for n in names if n != "Volume"]


def wait_for(page: Any, names: list[str]) -> None:
    page.wait_for_function(
        "(want) => { const c = document.getElementById('market-chart');"
        " const got = c.data.map(t => t.name).filter(n => n !== 'Volume').sort();"
        " return c.dataset.drawn === 'true' && JSON.stringify(got) === JSON.stringify(want); }",
        arg=sorted(names),
    )


def test_the_picker_searches_a_universe(universe_server: str, page: Any, tmp_path: Path) -> None:
    page.goto(universe_server)
    page.wait_for_selector("#market-chart" + DRAWN)
    # 24 chips, not 30; the chart draws the 20 most traded of the 30.
    assert page.locator("#ticker-chips .chip[data-ticker]").count() == 24
    assert page.get_attribute("#ticker-search", "placeholder") == "Search 30 tickers…"
    assert len(traces(page)) == 20
    # A ticker without a chip, found by search: shown alone, with a chip of its own.
    page.fill("#ticker-search", "S00030")
    page.dispatch_event("#ticker-search", "change")
    wait_for(page, ["S00030"])
    assert urllib.parse.unquote(page.url).endswith("tickers=S00030")
    assert page.get_attribute('#ticker-chips [data-ticker="S00030"]', "aria-pressed") == "true"
    # A second one is added to the selection.
    page.fill("#ticker-search", "s00002")
    page.dispatch_event("#ticker-search", "change")
    wait_for(page, ["S00002", "S00030"])
    assert sorted(traces(page)) == ["S00002", "S00030"]
