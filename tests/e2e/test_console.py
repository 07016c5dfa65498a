"""The analyst's console in a real browser: save a query, run it, export its CSV and read the
file; cancel a long query; (Market) total close, recession shading and charts, drill-down."""

from __future__ import annotations

import csv
import io
import json
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DRAWN = '[data-drawn="true"]'
# The simulated lake's eight tickers each traded every NYSE day of 2022-04-01..2022-06-30:
# April 20 (Good Friday closed), May 21 (Memorial Day), June 21 (Juneteenth observed).
Q2_2022_DAYS = 62


def _delete_saved(server: str, name: str) -> None:
    req = urllib.request.Request(f"{server}api/saved/{name}", method="DELETE")
    try:
        urllib.request.urlopen(req, timeout=30).close()
    except urllib.error.HTTPError as e:
        assert e.code == 404


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A new tab; the test fails if the page logs a JavaScript error."""
    tab = browser.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    tab.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    tab.set_default_timeout(20_000)
    yield tab
    tab.close()
    real = [e for e in errors if "status of 4" not in e]
    assert not real, real


def test_save_run_export_csv(server: str, page: Any, shots: Callable[[Any, str], Path]) -> None:
    _delete_saved(server, "e2e_days")
    page.goto(server + "sql")
    page.wait_for_selector("#results-wrap" + DRAWN, state="attached")
    sql = (
        "SELECT ticker, count(*) AS days\nFROM market.daily_bars\n"
        "WHERE date BETWEEN $start AND $end\nGROUP BY ticker\nORDER BY ticker"
    )
    page.fill("#editor", sql)
    page.click("#save")
    page.fill("#save-name", "e2e_days")
    page.fill("#save-desc", "Trading days per ticker in a range")
    page.click("#save-ok")
    page.wait_for_selector('#saved-list li[data-name="e2e_days"]')
    assert page.inner_text("#query-title") == "e2e_days"
    # Its $start and $end became parameters, filled with the page's defaults.
    assert page.input_value("#param-start") == "2022-04-01" and page.input_value("#param-end") == "2022-06-30"
    saved = json.load(urllib.request.urlopen(server + "api/saved/e2e_days", timeout=30))
    assert saved["description"] == "Trading days per ticker in a range"

    page.click("#run")
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('8 rows')")
    cells = page.eval_on_selector_all("#results-table tbody td", "els => els.map(e => e.textContent)")
    assert cells[:2] == ["AAPL", str(Q2_2022_DAYS)] and cells[1::2] == [str(Q2_2022_DAYS)] * 8
    assert "named=e2e_days" in page.url
    shots(page, "sql-saved")

    with page.expect_download() as download:
        page.click("#export")
    assert download.value.suggested_filename == "tickerlake-e2e_days-2022-04-01-2022-06-30.csv"
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows[0] == ["ticker", "days"] and len(rows) == 9
    assert rows[1] == ["AAPL", str(Q2_2022_DAYS)] and {r[1] for r in rows[1:]} == {str(Q2_2022_DAYS)}

    # The run is in the lake's history; a reload reopens and reruns the saved query.
    page.wait_for_function(
        "() => document.querySelector('#history-list li .sql')?.textContent.startsWith('e2e_days(')"
    )
    page.reload()
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('8 rows')")
    assert page.inner_text("#query-title") == "e2e_days"

    # Delete it from the page.
    page.click("#save")
    page.once("dialog", lambda d: d.accept())
    page.click("#save-delete")
    page.wait_for_selector('#saved-list li[data-name="e2e_days"]', state="detached")
    _delete_saved(server, "e2e_days")  # 404: it is gone


def test_a_long_query_is_cancelled_from_the_page(server: str, page: Any) -> None:
    page.goto(server + "sql")
    page.wait_for_selector("#results-wrap" + DRAWN, state="attached")
    page.select_option("#timeout", "30")
    page.fill(
        "#editor", "SELECT count(*) FROM range(100000) a, range(100000) b WHERE (a.range * b.range) % 7 = 3"
    )
    page.click("#run")
    page.wait_for_selector("#cancel:not(.hidden)")
    page.wait_for_timeout(500)
    page.click("#cancel")
    page.wait_for_function(
        "() => document.getElementById('status').textContent.startsWith('cancelled after')"
    )
    assert "query cancelled" in page.inner_text("#query-error")
    assert page.locator("#cancel.hidden").count() == 1
