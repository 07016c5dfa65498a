"""``tickerlake serve``: the real command serves the lake, and fails in one line when it cannot."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tickerlake.config import Settings

pytestmark = pytest.mark.integration


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("tickerlake")
    return (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "from tickerlake.cli import main; main()"]
    )


def test_serve_prints_its_url_and_answers(sim_lake: Settings) -> None:
    proc = subprocess.Popen(
        [*_cli(), "--lake", sim_lake.lake, "serve", "--port", "0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["url"].startswith("http://127.0.0.1:") and ready["lake"] == sim_lake.lake_uri
        with urllib.request.urlopen(ready["url"] + "api/health", timeout=10) as resp:
            assert json.load(resp)["status"] == "ok"
        with urllib.request.urlopen(ready["url"], timeout=10) as resp:
            assert b"tickerlake" in resp.read()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_serve_on_a_busy_port_fails_in_one_line(sim_lake: Settings) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [*_cli(), "--lake", sim_lake.lake, "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"cannot listen on 127.0.0.1:{port}" in lines[0]


def test_serve_without_a_lake_fails_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKERLAKE_")}
    proc = subprocess.run(
        [*_cli(), "--lake", str(tmp_path / "typo"), "serve", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 3  # not found
    assert "no lake at" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "typo").exists()
