"""Insights benchmark: anomaly precision/recall, forecast calibration, per-kind timing, scaling.

Everything runs in memory on the deterministic simulated market
(:func:`tickerlake.sources.sim.simulate`, eight FANGMANT tickers over their default
range), whose injected shocks are the anomaly ground truth. Nothing is read from disk.

Printed:

* anomalies: precision and recall against the injected shocks, by day and by
  (ticker, day), at the default sensitivity, for a few seeds, next to a QuickSight-like
  baseline (robust z-score of the total close's daily return, one series); the same on
  the *unadjusted* prices with the corporate actions (no split may appear);
* forecast: rolling-origin backtest MAPE against the naive last-value forecast, and the
  empirical coverage of the 80% and 95% intervals (overall and by horizon);
* timing: every insight kind over the full history, median of 5 runs, and their sum;
* scaling: anomaly detection on 1×, 4× and 16× the history length.

Targets (issue 3): recall ≥ 0.8 with precision ≥ 0.5; coverage within 5 points of
nominal and MAPE not above naive; all kinds together under 2 s; anomaly time
near-linear in the number of days. Figures are printed, never asserted.

Usage:
    python bench/insights.py
    python bench/insights.py --seeds 42 7 --json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tickerlake import insights
from tickerlake.insights._panel import build_panel
from tickerlake.sources.sim import simulate

TARGET_SECONDS = 2.0


def sim_tables(seed: int) -> dict[str, pa.Table]:
    """All datasets of one simulated market, concatenated over batches."""
    parts: dict[str, list[pa.Table]] = {}
    for name, table in simulate(seed=seed):
        parts.setdefault(name, []).append(table)
    return {name: pa.concat_tables(tables) for name, tables in parts.items()}


def precision_recall(found: set, truth: set) -> tuple[float, float]:
    """Precision and recall of a set of detections (NaN precision when nothing was found)."""
    hits = len(found & truth)
    precision = hits / len(found) if found else float("nan")
    recall = hits / len(truth) if truth else float("nan")
    return precision, recall


def baseline_dates(bars: pa.Table, threshold: float) -> set[dt.date]:
    """What a one-series detector on the aggregate sees: robust z of the total close's daily return.

    The total is taken over the tickers trading on both days; the scale is 1.4826 × the
    rolling median absolute return of the previous 63 days.
    """
    panel = build_panel(bars)
    v = panel.values
    both = ~np.isnan(v[1:]) & ~np.isnan(v[:-1])
    now = np.where(both, v[1:], 0).sum(axis=1)
    before = np.where(both, v[:-1], 0).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.log(now / before)
    scale = 1.4826 * pd.Series(np.abs(r)).rolling(63, min_periods=20).median().shift(1).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs(r / scale)
    hits = np.flatnonzero(np.nan_to_num(z) >= threshold) + 1
    return {panel.date(int(i)) for i in hits}


def anomaly_quality(seeds: list[int]) -> list[dict[str, Any]]:
    """Precision/recall by day and by (ticker, day) for each seed, with the baseline."""
    out = []
    for seed in seeds:
        data = sim_tables(seed)
        bars, truth = data["daily_bars"], data["sim_anomalies"]
        truth_days = set(truth.column("date").to_pylist())
        truth_pairs = set(
            zip(truth.column("ticker").to_pylist(), truth.column("date").to_pylist(), strict=True)
        )
        res = insights.anomalies(bars)
        days = {a.date for a in res.anomalies}
        # A detected (ticker, day): a contributor the anomaly names (its top list).
        pairs = {(c.ticker, a.date) for a in res.anomalies for c in a.top}
        raw = insights.anomalies(data["daily_bars_unadjusted"], corporate_actions=data["corporate_actions"])
        raw_days = {a.date for a in raw.anomalies}
        acts = data["corporate_actions"]
        split_pairs = {
            (t, d)
            for t, d, action in zip(
                acts.column("ticker").to_pylist(),
                acts.column("date").to_pylist(),
                acts.column("action").to_pylist(),
                strict=True,
            )
            if action == "split"
        }
        raw_pairs = {(c.ticker, a.date) for a in raw.anomalies for c in a.contributions if c.anomalous}
        base = baseline_dates(bars, res.threshold)
        p, r = precision_recall(days, truth_days)
        pp, pr = precision_recall(pairs, truth_pairs)
        bp, br = precision_recall(base, truth_days)
        rp, rr = precision_recall(raw_days, truth_days)
        out.append(
            {
                "seed": seed,
                "injected_days": len(truth_days),
                "injected_pairs": len(truth_pairs),
                "flagged_days": len(days),
                "precision": p,
                "recall": r,
                "pair_precision": pp,
                "pair_recall": pr,
                "baseline_flagged": len(base),
                "baseline_precision": bp,
                "baseline_recall": br,
                "unadjusted_precision": rp,
                "unadjusted_recall": rr,
                "splits_in_data": len(split_pairs),
                "splits_ignored": len(raw.splits_ignored),
                "splits_flagged": len(raw_pairs & split_pairs),
            }
        )
    return out


def sensitivity_sweep(bars: pa.Table, truth_days: set[dt.date]) -> list[dict[str, float]]:
    """Precision and recall by day over a few sensitivities."""
    rows = []
    for s in (0.2, 0.35, 0.5, 0.65, 0.8):
        res = insights.anomalies(bars, sensitivity=s)
        p, r = precision_recall({a.date for a in res.anomalies}, truth_days)
        rows.append(
            {
                "sensitivity": s,
                "threshold": res.threshold,
                "flagged": len(res.anomalies),
                "precision": p,
                "recall": r,
            }
        )
    return rows


def median_seconds(fn: Callable[[], object], runs: int = 5) -> float:
    """Median wall time of ``runs`` calls."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timings(bars: pa.Table, actions: pa.Table) -> dict[str, float]:
    """Median seconds of every insight kind over the full history."""
    panel = build_panel(bars)
    last = panel.last_date
    mid = panel.date(len(panel.dates) // 2)
    tickers = panel.tickers
    kinds: dict[str, Callable[[], object]] = {
        "movers": lambda: insights.movers(bars, last, corporate_actions=actions),
        "period (day)": lambda: insights.period_over_period(bars, last, corporate_actions=actions),
        "period (month)": lambda: insights.period_over_period(bars, mid, "month", corporate_actions=actions),
        "period-to-date": lambda: insights.period_to_date(bars, last, "quarter", corporate_actions=actions),
        "growth": lambda: insights.growth(bars, grain="year", corporate_actions=actions),
        "ranked": lambda: insights.ranked(bars, corporate_actions=actions),
        "extremes": lambda: insights.extremes(bars, corporate_actions=actions),
        "anomalies": lambda: insights.anomalies(bars, corporate_actions=actions),
        "forecast (all 8)": lambda: [insights.forecast(bars, t, corporate_actions=actions) for t in tickers],
        "recessions (all 7)": lambda: [
            insights.recession(bars, name, corporate_actions=actions) for name in insights.BUILTIN_WINDOWS
        ],
        "summary": lambda: insights.summary(bars, corporate_actions=actions),
    }
    return {name: median_seconds(fn) for name, fn in kinds.items()}


def tiled(bars: pa.Table, copies: int) -> pa.Table:
    """The history repeated ``copies`` times end to end (later copies shifted in time and level)."""
    frame = bars.select(["ticker", "date", "close"]).to_pandas()
    frame["date"] = pd.to_datetime(frame["date"])
    span = frame["date"].max() - frame["date"].min() + pd.Timedelta(days=7)
    parts = []
    for k in range(copies):
        part = frame.copy()
        part["date"] = part["date"] + k * span
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    return pa.table(
        {
            "ticker": pa.array(out["ticker"].astype(str).tolist(), pa.string()),
            "date": pa.array(out["date"].dt.date.tolist(), pa.date32()),
            "close": pa.array(out["close"].to_numpy(), pa.float64()),
        }
    )


def scaling(bars: pa.Table) -> list[dict[str, float]]:
    """Anomaly detection time at 1×, 4× and 16× the history."""
    rows = []
    base = None
    for k in (1, 4, 16):
        big = tiled(bars, k)
        seconds = median_seconds(lambda big=big: insights.anomalies(big), runs=3)
        base = base or seconds
        rows.append(
            {"copies": k, "days": len(build_panel(big).dates), "seconds": seconds, "ratio": seconds / base}
        )
    return rows


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7, 123, 1, 2, 3])
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()

    data = sim_tables(args.seeds[0])
    bars, actions = data["daily_bars"], data["corporate_actions"]
    truth_days = set(data["sim_anomalies"].column("date").to_pylist())
    report: dict[str, Any] = {
        "rows": bars.num_rows,
        "tickers": len(set(bars.column("ticker").to_pylist())),
        "days": len(build_panel(bars).dates),
        "anomalies": anomaly_quality(args.seeds),
        "sensitivity": sensitivity_sweep(bars, truth_days),
    }
    bt = insights.backtest(bars, horizon=30, every=5)
    report["forecast"] = {
        "forecasts": bt.forecasts,
        "mape": bt.mape,
        "naive_mape": bt.naive_mape,
        "coverage80": bt.coverage80,
        "coverage95": bt.coverage95,
        "by_horizon": [vars(h) for h in bt.by_horizon],
    }
    report["timing"] = timings(bars, actions)
    report["timing_total"] = sum(report["timing"].values())
    report["scaling"] = scaling(bars)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return
    _print(report)


def _print(r: dict[str, Any]) -> None:
    print(f"simulated market: {r['rows']:,} rows, {r['tickers']} tickers, {r['days']:,} trading days\n")
    print("anomalies (default sensitivity 0.5) vs injected shocks — target recall >= 0.8, precision >= 0.5")
    print(
        f"{'seed':>5} {'days':>5} {'flagged':>8} {'precision':>10} {'recall':>7} {'pair P':>7} {'pair R':>7}"
        f" | {'baseline P':>10} {'baseline R':>10} | {'unadj P':>8} {'unadj R':>8} {'splits':>7} {'on splits':>9}"
    )
    for a in r["anomalies"]:
        print(
            f"{a['seed']:>5} {a['injected_days']:>5} {a['flagged_days']:>8} {a['precision']:>10.2f} {a['recall']:>7.2f}"
            f" {a['pair_precision']:>7.2f} {a['pair_recall']:>7.2f} | {a['baseline_precision']:>10.2f}"
            f" {a['baseline_recall']:>10.2f} | {a['unadjusted_precision']:>8.2f} {a['unadjusted_recall']:>8.2f}"
            f" {a['splits_ignored']:>3}/{a['splits_in_data']:<3} {a['splits_flagged']:>9}"
        )
    print(
        "  (pair = (ticker, day) named among the top contributors; baseline = robust z of the total close's"
    )
    print("   daily return, one series, same threshold; unadj = unadjusted prices + corporate actions)\n")
    print("sensitivity sweep (first seed):")
    for s in r["sensitivity"]:
        print(
            f"  {s['sensitivity']:.2f} (|z| >= {s['threshold']:.1f}): {s['flagged']:>4} flagged, "
            f"precision {s['precision']:.2f}, recall {s['recall']:.2f}"
        )
    f = r["forecast"]
    print(f"\nforecast backtest ({f['forecasts']:,} origin×step pairs, horizon 30, origin every 5 days)")
    print(
        f"  MAPE {f['mape']:.3f}% vs naive {f['naive_mape']:.3f}% (ratio {f['mape'] / f['naive_mape']:.3f})"
    )
    print(f"  coverage 80%: {f['coverage80']:.1f}   95%: {f['coverage95']:.1f}   (target: within 5 points)")
    for h in f["by_horizon"]:
        print(
            f"    h={h['horizon']:>2}: MAPE {h['mape']:6.2f}% naive {h['naive_mape']:6.2f}%  "
            f"cov80 {h['coverage80']:5.1f}  cov95 {h['coverage95']:5.1f}"
        )
    print("\ntiming over the full history (median of 5)")
    for name, seconds in r["timing"].items():
        print(f"  {name:<20} {seconds * 1000:8.1f} ms")
    verdict = "under" if r["timing_total"] < TARGET_SECONDS else "OVER"
    print(
        f"  {'all kinds':<20} {r['timing_total'] * 1000:8.1f} ms  ({verdict} the {TARGET_SECONDS:.0f} s target)"
    )
    print("\nanomaly detection scaling (median of 3)")
    for s in r["scaling"]:
        print(
            f"  {s['copies']:>2}x  {s['days']:>7,} days  {s['seconds'] * 1000:8.1f} ms  ratio {s['ratio']:5.2f}"
        )


if __name__ == "__main__":
    main()
