"""The dashboard in a real browser: every page loads and is populated, the selection can be
changed (tickers, window, measure), an anomaly opens with its contributors, a query runs,
errors show clearly, the URL reproduces the view, and a screenshot of each page is saved."""

from __future__ import annotations

import csv
import io
import json
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tickerlake.config import DEFAULT_TICKERS
from tickerlake.lake.contract import TABLES

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DRAWN = '[data-drawn="true"]'


def api(server: str, path: str, **params: Any) -> Any:
    url = server + path.lstrip("/") + ("?" + urllib.parse.urlencode(params) if params else "")
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.load(resp)


#: The page asks for some 4xx answers on purpose (the browser logs them as failed loads).
ALLOW_4XX = True


def chart_names(page: Any, chart_id: str) -> list[str]:
    return page.evaluate(f"document.getElementById('{chart_id}').data.map(t => t.name)")


def wait_traces(page: Any, chart_id: str, count: int) -> None:
    page.wait_for_function(
        f"() => {{ const c = document.getElementById('{chart_id}');"
        f" return c.dataset.drawn === 'true' && c.data && c.data.length === {count}; }}"
    )


# --------------------------------------------------------------------------- Market


def test_market_page(server: str, page: Any, shots: Callable[[Any, str], Path]) -> None:
    page.goto(server)
    page.wait_for_selector("#market-chart" + DRAWN)
    assert chart_names(page, "market-chart") == list(DEFAULT_TICKERS)
    assert page.locator("#stats-table tbody tr").count() == 8
    assert page.locator("#chart-sub").inner_text().startswith("Jun 2, 1997 – Dec 12, 2023")
    shots(page, "market")

    # Hide a ticker: the URL says so and the chart redraws without it.
    page.click('#ticker-chips [data-ticker="NFLX"]')
    wait_traces(page, "market-chart", 7)
    assert "NFLX" not in chart_names(page, "market-chart")
    assert "tickers=" in page.url and "NFLX" not in urllib.parse.unquote(page.url)

    # A preset window: one of the original study's.
    page.select_option("#window-select", "study-2022")
    page.wait_for_function("() => document.getElementById('chart-sub').textContent.startsWith('Apr 1, 2022')")
    page.wait_for_selector("#market-chart" + DRAWN)
    first_day = page.evaluate("document.getElementById('market-chart').data[0].x[0]")
    assert first_day == "2022-04-01" and "window=study-2022" in page.url

    # Normalised to 100 at the window start.
    page.click('#measure [data-value="normalised"]')
    page.wait_for_function(
        "() => document.getElementById('market-chart').layout.yaxis.title.text.startsWith('Close rebased')"
    )
    firsts = page.evaluate("document.getElementById('market-chart').data.map(t => t.y.find(v => v !== null))")
    assert firsts and all(abs(v - 100) < 1e-6 for v in firsts)

    # A log price axis.
    page.click('#y-scale [data-value="log"]')
    page.wait_for_function("() => document.getElementById('market-chart').layout.yaxis.type === 'log'")

    # Legend toggling hides a trace.
    page.locator("#market-chart .legendtoggle").first.click()
    page.wait_for_function("() => document.getElementById('market-chart').data[0].visible === 'legendonly'")

    # The URL is the view: a reload shows the same selection.
    page.reload()
    page.wait_for_selector("#market-chart" + DRAWN)
    assert page.get_attribute('#ticker-chips [data-ticker="NFLX"]', "aria-pressed") == "false"
    assert page.input_value("#window-select") == "study-2022"
    assert page.get_attribute('#measure [data-value="normalised"]', "aria-pressed") == "true"
    assert page.evaluate("document.getElementById('market-chart').layout.yaxis.type") == "log"
    assert len(chart_names(page, "market-chart")) == 7

    # One ticker alone: candles and volume.
    page.dblclick('#ticker-chips [data-ticker="AAPL"]')
    page.wait_for_function(
        "() => { const c = document.getElementById('market-chart');"
        " return c.dataset.drawn === 'true' && c.data && c.data[0].type === 'candlestick'; }"
    )
    assert page.evaluate("document.getElementById('market-chart').data[1].type") == "bar"
    assert page.locator("#stats-table tbody tr").count() == 1
    shots(page, "market-candles")


def test_market_shows_a_bad_window_as_an_error(server: str, page: Any) -> None:
    page.goto(server + "?start=2030-01-01")
    page.wait_for_selector("#market-chart" + DRAWN)
    assert "outside the data" in page.inner_text("#chart-status .error-box")


# --------------------------------------------------------------------------- Insights


def test_insights_page(server: str, page: Any, shots: Callable[[Any, str], Path]) -> None:
    page.goto(server + "insights")
    page.wait_for_selector("#anomaly-chart" + DRAWN)
    page.wait_for_selector("#summary-body .summary-list li")
    page.wait_for_selector('#movers-body [data-direction="bottom"] .narrative')
    page.wait_for_selector("#forecast-chart" + DRAWN)

    # Movers and period-over-period, worded as QuickSight did, for the window's last day.
    top = page.inner_text('#movers-body [data-direction="top"] .narrative')
    bottom = page.inner_text('#movers-body [data-direction="bottom"] .narrative')
    assert top.startswith("Top total close movers for Dec 12, 2023 are: ")
    assert bottom.startswith("Bottom total close movers for Dec 12, 2023 are: ")
    assert page.inner_text("#period-narrative").startswith("Total close for Dec 12, 2023 ")

    # Another day: the original study's movers sentence.
    page.fill("#day", "2009-01-28")
    page.dispatch_event("#day", "change")
    page.wait_for_function(
        "() => (document.querySelector('#movers-body [data-direction=\"top\"] .narrative') || {}).textContent"
        "?.includes('Jan 28, 2009')"
    )
    expected = api(server, "api/insights/movers", date="2009-01-28")["narrative"]
    assert page.inner_text('#movers-body [data-direction="top"] .narrative') == expected
    page.wait_for_function(
        "() => document.getElementById('period-narrative')?.textContent.startsWith('Total close for Jan 28, 2009')"
    )
    assert "date=2009-01-28" in page.url

    # Anomalies: markers on the chart, one chip each; opening one shows its contributors.
    listed = api(server, "api/insights/anomalies")["anomalies"]
    chips = page.locator("#anomaly-chips .anomaly-chip")
    assert chips.count() == len(listed) > 0
    assert page.evaluate("document.getElementById('anomaly-chart').data[1].x.length") == len(listed)
    # Clicking a marker on the chart opens that anomaly too.
    strongest = max(listed, key=lambda a: a["score"])
    other = next(a for a in listed if a["date"] != strongest["date"])
    index = [a["date"] for a in listed].index(other["date"])
    page.locator("#anomaly-chart").scroll_into_view_if_needed()
    point = page.locator("#anomaly-chart .scatterlayer .trace").nth(1).locator(".point").nth(index)
    box = point.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function(
        f"() => document.getElementById('anomaly-narrative')?.textContent.includes({json.dumps(other['narrative'][:60])})"
    )

    # Its chip opens the strongest one, with every contributor ranked.
    page.click(f'#anomaly-chips [data-date="{strongest["date"]}"]')
    page.wait_for_function(
        f"() => document.getElementById('anomaly-narrative')?.textContent === {json.dumps(strongest['narrative'])}"
    )
    assert page.inner_text("#anomaly-narrative") == strongest["narrative"]
    assert page.inner_text("#anomaly-narrative").startswith("An anomaly was detected on ")
    rows = page.locator("#contrib-table tbody tr")
    assert rows.count() == len(strongest["contributions"])
    assert rows.first.locator("td").first.inner_text() == strongest["contributions"][0]["ticker"]
    assert f"anomaly={strongest['date']}" in page.url

    # Forecast with both bands, and the recession table (sortable).
    assert "80% prediction interval" in page.inner_text("#forecast-narrative")
    names = chart_names(page, "forecast-chart")
    assert "80% interval" in names and "95% interval" in names and "Actual" not in names
    # From a past origin: what happened next is drawn beside the bands.
    page.fill("#forecast-origin", "2008-05-19")
    page.dispatch_event("#forecast-origin", "change")
    page.wait_for_function(
        "() => document.getElementById('forecast-title')?.textContent.includes('May 19, 2008')"
    )
    page.wait_for_selector("#forecast-chart" + DRAWN)
    assert "Actual" in chart_names(page, "forecast-chart") and "origin=2008-05-19" in page.url
    assert "It was actually" in page.inner_text("#forecast-narrative")
    page.wait_for_selector("#recession-table tbody tr")
    assert page.inner_text("#recession-narrative").startswith("The original study's 2008 focus window")
    page.click("#recession-table thead th:nth-child(3)")
    returns = [
        float(x)
        for x in page.eval_on_selector_all(
            "#recession-table tbody tr td:nth-child(3)", "els => els.map(e => e.dataset.sort)"
        )
    ]
    assert returns == sorted(returns)
    page.wait_for_selector("#compare-table tbody tr")
    assert page.locator("#compare-table tbody tr").count() == 7
    for label in ("Top ranked", "Bottom ranked", "Extremes", "Growth rate", "Period to date"):
        assert page.locator(".kind", has_text=label).count() >= 1
    shots(page, "insights")


def test_insights_follow_the_ticker_selection(server: str, page: Any) -> None:
    page.goto(server + "insights?tickers=AAPL,MSFT&window=study-2008-focus")
    page.wait_for_selector("#recession-table tbody tr")
    tickers = page.eval_on_selector_all(
        "#recession-table tbody tr td:nth-child(2)", "els => els.map(e => e.dataset.sort)"
    )
    assert sorted(tickers) == ["AAPL", "MSFT"]
    page.wait_for_selector('#movers-body [data-direction="top"] .narrative')
    assert "Jan 28, 2009" in page.inner_text('#movers-body [data-direction="top"] .narrative')
    page.wait_for_selector("#anomaly-chart" + DRAWN)


# --------------------------------------------------------------------------- SQL


def run_sql(page: Any, sql: str) -> None:
    page.fill("#editor", sql)
    page.click("#run")
    page.wait_for_function(
        "() => !document.getElementById('run').disabled && document.getElementById('results-wrap').dataset.drawn === 'true'"
    )


def test_sql_page(server: str, page: Any, shots: Callable[[Any, str], Path]) -> None:
    page.goto(server + "sql")
    run_sql(
        page,
        "SELECT ticker, count(*) AS days, max(close) AS top\nFROM market.daily_bars\nGROUP BY ticker\nORDER BY ticker",
    )
    headers = page.eval_on_selector_all("#results-table thead th", "els => els.map(e => e.textContent)")
    assert headers == ["ticker", "days", "top"]
    assert page.locator("#results-table tbody tr").count() == 8
    assert page.inner_text("#status").startswith("8 rows in")

    # Forbidden and broken statements get clear errors.
    run_sql(page, "DROP TABLE market.daily_bars")
    assert page.inner_text("#query-error").startswith("QueryRefused: refused")
    run_sql(page, "SELEC 1")
    assert "QueryError" in page.inner_text("#query-error") and "syntax error" in page.inner_text(
        "#query-error"
    )

    # A named query with parameters, paged, charted and exported.
    page.click('#named-list li[data-name="daily_total_close"]')
    page.wait_for_function("() => document.getElementById('status').textContent.includes('62 rows')")
    assert page.input_value("#param-start") == "2022-04-01"
    assert page.locator("#results-table tbody tr").count() == 50
    shots(page, "sql")
    assert "Rows 1–50 of 62" in page.inner_text("#pager-info")
    page.click("#page-next")
    assert page.locator("#results-table tbody tr").count() == 12
    page.click("#tab-chart")
    page.wait_for_selector("#results-chart" + DRAWN)
    assert page.evaluate("document.getElementById('results-chart').data[0].x.length") == 62
    shots(page, "sql-chart")
    with page.expect_download() as download:
        page.click("#export")
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows[0] == ["date", "total_close", "tickers"] and len(rows) == 63

    # The lake's history, newest first (the export ran the query once more).
    page.wait_for_function(
        "() => document.querySelector('#history-list li .sql')?.textContent.startsWith('daily_total_close(')"
    )
    assert page.locator("#history-list li").count() >= 4
    assert " · ok · " in page.locator("#history-list li").first.inner_text().replace("\n", " ")
    page.click("#tab-table")

    # The URL reopens the query and runs it.
    page.reload()
    page.wait_for_function("() => document.getElementById('status').textContent.includes('62 rows')")
    assert page.inner_text("#query-title") == "daily_total_close"


# --------------------------------------------------------------------------- Catalog and API


def test_catalog_page(server: str, page: Any, shots: Callable[[Any, str], Path]) -> None:
    page.goto(server + "catalog")
    page.wait_for_selector("#detail-body" + DRAWN)
    names = page.eval_on_selector_all("#table-list li[data-table]", "els => els.map(e => e.dataset.table)")
    assert {"market.daily_bars", "market.corporate_actions", "raw.daily_bars"} <= set(names)
    assert page.inner_text("#detail-name") == "market.daily_bars"
    # One row per column of the contract's market.daily_bars (raw_close included).
    assert page.locator("#schema-table tbody tr").count() == len(TABLES["market.daily_bars"].fields) == 11
    assert page.locator("#snapshot-table tbody tr").count() >= 1
    assert "current" in page.inner_text("#snapshot-table tbody tr:first-child")
    assert page.locator("#crawl-table tbody tr").count() >= 2
    shots(page, "catalog")

    page.click('#table-list li[data-table="raw.daily_bars"]')
    page.wait_for_function("() => document.getElementById('detail-body').textContent.includes('source=sim')")
    assert "table=raw.daily_bars" in page.url
    assert "partition key" in page.inner_text("#schema-table")
    shots(page, "catalog-raw")


def test_api_reference_page(server: str, page: Any, shots: Callable[[Any, str], Path]) -> None:
    page.goto(server + "docs")
    assert page.locator(".endpoint").count() >= 15
    assert "/api/insights/anomalies" in page.inner_text("main")
    shots(page, "api")
