"""Run one atheris target for a fixed time in a subprocess and report what it found.

libFuzzer stops at the first crash, so the runner starts the target again (keeping the
corpus it has grown) until the time is used up, saving each crashing input under the
scratch folder and grouping crashes by kind (exception type and the innermost frame in
tickerlake). ``python -m reliability.fuzz.runner NAME SECONDS [SCRATCH]`` prints the report.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from reliability.fuzz.targets import SEEDS, TARGETS

__all__ = ["Crash", "FuzzReport", "run_target"]

_DONE = re.compile(r"stat::number_of_executed_units:\s*(\d+)")
_EXC = re.compile(r"^(?:[\w.]+\.)?(\w+(?:Error|Exception|Input|Exit|Interrupt)\w*)(?::|$)", re.MULTILINE)
_FRAME = re.compile(r'File "([^"]*tickerlake[^"]*)", line (\d+)')
#: Restarts after crashes; past this the target is broken enough that more runs add nothing.
_MAX_RUNS = 25


@dataclass
class Crash:
    """One crash.

    Attributes:
        kind: ``ExceptionType at file:line`` (innermost tickerlake frame), or the libFuzzer
            verdict (timeout, out of memory) when there is no Python traceback.
        input_path: The saved crashing input.
        message: The last lines of the child's error output.
    """

    kind: str
    input_path: str
    message: str


@dataclass
class FuzzReport:
    """What one time-bounded fuzz run of a target found.

    Attributes:
        target: Target name.
        seconds: Wall time spent.
        execs: Inputs libFuzzer ran (its own count, over all restarts).
        tried: Inputs the target counted.
        accepted: Inputs accepted whole.
        rejected: Inputs refused, or with records rejected, with a reason.
        lost: Inputs neither accepted nor rejected (crashed or lost a record).
        records: Records (rows, events) inside the inputs.
        records_rejected: Of those, rejected with a reason.
        runs: Fuzzer processes started.
        crashes: Every crash, in order.
    """

    target: str
    seconds: float = 0.0
    execs: int = 0
    tried: int = 0
    accepted: int = 0
    rejected: int = 0
    lost: int = 0
    records: int = 0
    records_rejected: int = 0
    runs: int = 0
    crashes: list[Crash] = field(default_factory=list)

    @property
    def kinds(self) -> list[str]:
        """Distinct crash kinds, first seen first."""
        return list(dict.fromkeys(c.kind for c in self.crashes))


def _crash_kind(stderr: str) -> str:
    tail = (
        stderr[stderr.rfind("Uncaught Python exception") :] if "Uncaught Python exception" in stderr else ""
    )
    if tail:
        frames = _FRAME.findall(tail)
        exc = _EXC.findall(tail)
        where = f" at {Path(frames[-1][0]).name}:{frames[-1][1]}" if frames else ""
        return f"{exc[-1] if exc else 'exception'}{where}"
    for verdict in ("timeout", "out-of-memory", "deadly signal"):
        if f"ERROR: libFuzzer: {verdict}" in stderr:
            return f"libFuzzer {verdict}"
    return "fuzzer exited abnormally"


def run_target(name: str, seconds: float, scratch: Path, per_input_timeout: int = 10) -> FuzzReport:
    """Fuzz target ``name`` for about ``seconds`` seconds.

    Args:
        name: A key of :data:`reliability.fuzz.targets.TARGETS`.
        seconds: Time budget (restarts after crashes included).
        scratch: Folder for the corpus, crashing inputs and logs (created).
        per_input_timeout: Seconds one input may take before libFuzzer calls it a hang.

    Returns:
        The report.
    """
    if name not in TARGETS:
        raise ValueError(f"unknown fuzz target {name!r} (known: {', '.join(TARGETS)})")
    root = scratch / name
    corpus, crashes = root / "corpus", root / "crashes"
    for d in (corpus, crashes):
        d.mkdir(parents=True, exist_ok=True)
    for k, seed in enumerate(SEEDS[name]):
        (corpus / f"seed-{k}").write_bytes(seed)
    report = FuzzReport(target=name)
    started = time.monotonic()
    while report.runs < _MAX_RUNS:
        left = seconds - (time.monotonic() - started)
        if left < 1:
            break
        report.runs += 1
        stats_path = root / f"stats-{report.runs}.json"
        run_dir = crashes / f"run-{report.runs}"
        run_dir.mkdir()
        cmd = [
            sys.executable,
            "-m",
            "reliability.fuzz.targets",
            name,
            str(stats_path),
            f"-max_total_time={max(1, int(left))}",
            f"-timeout={per_input_timeout}",
            "-rss_limit_mb=3072",
            "-max_len=65536",
            "-print_final_stats=1",
            f"-artifact_prefix={run_dir}/",
            str(corpus),
        ]
        log = root / f"run-{report.runs}.log"
        with open(log, "wb") as out:
            proc = subprocess.run(
                cmd, stdout=out, stderr=subprocess.STDOUT, timeout=left + 60 + per_input_timeout, check=False
            )
        text = log.read_text(errors="replace")
        report.execs += sum(int(n) for n in _DONE.findall(text))
        if stats_path.exists():
            stats = json.loads(stats_path.read_text())
            report.tried += stats["tried"]
            report.accepted += stats["accepted"]
            report.rejected += stats["rejected"]
            report.records += stats["records"]
            report.records_rejected += stats["records_rejected"]
        saved = sorted(p for p in run_dir.iterdir() if p.is_file())
        if proc.returncode == 0 and not saved:
            continue  # ran out its time cleanly
        if not _DONE.search(text):
            # libFuzzer does not print its final stats on a crash: count from the target.
            report.execs += json.loads(stats_path.read_text())["tried"] if stats_path.exists() else 0
        kind = _crash_kind(text)
        input_path = str(saved[0]) if saved else ""
        report.crashes.append(Crash(kind, input_path, "\n".join(text.strip().splitlines()[-12:])))
    # Inputs the target started on but neither accepted nor rejected: the crashing ones.
    report.lost = report.tried - report.accepted - report.rejected
    report.seconds = round(time.monotonic() - started, 1)
    return report


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    scratch = Path(argv[3]) if len(argv) > 3 else Path("artifacts/fuzz")
    if scratch.exists() and len(argv) <= 3:
        shutil.rmtree(scratch)
    report = run_target(argv[1], float(argv[2]), scratch)
    print(json.dumps(asdict(report) | {"kinds": report.kinds}, indent=1))
    return 1 if report.crashes else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
