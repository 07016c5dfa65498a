"""Historical pipeline benchmark: ingest, crawl and ETL throughput, memory, named-query latency.

Runs each stage as its own ``tickerlake`` process (as a user would) and measures wall time
and that process's peak RSS (``wait4``). The baseline, measured in the same run on the same
raw files, is DuckDB's own ``COPY (SELECT * FROM read_csv(...)) TO ... (FORMAT parquet)``.

Usage:
    python bench/historical.py                      # eight tickers + 5,000-ticker universe
    python bench/historical.py --universe 0         # eight tickers only
    python bench/historical.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

TL = [str(Path(sys.executable).parent / "tickerlake")]


def run_stage(lake: Path, *args: str) -> tuple[float, float, dict]:
    """Run one CLI stage; return (seconds, peak RSS in MiB, parsed --json output)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [*TL, "--lake", str(lake), *args, "--json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"stage {args} failed with exit code {proc.returncode}")
    return seconds, usage.ru_maxrss / 1024, json.loads(out or b"{}")


def duckdb_copy_baseline(lake: Path, out_dir: Path) -> float:
    """Seconds for DuckDB to turn the same raw daily_bars CSVs into one Parquet file."""
    con = duckdb.connect(config={"memory_limit": "3GB"})
    glob = str(lake / "raw" / "daily_bars" / "**" / "*.csv")
    start = time.perf_counter()
    con.execute(
        f"COPY (SELECT * FROM read_csv('{glob}')) TO '{out_dir / 'baseline.parquet'}' (FORMAT parquet)"
    )
    return time.perf_counter() - start


def named_query_latency(lake: Path, runs: int = 20) -> dict[str, float]:
    """Median milliseconds of each named query on a warm engine."""
    from tickerlake.config import Settings
    from tickerlake.query.engine import get_engine
    from tickerlake.query.named import list_named

    engine = get_engine(Settings(lake=str(lake)))
    params = {"start": "2008-01-01", "end": "2009-12-31", "ticker": "AAPL", "tickers": "AAPL,MSFT"}
    out = {}
    for named in list_named():
        wanted = {p.name: params[p.name] for p in named.params if p.name in params}
        engine.run_named(named.name, wanted)  # warm
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            engine.run_named(named.name, wanted)
            times.append((time.perf_counter() - t) * 1000)
        out[named.name] = statistics.median(times)
    return out


def bench_lake(label: str, lake: Path, ingest_args: list[str], queries: bool) -> dict:
    """Ingest, crawl, ETL and the baseline on one lake."""
    shutil.rmtree(lake, ignore_errors=True)
    res: dict = {"label": label}
    t, rss, out = run_stage(lake, "ingest", "sim", *ingest_args)
    rows = int(out.get("rows", {}).get("daily_bars", 0))
    res.update(rows=rows, ingest_s=t, ingest_rows_s=rows / t, ingest_peak_mib=rss)
    t, rss, _ = run_stage(lake, "crawl")
    res.update(crawl_s=t, crawl_rows_s=rows / t, crawl_peak_mib=rss)
    t, rss, out = run_stage(lake, "etl")
    loaded = sum(tb["loaded"] for tb in out["tables"] if tb["table"] == "market.daily_bars")
    # The job's own duration excludes interpreter start-up, like the in-process baseline.
    res.update(etl_s=t, etl_rows_s=rows / t, etl_peak_mib=rss, etl_loaded=loaded, etl_job_s=out["seconds"])
    with tempfile.TemporaryDirectory() as tmp:
        base = duckdb_copy_baseline(lake, Path(tmp))
    res.update(duckdb_copy_s=base, duckdb_copy_rows_s=rows / base, etl_vs_duckdb_copy=base / res["etl_job_s"])
    if queries:
        res["named_query_median_ms"] = named_query_latency(lake)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--universe", type=int, default=5700, help="tickers in the large run (0 to skip)")
    ap.add_argument(
        "--start",
        default="1993-01-01",
        help="start of the large run (5,700 tickers from 1993 give about 40M rows)",
    )
    ap.add_argument("--work", default=None, help="folder for the benchmark lakes (default: a temp dir)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="tickerlake-bench-"))
    results = [
        bench_lake("eight tickers 1997-06-01..2023-12-12", work / "small", ["--seed", "42"], queries=True)
    ]
    if args.universe:
        results.append(
            bench_lake(
                f"universe {args.universe} tickers {args.start}..2023-12-29",
                work / "large",
                [
                    "--universe",
                    str(args.universe),
                    "--start",
                    args.start,
                    "--end",
                    "2023-12-29",
                    "--seed",
                    "7",
                ],
                queries=False,
            )
        )
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for r in results:
        print(f"\n== {r['label']}: {r['rows']:,} daily rows")
        for stage in ("ingest", "crawl", "etl"):
            print(
                f"  {stage:<7} {r[stage + '_s']:8.2f} s  {r[stage + '_rows_s']:>12,.0f} rows/s  peak {r[stage + '_peak_mib']:7.0f} MiB"
            )
        print(
            f"  etl job (without interpreter start-up) {r['etl_job_s']:.2f} s  {r['rows'] / r['etl_job_s']:,.0f} rows/s"
        )
        print(
            f"  duckdb COPY csv->parquet baseline {r['duckdb_copy_s']:.2f} s  {r['duckdb_copy_rows_s']:,.0f} rows/s"
        )
        print(f"  ratio ETL job / DuckDB COPY throughput: {r['etl_vs_duckdb_copy']:.2f}  (target >= 0.5)")
        print(f"  ETL peak memory {r['etl_peak_mib'] / 1024:.2f} GiB (target < 4 GiB at 40M rows)")
        for name, ms in r.get("named_query_median_ms", {}).items():
            print(f"  named query {name:<24} median {ms:6.1f} ms  (target < 50 ms)")
    shutil.rmtree(work, ignore_errors=True) if not args.work else None


if __name__ == "__main__":
    main()
