"""Universe benchmark: insights and the dashboard on 8 to 5,700 tickers, cold and warm, and their memory.

For each universe size (simulated, ``ingest sim --universe N``; 8 is the default FANGMANT
set) in the same run on the same machine:

* ETL: ``etl`` without the insight-ready layer (``TICKERLAKE_DERIVED_LAYER=false``), then
  the layer's refresh alone (a second ``etl`` that finds nothing new to load);
* ``serve``: seconds from start to the first answer of ``/api/health`` and of ``/api/meta``
  (which indexes the lake), and its peak resident memory (VmHWM) after all requests;
* per request kind, the cold latency (the first time: nothing cached) and the warm one
  (median of 5 repeats, from the answer cache): bars, movers, period, summary, anomalies
  over two years (the whole universe and a 50-ticker selection), forecast, recessions;
* peak resident memory and time of CLI commands (``insights movers``, ``period``,
  ``anomalies`` over two years, ``forecast``).

Optionally the same requests against another checkout (``--baseline-src``, e.g. a
``git worktree`` of the commit before issue 15) on the 8-ticker lake. Targets (issue 15,
5,700 tickers, judged on cold figures): first answer < 2 s, 50-ticker insight < 500 ms,
universe movers < 300 ms, universe anomalies over 2 years < 5 s, RSS < 1 GB. Nothing is
gated: figures and ratios are printed.

Usage:
    python bench/universe.py --sizes 8,500,1000,5700 --root /tmp/tl-universe
    python bench/universe.py --sizes 8 --baseline-src /tmp/tl-before/src
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

TL = [str(Path(sys.executable).parent / "tickerlake")]
PY = sys.executable
WARM = 5
TARGETS_MS = {"movers (universe)": 300.0, "anomalies 2y (universe)": 5000.0}
TARGET_SELECTION_MS = 500.0
TARGET_FIRST_S = 2.0
TARGET_RSS_MB = 1024.0


def run_timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Seconds, peak RSS (MB) and stdout of a command (GNU time's %M)."""
    out = subprocess.run(
        ["/usr/bin/time", "-f", "%e %M", *cmd], capture_output=True, text=True, env=env, timeout=7200
    )
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {out.stderr[-1500:]}")
    secs, kb = out.stderr.strip().splitlines()[-1].split()
    return float(secs), int(kb) / 1024, out.stdout


def build(root: Path, n: int) -> dict[str, Any]:
    """The lake of ``n`` tickers (built once; its build figures kept next to it)."""
    lake = root / f"u{n}"
    facts = root / f"u{n}.json"
    if facts.exists():
        return json.loads(facts.read_text())
    sim = ["ingest", "sim", "--json"] + ([] if n == 8 else ["--universe", str(n)])
    ingest_s, _, _ = run_timed([*TL, "--lake", str(lake), *sim])
    plain = {**os.environ, "TICKERLAKE_DERIVED_LAYER": "false"}
    etl_s, etl_mb, _ = run_timed([*TL, "--lake", str(lake), "etl", "--json"], plain)
    layer_s, layer_mb, out = run_timed([*TL, "--lake", str(lake), "etl", "--json"])
    derived = json.loads(out)["derived"]
    out_facts = {
        "lake": str(lake), "tickers": n, "ingest_s": ingest_s,
        "etl_without_layer_s": etl_s, "etl_without_layer_mb": etl_mb,
        "layer_refresh_s": layer_s, "layer_refresh_mb": layer_mb, "layer_years": len(derived["years"]),
    }  # fmt: skip
    facts.write_text(json.dumps(out_facts))
    return out_facts


class Server:
    """``tickerlake serve`` on a free port, timed from spawn to its first answers."""

    def __init__(self, lake: str, pythonpath: str | None = None) -> None:
        env = {**os.environ}
        cmd = [*TL]
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
            cmd = [PY, "-c", "from tickerlake.cli import main; main()"]
        self.start = time.perf_counter()
        self.proc = subprocess.Popen(
            [*cmd, "--lake", lake, "serve", "--host", "127.0.0.1", "--port", "0", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"serve did not start: {self.proc.stderr.read() if self.proc.stderr else ''}")
        parts = urllib.parse.urlsplit(json.loads(line)["url"])
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=900)
        self.health_s = self._first("/api/health")
        self.meta_s = self._first("/api/meta")

    def _first(self, path: str) -> float:
        self.get(path)
        return time.perf_counter() - self.start

    def get(self, path: str) -> tuple[float, Any]:
        """Milliseconds to the whole answer, and the answer."""
        t = time.perf_counter()
        try:
            self.conn.request("GET", path)
            resp = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError):
            # The server closed an idle keep-alive connection: a new one (timed from here).
            if self.proc.poll() is not None:
                raise SystemExit(f"serve exited ({self.proc.returncode}) during GET {path}") from None
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=900)
            t = time.perf_counter()
            self.conn.request("GET", path)
            resp = self.conn.getresponse()
        body = resp.read()
        ms = (time.perf_counter() - t) * 1000
        if resp.status >= 400:
            raise SystemExit(f"GET {path} answered {resp.status}: {body[:300]!r}")
        return ms, json.loads(body)

    def peak_mb(self) -> float:
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        match = re.search(r"VmHWM:\s+(\d+) kB", text)
        return int(match.group(1)) / 1024 if match else float("nan")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def requests(meta: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, path) of the measured requests on a lake (its last day and 50 of its tickers)."""
    last = dt_of(meta["last_date"])
    two = f"start={shift(last, -730)}&end={last}"
    fifty = ",".join(meta["tickers"][:50])
    sel = f"tickers={fifty}"
    one = meta["tickers"][0]
    return [
        ("bars (50, 2y)", f"/api/bars?{sel}&{two}"),
        ("bars (default)", f"/api/bars?{two}"),
        ("movers (universe)", f"/api/insights/movers?date={last}"),
        ("movers (50)", f"/api/insights/movers?date={last}&{sel}"),
        ("period month (universe)", f"/api/insights/period?date={last}&grain=month"),
        ("period month (50)", f"/api/insights/period?date={last}&grain=month&{sel}"),
        ("summary 1y (50)", f"/api/insights/summary?start={shift(last, -365)}&end={last}&{sel}"),
        ("summary 1y (universe)", f"/api/insights/summary?start={shift(last, -365)}&end={last}"),
        ("anomalies 2y (50)", f"/api/insights/anomalies?{two}&{sel}"),
        ("anomalies 2y (universe)", f"/api/insights/anomalies?{two}"),
        ("forecast (1 ticker)", f"/api/insights/forecast?ticker={one}"),
        ("recessions nber-2020 (50)", f"/api/insights/recessions?period=nber-2020&{sel}"),
        ("recessions nber-2020 (universe)", "/api/insights/recessions?period=nber-2020"),
    ]


def dt_of(text: str) -> str:
    return text[:10]


def shift(day: str, days: int) -> str:
    import datetime as dt

    return (dt.date.fromisoformat(day) + dt.timedelta(days=days)).isoformat()


SKIP: list[str] = []


def measure_serve(lake: str, pythonpath: str | None = None) -> dict[str, Any]:
    server = Server(lake, pythonpath)
    try:
        _, meta = server.get("/api/meta")
        out: dict[str, Any] = {
            "health_s": server.health_s, "meta_s": server.meta_s, "requests": {}, "rows": meta["rows"],
            "last": meta["last_date"][:10], "first_ticker": meta["tickers"][0],
        }  # fmt: skip
        for name, path in requests(meta):
            if any(w in name for w in SKIP):
                continue
            cold, _ = server.get(path)
            warm = statistics.median(server.get(path)[0] for _ in range(WARM))
            out["requests"][name] = {"cold_ms": cold, "warm_ms": warm}
            print(f"    {name}: cold {cold:.0f} ms, warm {warm:.1f} ms", file=sys.stderr, flush=True)
        out["peak_mb"] = server.peak_mb()
        return out
    finally:
        server.stop()


def measure_cli(lake: str, meta_last: str, one: str) -> dict[str, Any]:
    cmds = {
        "insights movers": ["insights", "movers", "--date", meta_last],
        "insights period": ["insights", "period", "--grain", "month"],
        "insights anomalies 2y": [
            "insights",
            "anomalies",
            "--start",
            shift(meta_last, -730),
            "--end",
            meta_last,
        ],
        "insights forecast": ["insights", "forecast", "--ticker", one],
    }
    out = {}
    for name, args in cmds.items():
        if any(w in name for w in SKIP):
            continue
        secs, mb, stdout = run_timed([*TL, "--lake", lake, *args])
        out[name] = {"s": secs, "peak_mb": mb, "lines": stdout.count("\n")}
        print(f"    CLI {name}: {secs:.1f} s, {mb:.0f} MB", file=sys.stderr, flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="8,500,1000,5700", help="universe sizes [8,500,1000,5700]")
    ap.add_argument(
        "--root", default="/tmp/tl-universe", help="where the lakes are built (kept) [/tmp/tl-universe]"
    )
    ap.add_argument(
        "--baseline-src", help="the src folder of another checkout, measured on the 8-ticker lake"
    )
    ap.add_argument("--no-cli", action="store_true", help="skip the CLI commands")
    ap.add_argument(
        "--skip", default="", help="comma-separated words: requests and commands naming one are skipped"
    )
    ap.add_argument("--json", action="store_true", help="print JSON")
    args = ap.parse_args()
    SKIP.extend(w for w in args.skip.split(",") if w)
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    for n in [int(x) for x in args.sizes.split(",")]:
        facts = build(root, n)
        serve = measure_serve(facts["lake"])
        cli = {} if args.no_cli else measure_cli(facts["lake"], serve["last"], serve["first_ticker"])
        results.append({**facts, "rows": serve["rows"], "serve": serve, "cli": cli})
        (root / "results.json").write_text(json.dumps(results, indent=1))
        print(f"... {n} tickers measured", file=sys.stderr, flush=True)
    baseline = None
    if args.baseline_src and any(r["tickers"] == 8 for r in results):
        eight = next(r for r in results if r["tickers"] == 8)
        baseline = measure_serve(eight["lake"], args.baseline_src)
    if args.json:
        print(json.dumps({"results": results, "baseline_8": baseline}, indent=2))
        return
    report(results, baseline)


def report(results: list[dict[str, Any]], baseline: dict[str, Any] | None) -> None:
    sizes = [r["tickers"] for r in results]
    head = f"{'':34s}" + "".join(f"{n:>18,}" for n in sizes)
    print(f"tickerlake universe benchmark · {os.cpu_count()} CPUs · load {os.getloadavg()[0]:.1f}")
    print(head + "   (tickers)")
    print(f"{'bars in the lake':34s}" + "".join(f"{r['rows']:>18,}" for r in results))
    line = lambda label, f: print(f"{label:34s}" + "".join(f"{f(r):>18s}" for r in results))  # noqa: E731
    line("ETL without the layer", lambda r: f"{r['etl_without_layer_s']:.1f} s")
    line("insight-ready layer refresh", lambda r: f"{r['layer_refresh_s']:.1f} s")
    line("serve: first /api/health", lambda r: f"{r['serve']['health_s']:.2f} s")
    line("serve: first /api/meta", lambda r: f"{r['serve']['meta_s']:.2f} s")
    print("cold / warm (ms)")
    for name in results[0]["serve"]["requests"]:
        line(
            f"  {name}",
            lambda r, k=name: (
                f"{r['serve']['requests'][k]['cold_ms']:.0f} / {r['serve']['requests'][k]['warm_ms']:.1f}"
            ),
        )
    line("serve peak RSS", lambda r: f"{r['serve']['peak_mb']:.0f} MB")
    if results[0]["cli"]:
        print("CLI: seconds, peak RSS, lines printed")
        for name in results[0]["cli"]:
            line(
                f"  {name}",
                lambda r, k=name: (
                    f"{r['cli'][k]['s']:.1f}s {r['cli'][k]['peak_mb']:.0f}MB {r['cli'][k]['lines']}l"
                ),
            )
    if baseline is not None:
        eight = next(r for r in results if r["tickers"] == 8)["serve"]
        print("8 tickers against the baseline checkout (cold ms: now / before = ratio)")
        print(f"  first /api/meta: {eight['meta_s']:.2f} s / {baseline['meta_s']:.2f} s")
        for name, now in eight["requests"].items():
            if name not in baseline["requests"]:
                continue
            was = baseline["requests"][name]["cold_ms"]
            print(f"  {name:32s} {now['cold_ms']:8.1f} / {was:8.1f} = {now['cold_ms'] / was:5.2f}x")
        print(f"  serve peak RSS: {eight['peak_mb']:.0f} MB / {baseline['peak_mb']:.0f} MB")
    big = results[-1]
    req = big["serve"]["requests"]
    sel = max(v["cold_ms"] for k, v in req.items() if "(50)" in k or "(1 ticker)" in k)
    print(f"targets on {big['tickers']:,} tickers (cold):")
    print(f"  first answer {big['serve']['meta_s']:.2f} s (< {TARGET_FIRST_S} s)")
    print(f"  slowest 50-ticker insight {sel:.0f} ms (< {TARGET_SELECTION_MS:.0f} ms)")
    for k, t in TARGETS_MS.items():
        got = f"{req[k]['cold_ms']:.0f} ms" if k in req else "skipped"
        print(f"  {k} {got} (< {t:.0f} ms)")
    rss = max([big["serve"]["peak_mb"], *[v["peak_mb"] for v in big["cli"].values()]])
    print(f"  peak RSS of serve and CLI {rss:.0f} MB (< {TARGET_RSS_MB:.0f} MB)")


if __name__ == "__main__":
    main()
