"""``python -m reliability [--short] [--only NAME ...] [--seed N] [--json]``: run the fault suite.

Writes ``artifacts/reliability.json`` and prints one row per scenario: what was injected,
rows/events in and out, lost, duplicated, errors seen, pass or fail. Exits 1 when any
scenario failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import pkgutil
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from reliability import scenarios
from reliability.core import Context, Outcome, Result, Services, Timer, select


def _load_scenarios() -> None:
    for info in pkgutil.iter_modules(scenarios.__path__):
        importlib.import_module(f"reliability.scenarios.{info.name}")


def _print_table(results: list[Result]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="tickerlake reliability")
    for col in ("scenario", "injected", "in", "out", "lost", "dup", "errors seen", "result", "s"):
        table.add_column(col, overflow="fold")
    for r in results:
        errors = "; ".join(dict.fromkeys(r.errors))[:160]
        verdict = "[green]pass[/]" if r.passed else f"[red]FAIL[/] {r.reason}"
        table.add_row(
            r.name,
            r.injected,
            f"{r.rows_in:,}",
            f"{r.rows_out:,}",
            str(r.lost),
            str(r.duplicated),
            errors,
            verdict,
            f"{r.seconds:.1f}",
        )
    Console(width=200).print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability", description=__doc__)
    parser.add_argument("--short", action="store_true", help="the short form run by make test")
    parser.add_argument("--only", nargs="*", help="run scenarios whose name contains one of these")
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--out", default="artifacts/reliability.json")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folders")
    args = parser.parse_args(argv)

    _load_scenarios()
    chosen = list(select(args.short, args.only))
    if not chosen:
        parser.error("no scenario matches")
    work = Path(tempfile.mkdtemp(prefix="tickerlake-reliability-"))
    services = Services(work / "services")
    results: list[Result] = []
    started = time.time()
    try:
        for s in chosen:
            root = work / s.name
            root.mkdir(parents=True)
            ctx = Context(root=root, short=args.short, seed=args.seed, services=services)
            timer = Timer()
            print(f"… {s.name}: {s.injected}", file=sys.stderr, flush=True)
            try:
                outcome = s.fn(ctx)
            except Exception as e:  # a scenario that crashes is a failed scenario
                traceback.print_exc()
                first = (str(e).strip().splitlines() or [""])[0]
                outcome = Outcome(passed=False, reason=f"{type(e).__name__}: {first}")
            result = Result(
                **{f.name: getattr(outcome, f.name) for f in dataclasses.fields(Outcome)},
                name=s.name,
                injected=s.injected,
            )
            result.seconds = timer.seconds
            results.append(result)
            mark = "pass" if result.passed else f"FAIL: {result.reason}"
            print(f"  {s.name}: {mark} ({result.seconds:.1f} s)", file=sys.stderr, flush=True)
    finally:
        services.stop_all()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "short": args.short,
        "seed": args.seed,
        "passed": all(r.passed for r in results),
        "scenarios": [dataclasses.asdict(r) for r in results],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        _print_table(results)
        print(f"report: {out}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
