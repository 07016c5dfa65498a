"""What reading other sites' files costs: each layout against a plain ISO long CSV, same bars.

The same bars (simulated, ``--tickers`` × trading days) are written as a plain long CSV
(ISO dates, plain numbers: the baseline, read verbatim), a Nasdaq.com download per ticker
(``$`` prices, ``MM/DD/YYYY``, newest first, sidecar ticker), a Stooq export (``AAPL.US``,
``YYYYMMDD``), Kaggle ``.us.txt`` files, German broker exports (``;``, decimal commas,
``DD.MM.YYYY``, Windows-1252), JSON lines of the original project's rows and Parquet. Each
is read with :func:`tickerlake.sources.files.read_sources` (the raw-zone tables, not the
lake); printed: rows, seconds (best of ``--repeat``), rows/s, and the ratio of seconds to
the baseline measured in the same run.

Usage:
    python bench/ingest_layouts.py                 # 8 tickers × 25 years ≈ 50,000 rows
    python bench/ingest_layouts.py --years 100 --json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tickerlake.config import DEFAULT_TICKERS
from tickerlake.sources.csv import CsvReport
from tickerlake.sources.files import expand_inputs, read_sources
from tickerlake.sources.sim import simulate

Rows = list[tuple[str, dt.date, float, float, float, float, int]]


def bars(years: int) -> Rows:
    """Simulated split-adjusted bars of the default tickers, rounded to cents."""
    start = dt.date(2023, 12, 31) - dt.timedelta(days=365 * years)
    out: Rows = []
    for dataset, table in simulate(list(DEFAULT_TICKERS), start, dt.date(2023, 12, 31), 42):
        if dataset != "daily_bars":
            continue
        for r in table.to_pylist():
            prices = [round(float(r[k]), 2) for k in ("open", "high", "low", "close")]
            out.append((r["ticker"], dt.date.fromisoformat(str(r["date"])), *prices, int(float(r["volume"]))))
    return out


def by_ticker(rows: Rows) -> dict[str, Rows]:
    out: dict[str, Rows] = {}
    for r in rows:
        out.setdefault(r[0], []).append(r)
    return out


def write_plain(folder: Path, rows: Rows) -> None:
    lines = ["Ticker,Date,Open,High,Low,Close,Volume"]
    lines += [f"{t},{d.isoformat()},{o:.2f},{h:.2f},{lo:.2f},{c:.2f},{v}" for t, d, o, h, lo, c, v in rows]
    (folder / "bars.csv").write_text("\n".join(lines) + "\n")


def write_nasdaq(folder: Path, rows: Rows) -> None:
    for k, (ticker, own) in enumerate(by_ticker(rows).items()):
        sub = folder / ticker
        sub.mkdir()
        (sub / "tickerlake.toml").write_text(f'ticker = "{ticker}"\n')
        lines = ["Date,Close/Last,Volume,Open,High,Low"]
        for _, d, o, h, lo, c, v in sorted(own, key=lambda r: r[1], reverse=True):
            lines.append(f"{d:%m/%d/%Y},${c:.2f},{v},${o:.2f},${h:.2f},${lo:.2f}")
        (sub / f"HistoricalData_{1656624000000 + k}.csv").write_text("\n".join(lines) + "\n")


def write_stooq(folder: Path, rows: Rows) -> None:
    lines = ["<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>"]
    lines += [f"{t}.US,D,{d:%Y%m%d},000000,{o},{h},{lo},{c},{v},0" for t, d, o, h, lo, c, v in rows]
    (folder / "d_us.txt").write_text("\n".join(lines) + "\n")


def write_kaggle(folder: Path, rows: Rows) -> None:
    for ticker, own in by_ticker(rows).items():
        lines = ["Date,Open,High,Low,Close,Volume,OpenInt"]
        lines += [f"{d.isoformat()},{o},{h},{lo},{c},{v},0" for _, d, o, h, lo, c, v in own]
        (folder / f"{ticker.lower()}.us.txt").write_text("\n".join(lines) + "\n")


def _de(x: float) -> str:
    return f"{x:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")


def write_european(folder: Path, rows: Rows) -> None:
    for ticker, own in by_ticker(rows).items():
        lines = ["Datum;Eröffnung;Hoch;Tief;Schluss;Volumen"]
        for _, d, o, h, lo, c, v in own:
            volume = f"{v:,}".replace(",", ".")
            lines.append(f"{d:%d.%m.%Y};{_de(o)};{_de(h)};{_de(lo)};{_de(c)};{volume}")
        (folder / f"{ticker}.csv").write_text("\n".join(lines) + "\n", encoding="cp1252")


def write_jsonl(folder: Path, rows: Rows) -> None:
    with open(folder / "rows.jsonl", "w") as f:
        for t, d, o, h, lo, c, v in rows:
            row = {"stock symbol": t, "Date": d.isoformat(), "Open": o, "High": h, "Low": lo, "Close": c}
            f.write(json.dumps({**row, "Adj Close": c, "Volume": v}) + "\n")


def write_parquet(folder: Path, rows: Rows) -> None:
    cols = list(zip(*rows, strict=True))
    names = ("symbol", "date", "open", "high", "low", "close", "volume")
    pq.write_table(
        pa.table({n: pa.array(c) for n, c in zip(names, cols, strict=True)}), folder / "bars.parquet"
    )


LAYOUTS: dict[str, Callable[[Path, Rows], None]] = {
    "plain ISO long CSV (baseline)": write_plain,
    "Nasdaq.com downloads": write_nasdaq,
    "Stooq export": write_stooq,
    "Kaggle .us.txt folder": write_kaggle,
    "German broker exports": write_european,
    "JSON lines (producer rows)": write_jsonl,
    "Parquet": write_parquet,
}


def read(folder: Path) -> tuple[int, float]:
    t0 = time.perf_counter()
    report = CsvReport()
    inputs = expand_inputs([folder], report.errors, report.warnings)
    n = sum(t.num_rows for d, t in read_sources(inputs, report) if d == "daily_bars")
    assert not report.errors, report.errors
    return n, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--years", type=int, default=25, help="Years of bars per ticker.")
    ap.add_argument("--repeat", type=int, default=3, help="Reads per layout (best counts).")
    ap.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = ap.parse_args()
    rows = bars(args.years)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tickerlake-bench-layouts-") as tmp:
        for name, writer in LAYOUTS.items():
            folder = Path(tmp) / str(len(results))
            folder.mkdir()
            writer(folder, rows)
            best = min((read(folder) for _ in range(args.repeat)), key=lambda r: r[1])
            results.append({"layout": name, "rows": best[0], "seconds": round(best[1], 4)})
    base = results[0]["seconds"]
    for r in results:
        r["rows_per_s"] = round(r["rows"] / r["seconds"])
        r["ratio_to_baseline"] = round(r["seconds"] / base, 2)
        assert r["rows"] == len(rows), (r["layout"], r["rows"], len(rows))
    if args.json:
        print(json.dumps({"bars": len(rows), "results": results}, indent=2))
        return
    print(f"{len(rows):,} bars ({len(DEFAULT_TICKERS)} tickers × {args.years} years), best of {args.repeat}")
    print(f"{'layout':32} {'rows':>9} {'seconds':>8} {'rows/s':>11} {'× baseline':>10}")
    for r in results:
        print(
            f"{r['layout']:32} {r['rows']:>9,} {r['seconds']:>8.3f} {r['rows_per_s']:>11,} {r['ratio_to_baseline']:>10.2f}"
        )


if __name__ == "__main__":
    main()
