"""Fixtures for the service-layer tests: the web tests' simulated eight-ticker lake (built
once per session and shared with them), and a test client of the app on it."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tickerlake.config import Settings
from tickerlake.query import clear_engines

__all__ = ["client", "sim_lake"]


def _web_fixtures() -> Any:
    """``tests/integration/web/conftest.py`` as a module: its lake builder is reused as it is.

    Tests are not packages (``--import-mode=importlib``), so it is loaded from its path.
    """
    path = Path(__file__).resolve().parents[1] / "web" / "conftest.py"
    spec = importlib.util.spec_from_file_location("_web_conftest_for_service", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def sim_lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings of the web tests' simulated lake (the same folder: built once per session)."""
    root = tmp_path_factory.getbasetemp() / "web-sim-lake"
    root.mkdir(exist_ok=True)
    lake = _web_fixtures().build_sim_lake(root)
    yield Settings(lake=str(lake), query_timeout_s=10.0, query_row_limit=5_000)
    clear_engines()


@pytest.fixture(scope="session")
def client(sim_lake: Settings) -> Iterator[Any]:
    """A TestClient of the app on the simulated lake (errors answered, never raised)."""
    from fastapi.testclient import TestClient

    from tickerlake.web.app import create_app

    with TestClient(create_app(sim_lake), raise_server_exceptions=False) as test_client:
        yield test_client
