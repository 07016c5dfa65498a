"""Fixtures for the web API tests: the simulated eight-ticker lake, built once per session,
and a FastAPI test client on it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tickerlake.config import Settings
from tickerlake.query import clear_engines

__all__ = ["build_sim_lake", "client", "sim_lake"]


def _cli() -> list[str]:
    """The ``tickerlake`` command of this environment."""
    script = Path(sys.executable).with_name("tickerlake")
    if script.exists():
        return [str(script)]
    found = shutil.which("tickerlake")
    return [found] if found else [sys.executable, "-c", "from tickerlake.cli import main; main()"]


def build_sim_lake(root: Path) -> Path:
    """``ingest sim`` (the default eight tickers, 1997-06-01..2023-12-12) and ``etl`` into
    ``root/lake`` once; later calls in the session reuse it."""
    lake = root / "lake"
    done = root / ".built"
    if not done.exists():
        env = {**os.environ, "TICKERLAKE_LAKE": str(lake)}
        for args in (["ingest", "sim", "--json"], ["etl", "--json"]):
            proc = subprocess.run(
                [*_cli(), "--lake", str(lake), *args], env=env, capture_output=True, text=True, timeout=600
            )
            assert proc.returncode == 0, f"tickerlake {' '.join(args)} failed: {proc.stderr[-2000:]}"
        done.write_text("ok")
    return lake


@pytest.fixture(scope="session")
def sim_lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings of the simulated lake shared by the session's web tests."""
    root = tmp_path_factory.getbasetemp() / "web-sim-lake"
    root.mkdir(exist_ok=True)
    lake = build_sim_lake(root)
    yield Settings(lake=str(lake), query_timeout_s=10.0, query_row_limit=5_000)
    clear_engines()


@pytest.fixture(scope="session")
def client(sim_lake: Settings) -> Iterator[object]:
    """A TestClient of the app on the simulated lake (errors answered, never raised)."""
    from fastapi.testclient import TestClient

    from tickerlake.web.app import create_app

    with TestClient(create_app(sim_lake), raise_server_exceptions=False) as test_client:
        yield test_client
