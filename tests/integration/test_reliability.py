"""The short form of the fault suite (``python -m reliability --short``), as ``make test`` runs it.

The full suite is ``make reliability``. Each scenario runs real processes (the CLI, the dev
Kafka broker, S3Proxy, ``serve``) and counts what was lost or doubled; this test fails
when any scenario fails, and prints the report table either way.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_short_fault_suite_passes(tmp_path: Path) -> None:
    out = tmp_path / "reliability.json"
    proc = subprocess.run(
        [sys.executable, "-m", "reliability", "--short", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    print(proc.stdout)
    report = json.loads(out.read_text())
    failed = {s["name"]: s["reason"] for s in report["scenarios"] if not s["passed"]}
    assert not failed, f"{failed}\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0
    # Every scenario counted something: none passed vacuously.
    assert all(s["rows_in"] > 0 for s in report["scenarios"]), report["scenarios"]
    names = {s["name"] for s in report["scenarios"]}
    assert {"etl-concurrent-local", "etl-kill", "sink-kill", "http-hostile"} <= names
    assert all(s["lost"] == 0 and s["duplicated"] == 0 for s in report["scenarios"])
