"""The error policy seen from the installed ``tickerlake`` command: one line, one exit code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("tickerlake")
    if script.exists():
        return [str(script)]
    found = shutil.which("tickerlake")
    return [found] if found else [sys.executable, "-c", "from tickerlake.cli import main; main()"]


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TICKERLAKE_")}
    return subprocess.run([*_cli(), *args], env={**clean, **env}, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", [["tables"], ["crawl"], ["query", "SELECT 1"]])
def test_bad_lake_scheme_is_one_line_and_exit_2(command: list[str]) -> None:
    proc = _run("--lake", "ftp://host/lake", *command)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "error: --lake: unsupported lake scheme 'ftp' in 'ftp://host/lake': use a path, file:// or s3://"
    ]


def test_bad_lake_from_the_environment_is_one_line(tmp_path: Path) -> None:
    proc = _run("tables", TICKERLAKE_LAKE="gs://bucket/lake")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: --lake: unsupported lake scheme 'gs' in 'gs://bucket/lake': use a path, file:// or s3://"
    ]


def test_bad_setting_from_the_environment_is_one_line(tmp_path: Path) -> None:
    proc = _run("--lake", str(tmp_path / "lake"), "tables", TICKERLAKE_QUERY_ROW_LIMIT="many")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: TICKERLAKE_QUERY_ROW_LIMIT: ")
    assert "Traceback" not in proc.stderr and "pydantic" not in proc.stderr


def test_refused_query_exits_4(tmp_path: Path) -> None:
    # Refused before the lake is opened: the guard reads the statement first.
    proc = _run("--lake", str(tmp_path / "lake"), "query", "DROP TABLE market.daily_bars")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 4 and len(lines) == 1 and lines[0].startswith("error: refused")
