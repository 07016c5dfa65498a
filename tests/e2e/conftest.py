"""Fixtures for the browser tests: the simulated lake, the real ``tickerlake serve`` process
on a free loopback port, and headless Chromium (Debian's package) driven by Playwright.

Chromium is never downloaded by Playwright: it is the system's ``/usr/bin/chromium``
(``make browser`` installs it), started with a fresh profile and no background traffic.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "browser", "serve", "server", "shots", "sim_lake_path"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("tickerlake")
    if script.exists():
        return [str(script)]
    found = shutil.which("tickerlake")
    return [found] if found else [sys.executable, "-c", "from tickerlake.cli import main; main()"]


def _build_sim_lake(root: Path) -> Path:
    """``ingest sim`` + ``etl`` into ``root/lake`` once per session (the same folder as the
    API tests' lake, so a session running both builds it once)."""
    lake = root / "lake"
    done = root / ".built"
    if not done.exists():
        for args in (["ingest", "sim", "--json"], ["etl", "--json"]):
            proc = subprocess.run(
                [*_cli(), "--lake", str(lake), *args], capture_output=True, text=True, timeout=600
            )
            assert proc.returncode == 0, f"tickerlake {' '.join(args)} failed: {proc.stderr[-2000:]}"
        done.write_text("ok")
    return lake


@pytest.fixture(scope="session")
def sim_lake_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The simulated eight-ticker lake."""
    root = tmp_path_factory.getbasetemp() / "web-sim-lake"
    root.mkdir(exist_ok=True)
    return _build_sim_lake(root)


@pytest.fixture(scope="session")
def server(sim_lake_path: Path) -> Iterator[str]:
    """Base URL (``http://127.0.0.1:<port>/``) of ``tickerlake serve`` on the simulated lake."""
    with serve(sim_lake_path) as url:
        yield url


@contextlib.contextmanager
def serve(lake: Path) -> Iterator[str]:
    """Run ``tickerlake serve`` on ``lake`` (a free loopback port) and yield its base URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKERLAKE_")}
    proc = subprocess.Popen(
        [*_cli(), "--lake", str(lake), "serve", "--host", "127.0.0.1", "--port", "0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(
                f"tickerlake serve did not start: {proc.stderr.read() if proc.stderr else ''}"
            )
        yield json.loads(line)["url"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless Chromium context with a fresh profile."""
    try:
        from playwright import sync_api
    except ImportError as e:  # a missing dependency fails the run: browser tests never skip
        pytest.fail(f"playwright is missing ({e}): `make test` installs the dev dependencies")
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} not found: install Debian's chromium (make browser / apt-get install chromium)"
        )
    profile = tempfile.mkdtemp(prefix="tickerlake-chromium-")
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1440, "height": 900},
            accept_downloads=True,
        )
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def shots(request: pytest.FixtureRequest) -> Callable[[Any, str], Path]:
    """Save a full-page screenshot under ``artifacts/screenshots/``."""
    folder = Path(request.config.rootpath) / "artifacts" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)

    def save(page: Any, name: str) -> Path:
        path = folder / f"{name}.png"
        # From the top: the sticky top bar would otherwise be drawn where the view was scrolled to.
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A new tab; the test fails if the page logs a JavaScript error.

    A module whose pages ask for 4xx answers on purpose sets ``ALLOW_4XX = True``: the
    browser logs those as failed loads, which are then not counted as errors.
    """
    tab = browser.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    tab.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    tab.set_default_timeout(20_000)
    yield tab
    tab.close()
    if getattr(request.module, "ALLOW_4XX", False):
        errors = [e for e in errors if "status of 4" not in e]
    assert not errors, errors
