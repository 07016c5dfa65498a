"""The analyst's console in a real browser: save a query, run it, export its CSV and read the
file; cancel a long query; (Market) total close, recession shading and charts, drill-down."""

from __future__ import annotations

import csv
import io
import json
import urllib.request
from collections.abc import Callable
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


#: The page asks for some 4xx answers on purpose (the browser logs them as failed loads).
ALLOW_4XX = True


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
    # One type chooser per $parameter, guessed from its name.
    assert page.eval_on_selector_all(
        "#save-params select", "els => els.map(e => [e.dataset.param, e.value])"
    ) == [
        ["start", "date"],
        ["end", "date"],
    ]
    page.click("#save-ok")
    page.wait_for_selector('#saved-list li[data-name="e2e_days"]')
    assert page.inner_text("#query-title") == "e2e_days"
    # Its $start and $end became parameters, filled with the page's defaults.
    assert page.input_value("#param-start") == "2022-04-01" and page.input_value("#param-end") == "2022-06-30"
    saved = json.load(urllib.request.urlopen(server + "api/saved/e2e_days", timeout=30))
    assert saved["description"] == "Trading days per ticker in a range"
    assert [(p["name"], p["type"]) for p in saved["params"]] == [("start", "date"), ("end", "date")]

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


def _api(server: str, path: str) -> Any:
    with urllib.request.urlopen(server + path, timeout=30) as resp:
        return json.load(resp)


def test_market_total_close_shading_and_recession_charts(
    server: str, page: Any, shots: Callable[[Any, str], Path]
) -> None:
    page.goto(server + "?tickers=AAPL,MSFT&total=1")
    page.wait_for_selector("#market-chart" + DRAWN)
    names = page.evaluate("document.getElementById('market-chart').data.map(t => t.name)")
    assert names == ["AAPL", "MSFT", "Total close"]
    # The total is the sum of the two closes on every day.
    bars = _api(server, "api/bars?tickers=AAPL,MSFT&total=true")
    last = page.evaluate(
        "(() => { const d = document.getElementById('market-chart').data; return d.map(t => t.y[t.y.length - 1]); })()"
    )
    assert last[2] == pytest.approx(last[0] + last[1]) and last[2] == pytest.approx(
        bars["total"]["values"][-1]
    )
    assert page.locator("#stats-table tbody tr").count() == 3  # AAPL, MSFT and the total

    # Every built-in window inside the history is shaded, with one legend entry per family.
    shapes = page.evaluate(
        "document.getElementById('market-chart').layout.shapes.map(s => [s.x0, s.x1, s.legendgroup, s.showlegend])"
    )
    windows = _api(server, "api/windows")
    assert sorted((s[0], s[1]) for s in shapes) == sorted((w["start"], w["end"]) for w in windows)
    assert sorted(s[2] for s in shapes if s[3]) == ["Bear markets", "NBER recessions", "The study's windows"]
    legend = page.locator("#market-chart .legend .traces")
    assert legend.count() == 6  # two tickers, the total and three window families
    shots(page, "market-recessions")
    # The legend toggles a family's shading.
    page.locator("#market-chart .legend .traces", has_text="NBER recessions").click()
    page.wait_for_function(
        "() => document.getElementById('market-chart').layout.shapes.filter(s => s.legendgroup === 'NBER recessions')"
        ".every(s => s.visible === false || s.visible === 'legendonly')"
    )

    # Recession bars: one bar per window and ticker, the numbers of the recession insight.
    page.wait_for_selector("#recession-chart" + DRAWN)
    cmp = _api(server, "api/insights/recessions/compare?tickers=AAPL,MSFT")
    data = page.evaluate("document.getElementById('recession-chart').data.map(t => [t.name, t.x, t.y])")
    by_name = {name: dict(zip(x, y, strict=True)) for name, x, y in data}
    for w in cmp["windows"]:
        assert by_name["AAPL"][w["name"]] == pytest.approx(w["tickers"]["AAPL"]["return_pct"])
        assert by_name["Equal-weight basket"][w["name"]] == pytest.approx(w["basket"]["return_pct"])
    page.click('#recession-metric [data-value="max_drawdown_pct"]')
    page.wait_for_function(
        f"() => Math.abs(document.getElementById('recession-chart').data[0].y[1] - "
        f"{cmp['windows'][1]['tickers']['AAPL']['max_drawdown_pct']}) < 1e-9"
    )
    # Drawdowns: 0 at each new high, never above it.
    page.wait_for_selector("#drawdown-chart" + DRAWN)
    dd = page.evaluate("document.getElementById('drawdown-chart').data[0].y")
    assert max(v for v in dd if v is not None) == 0 and min(v for v in dd if v is not None) < -30
    shots(page, "market-recession-charts")

    # Exports: the chart's data as CSV and as PNG, the selection in the file names.
    with page.expect_download() as got:
        page.click("#market-card .export-csv")
    assert got.value.suggested_filename == "tickerlake-market-prices-aapl-msft.csv"
    rows = list(csv.reader(io.StringIO(Path(got.value.path()).read_text())))
    assert rows[0] == ["series", "x", "y"] and len(rows) == 1 + 3 * len(bars["dates"])
    with page.expect_download() as got:
        page.click("#market-card .export-png")
    assert got.value.suggested_filename == "tickerlake-market-prices-aapl-msft.png"
    assert Path(got.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with page.expect_download() as got:
        page.click("#recession-card .export-csv")
    assert got.value.suggested_filename.startswith(
        "tickerlake-market-return-and-maximum-drawdown-per-window-aapl-msft"
    )


def test_drill_down_from_a_chart_click_and_zoom_in_the_url(server: str, page: Any) -> None:
    page.goto(server + "?tickers=AAPL,MSFT&window=nber-2020")
    page.wait_for_selector("#market-chart" + DRAWN)
    # Click the point of 2020-03-16 (the crash's worst day in the simulated market too).
    dates = page.evaluate("document.getElementById('market-chart').data[0].x")
    i = dates.index("2020-03-16")
    box = page.evaluate(
        """(i) => { const c = document.getElementById('market-chart'); const xa = c._fullLayout.xaxis;
        const ya = c._fullLayout.yaxis; const t = c.data[0]; const r = c.querySelector('.nsewdrag').getBoundingClientRect();
        return [r.left + xa.d2p(t.x[i]), r.top + ya.d2p(t.y[i])]; }""",
        i,
    )
    page.mouse.click(box[0], box[1])
    page.wait_for_selector("#day-body" + DRAWN)
    assert "day=2020-03-16" in page.url
    assert page.inner_text("#day-title") == "Mar 16, 2020"
    movers = _api(server, "api/insights/movers?date=2020-03-16&n=3&tickers=AAPL,MSFT")
    first = page.eval_on_selector_all(
        "#day-movers-table tbody tr:first-child td", "els => els.map(e => e.textContent)"
    )
    assert first[1] == movers["rows"][0]["ticker"]
    period = _api(server, "api/insights/period?date=2020-03-16&grain=month&tickers=AAPL,MSFT")
    card = page.inner_text('#day-periods [data-grain="month"]')
    assert f"{period['pct_change']:+.2f}%" in card and "Mar 1, 2020 – Mar 31, 2020 vs Feb 1, 2020" in card
    assert page.locator("#day-periods .period-card").count() == 4

    # Zooming writes the range into the URL, and the URL restores it.
    page.evaluate("Plotly.relayout('market-chart', {'xaxis.range': ['2020-03-01', '2020-03-31']})")
    page.wait_for_function("() => location.search.includes('zoom=2020-03-01..2020-03-31')")
    url = page.url
    page.goto(url)
    page.wait_for_selector("#market-chart" + DRAWN)
    rng = page.evaluate("document.getElementById('market-chart').layout.xaxis.range")
    assert [r[:10] for r in rng] == ["2020-03-01", "2020-03-31"]
    page.wait_for_selector("#day-body" + DRAWN)  # the chosen day reopens too
    assert page.inner_text("#day-title") == "Mar 16, 2020"


def test_every_card_exports_its_tables(server: str, page: Any) -> None:
    page.goto(server + "insights?date=2009-01-28&tickers=AAPL,MSFT,NVDA,AMZN")
    page.wait_for_selector('#movers-body [data-direction="bottom"] table')
    with page.expect_download() as got:
        page.click("#movers-card .export-csv")
    assert got.value.suggested_filename == "tickerlake-insights-top-and-bottom-movers-aapl-msft-nvda-amzn.csv"
    rows = list(csv.reader(io.StringIO(Path(got.value.path()).read_text())))
    top = _api(server, "api/insights/movers?date=2009-01-28&n=3&tickers=AAPL,MSFT,NVDA,AMZN")
    assert rows[0][0] == "part" and len(rows) == 1 + 3 + 3
    assert [r[0] for r in rows[1:]] == ["Top movers"] * 3 + ["Bottom movers"] * 3
    assert rows[1][1] == top["rows"][0]["ticker"]
    # Charts of every page have PNG export too.
    assert page.locator("#anomaly-chart").count() == 1
    assert page.locator(".card:has(#anomaly-chart) .export-png").count() == 1
