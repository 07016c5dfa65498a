"""Bad input at scale: coverage-guided fuzzing of every input surface against its contract.

One scenario per surface (CSV reader and layout detection, tick and bar decoders, schema
inference). Each runs the atheris target (:mod:`reliability.fuzz.targets`) for a fixed
time, about 5 s in the short form and 60 s in the full one, and passes when every input
was accepted or rejected with a reason: no crash, no hang, no input or record lost.
Crashing inputs are kept under the scenario's scratch folder (``--keep`` to look at them).
"""

from __future__ import annotations

from reliability.core import Context, Outcome, scenario
from reliability.fuzz.runner import run_target

SHORT_SECONDS = 5
FULL_SECONDS = 60


def _fuzz(ctx: Context, target: str) -> Outcome:
    report = run_target(target, SHORT_SECONDS if ctx.short else FULL_SECONDS, ctx.root / "fuzz")
    out = Outcome(
        rows_in=report.tried,
        rows_out=report.accepted + report.rejected,
        lost=report.lost,
        errors=report.kinds,
        details={
            "execs": report.execs,
            "fuzzer_runs": report.runs,
            "accepted": report.accepted,
            "rejected_with_reason": report.rejected,
            "records": report.records,
            "records_rejected_with_reason": report.records_rejected,
            "crashing_inputs": [c.input_path for c in report.crashes],
            "seconds_fuzzed": report.seconds,
        },
    )
    out.check(report.tried > 0, "the target never ran")
    out.check(not report.crashes, f"{len(report.crashes)} crash(es): {'; '.join(report.kinds)}")
    out.check(out.rows_in == out.rows_out + out.lost, "counts do not reconcile")
    if out.passed:
        out.reason = f"{report.execs:,} execs in {report.seconds:g} s, {report.records:,} records"
    return out


@scenario("badinput-csv", "fuzzed CSV files (bytes, encodings, line endings)", short=True)
def badinput_csv(ctx: Context) -> Outcome:
    return _fuzz(ctx, "csv")


@scenario("badinput-ticks", "fuzzed tick record values", short=True)
def badinput_ticks(ctx: Context) -> Outcome:
    return _fuzz(ctx, "ticks")


@scenario("badinput-bars", "fuzzed bar record values", short=True)
def badinput_bars(ctx: Context) -> Outcome:
    return _fuzz(ctx, "bars")


@scenario("badinput-inference", "fuzzed column names and types for schema merging", short=True)
def badinput_inference(ctx: Context) -> Outcome:
    return _fuzz(ctx, "inference")
