"""Web benchmark: latency of each API endpoint and time to a fully drawn Market page.

Against a ``tickerlake serve`` on the default lake (started here on a free port unless
``--url`` names a running one), every endpoint is asked a handful of different questions
once each (*cold*: the server computes the answer) and then asked them again and again
(*warm*: the answer comes from the per-lake-state cache). Cold and warm requests are
reported apart (median and max of the cold ones, median and p95 of the warm ones), and the
target is judged on the cold ones, which a user waits for: the slowest cold request of bars
and of each insight < 100 ms. Then headless Chromium (Debian's ``/usr/bin/chromium``, a fresh profile) loads
the Market page five times and reports the time from navigation to the chart being drawn
(the first load also fetches and compiles plotly.js). Target: < 1.5 s.

Usage:
    python bench/web.py                        # serve ./lake (make demo builds it) and measure
    python bench/web.py --lake /path/to/lake --runs 40
    python bench/web.py --url http://127.0.0.1:8050/   # a running server (cold figures may be warm)
    python bench/web.py --no-browser --json
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

TL = [str(Path(sys.executable).parent / "tickerlake")]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TARGET_MS = 100.0
TARGET_PAGE_S = 1.5

# (name, method, path, variants): each variant is a query string (GET) or a JSON body (POST).
ENDPOINTS: list[tuple[str, str, str, list[Any]]] = [
    ("bars", "GET", "/api/bars", [
        "", "measure=normalised", "window=study-2008", "tickers=AAPL,MSFT&window=study-2022", "total=true",
    ]),
    ("ohlc", "GET", "/api/ohlc", [
        "ticker=AAPL", "ticker=AAPL&window=study-2022", "ticker=NVDA&measure=normalised", "ticker=MSFT&window=nber-2020",
    ]),
    ("insights/movers", "GET", "/api/insights/movers", [
        "date=2009-01-28", "date=2022-06-30&bottom=true", "", "date=2008-10-07", "date=2020-03-16&measure=volume",
    ]),
    ("insights/period", "GET", "/api/insights/period", [
        "date=2022-06-30", "date=2009-01-28&grain=week", "grain=month", "date=2020-03-16&grain=quarter",
    ]),
    ("insights/period-to-date", "GET", "/api/insights/period-to-date", ["date=2022-06-15", "grain=year"]),
    ("insights/growth", "GET", "/api/insights/growth", ["", "window=study-2008-focus", "window=nber-2020&grain=week"]),
    ("insights/ranked", "GET", "/api/insights/ranked", ["", "window=study-2022&bottom=true", "window=nber-2008"]),
    ("insights/extremes", "GET", "/api/insights/extremes", ["", "window=study-2008", "window=bear-2022"]),
    ("insights/anomalies", "GET", "/api/insights/anomalies", [
        "", "window=study-2008&sensitivity=0.9", "window=nber-2020", "tickers=AAPL,MSFT,NVDA",
    ]),
    ("insights/forecast", "GET", "/api/insights/forecast", ["ticker=AAPL", "ticker=NVDA&horizon=60", "ticker=MSFT"]),
    ("insights/recessions", "GET", "/api/insights/recessions", [
        "", "period=nber-2001", "period=nber-2020", "period=bear-2022", "period=study-2022",
    ]),
    ("insights/recessions/compare", "GET", "/api/insights/recessions/compare", ["", "tickers=AAPL,MSFT"]),
    ("insights/summary", "GET", "/api/insights/summary", ["", "window=study-2008-focus", "window=nber-2020"]),
    ("meta", "GET", "/api/meta", [""]),
    ("catalog", "GET", "/api/catalog", [""]),
    ("query (SQL)", "POST", "/api/query", [
        {"sql": "SELECT ticker, count(*) AS days, avg(close) AS avg_close FROM market.daily_bars GROUP BY ticker"},
        {"named": "daily_total_close", "params": {"start": "2008-01-01", "end": "2009-12-31"}},
    ]),
]  # fmt: skip


def start_server(lake: Path) -> tuple[subprocess.Popen[str], str]:
    """``tickerlake serve`` on a free loopback port; returns the process and its URL."""
    proc = subprocess.Popen(
        [*TL, "--lake", str(lake), "serve", "--host", "127.0.0.1", "--port", "0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        err = proc.stderr.read() if proc.stderr else ""
        raise SystemExit(f"tickerlake serve did not start: {err.strip()}")
    return proc, json.loads(line)["url"]


def stop_server(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Client:
    """One keep-alive HTTP connection (as a browser tab uses)."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=120)

    def call(self, method: str, path: str, variant: Any) -> tuple[float, int]:
        """Milliseconds from sending the request to having read the whole answer, and the status."""
        if method == "GET":
            target, body, headers = path + (f"?{variant}" if variant else ""), None, {}
        else:
            target, body, headers = path, json.dumps(variant).encode(), {"Content-Type": "application/json"}
        start = time.perf_counter()
        self.conn.request(method, target, body=body, headers=headers)
        resp = self.conn.getresponse()
        resp.read()
        return (time.perf_counter() - start) * 1000, resp.status


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def measure_api(url: str, runs: int) -> list[dict[str, Any]]:
    client = Client(url)
    out = []
    for name, method, path, variants in ENDPOINTS:
        cold: list[float] = []
        for v in variants:
            ms, status = client.call(method, path, v)
            if status >= 400:
                raise SystemExit(
                    f"{method} {path}?{v} answered {status}: is this the default simulated lake?"
                )
            cold.append(ms)
        warm = [client.call(method, path, variants[i % len(variants)])[0] for i in range(runs)]
        target = name == "bars" or name.startswith("insights")
        out.append(
            {
                "endpoint": name,
                "cold_requests": len(cold),
                "warm_requests": len(warm),
                "cold_median_ms": statistics.median(cold),
                "cold_max_ms": max(cold),
                "warm_median_ms": statistics.median(warm),
                "warm_p95_ms": p95(warm),
                "target_ms": TARGET_MS if target else None,
                "meets_target": (max(cold) < TARGET_MS) if target else None,
            }
        )
    return out


# Where a page load's time goes, from the browser's own timings (seconds).
PHASES_JS = """() => {
  const res = performance.getEntriesByType('resource');
  const nav = performance.getEntriesByType('navigation')[0];
  const plotly = res.find(r => r.name.includes('plotly.min.js'));
  const bars = res.find(r => r.name.includes('/api/'));
  const s = (x) => Math.round(x) / 1000;
  return {
    html: s(nav.responseEnd),
    plotly_download: s(plotly ? plotly.responseEnd - plotly.startTime : 0),
    plotly_compile_and_run: s(nav.domContentLoadedEventStart - (plotly ? plotly.responseEnd : nav.responseEnd)),
    data: s(bars ? bars.responseEnd - bars.startTime : 0),
    draw: s(window.__tl.market - (bars ? bars.responseEnd : nav.domContentLoadedEventEnd)),
  };
}"""


def measure_browser(url: str, loads: int) -> dict[str, Any]:
    """Seconds from navigation start to a fully drawn Market chart, cold first then warm."""
    try:
        from playwright.sync_api import sync_playwright
    except ModuleNotFoundError:
        return {"skipped": "playwright is not installed (pip install playwright==1.65.2)"}
    if not Path(CHROMIUM).exists():
        return {"skipped": f"{CHROMIUM} not found (apt-get install chromium)"}
    profile = tempfile.mkdtemp(prefix="tickerlake-bench-")
    times: list[float] = []
    phases: list[dict[str, float]] = []
    insights: list[float] = []
    try:
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
                viewport={"width": 1440, "height": 900},
            )  # fmt: skip
            for _ in range(loads):
                page = ctx.new_page()
                page.goto(url, wait_until="commit")
                page.wait_for_function("() => window.__tl && window.__tl.market", timeout=60_000)
                times.append(page.evaluate("window.__tl.market") / 1000)
                phases.append(page.evaluate(PHASES_JS))
                page.close()
            page = ctx.new_page()
            page.goto(url + "insights", wait_until="commit")
            page.wait_for_function(
                "() => window.__tl && window.__tl.anomalies && window.__tl.forecast", timeout=60_000
            )
            insights.append(page.evaluate("Math.max(window.__tl.anomalies, window.__tl.forecast)") / 1000)
            ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return {
        "market_first_load_s": times[0],
        "market_first_load_phases_s": phases[0],
        "market_warm_phases_s": phases[-1],
        "market_warm_median_s": statistics.median(times[1:]) if len(times) > 1 else times[0],
        "market_loads": times,
        "insights_charts_drawn_s": insights[0],
        "target_s": TARGET_PAGE_S,
        "meets_target": max(times) < TARGET_PAGE_S,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--lake", default=os.environ.get("TICKERLAKE_LAKE", "./lake"), help="lake to serve [./lake]"
    )
    ap.add_argument("--url", help="measure a running server instead of starting one")
    ap.add_argument("--runs", type=int, default=40, help="warm requests per endpoint [40]")
    ap.add_argument("--loads", type=int, default=5, help="Market page loads in Chromium [5]")
    ap.add_argument("--no-browser", action="store_true", help="skip the Chromium measurement")
    ap.add_argument("--json", action="store_true", help="print JSON")
    args = ap.parse_args()
    proc = None
    if args.url:
        url = args.url if args.url.endswith("/") else args.url + "/"
    else:
        lake = Path(args.lake)
        if not (lake / "catalog.db").exists():
            raise SystemExit(
                f"no lake at {lake}: run `make demo` (or tickerlake ingest sim && tickerlake etl) first"
            )
        proc, url = start_server(lake)
    try:
        api = measure_api(url, args.runs)
        page = {"skipped": "--no-browser"} if args.no_browser else measure_browser(url, args.loads)
    finally:
        if proc is not None:
            stop_server(proc)
    if args.json:
        sys.stdout.write(json.dumps({"url": url, "api": api, "browser": page}, indent=2) + "\n")
        return
    print(
        f"tickerlake web benchmark · {url} · {args.runs} warm requests per endpoint after one cold request per variant"
    )
    print(
        f"{'endpoint':30s} {'cold n':>6s} {'cold med':>9s} {'cold max':>9s} {'warm med':>9s} {'warm p95':>9s}  "
        "target (cold max)"
    )
    for row in api:
        verdict = (
            ""
            if row["target_ms"] is None
            else ("ok (< 100 ms)" if row["meets_target"] else "MISSED (< 100 ms)")
        )
        print(
            f"{row['endpoint']:30s} {row['cold_requests']:6d} {row['cold_median_ms']:8.1f}ms "
            f"{row['cold_max_ms']:8.1f}ms {row['warm_median_ms']:8.2f}ms {row['warm_p95_ms']:8.2f}ms  {verdict}"
        )
    timed = [r for r in api if r["target_ms"] is not None]
    worst = max(timed, key=lambda r: r["cold_max_ms"])
    print(
        f"bars + insights: slowest cold request {worst['cold_max_ms']:.1f} ms ({worst['endpoint']}); "
        f"target < {TARGET_MS:.0f} ms"
    )
    if "skipped" in page:
        print(f"Market page in Chromium: skipped ({page['skipped']})")
    else:
        loads = ", ".join(f"{t:.2f}" for t in page["market_loads"])
        print(
            f"Market page fully drawn in Chromium: first load {page['market_first_load_s']:.2f} s "
            f"(fetches and compiles plotly.js), warm median {page['market_warm_median_s']:.2f} s "
            f"[{loads}]; target < {TARGET_PAGE_S} s: {'ok' if page['meets_target'] else 'MISSED'}"
        )
        for label, key in (
            ("first load", "market_first_load_phases_s"),
            ("last load", "market_warm_phases_s"),
        ):
            ph = page[key]
            print(
                f"  {label}: HTML {ph['html']:.2f} s · plotly.js download {ph['plotly_download']:.2f} s, "
                f"compile+run {ph['plotly_compile_and_run']:.2f} s · data {ph['data']:.2f} s · draw {ph['draw']:.2f} s"
            )
        print(f"Insights page, anomaly and forecast charts drawn: {page['insights_charts_drawn_s']:.2f} s")
    load = os.getloadavg()
    print(f"(machine load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
