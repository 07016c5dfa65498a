"""Which services ``up``/``down``/``status`` act on once PostgreSQL is one of them, and whose server a URI names."""

from __future__ import annotations

from pathlib import Path

import pytest

from tickerlake.config import Settings
from tickerlake.errors import UserError
from tickerlake.services.launcher import (
    DEFAULT_SERVICES,
    _external_postgres,
    _host_port,
    _in_use,
    _selected,
    _State,
)


def _state(tmp_path: Path, ports: dict[str, dict[str, int]] | None = None) -> _State:
    state = _State(tmp_path)
    state.ports = ports or {}
    return state


def test_host_port_of_endpoints_and_uris() -> None:
    assert _host_port("postgresql://127.0.0.1:5433/tickerlake") == "127.0.0.1:5433"
    assert _host_port("postgresql+psycopg://u:p@db.example:5432/lake") == "db.example:5432"


def test_postgres_is_started_only_when_named(tmp_path: Path) -> None:
    assert DEFAULT_SERVICES == ("kafka", "s3")
    assert _selected(None, DEFAULT_SERVICES) == ["kafka", "s3"]
    assert _selected("postgres") == ["postgres"]
    with pytest.raises(UserError, match="unknown service 'mysql'"):
        _selected("mysql")
    settings = Settings(lake=str(tmp_path / "lake"), catalog_uri="")
    # Not started here and no catalog URI names one: status and down leave it out.
    assert _in_use(settings, _state(tmp_path)) == ["kafka", "s3"]


def test_a_catalog_uri_names_the_dev_server_or_the_users_own(tmp_path: Path) -> None:
    ours = _state(tmp_path, {"postgres": {"port": 5433}})
    dev = Settings(
        lake=str(tmp_path), catalog_uri="postgresql+psycopg://tickerlake:tickerlake@127.0.0.1:5433/tickerlake"
    )
    assert _external_postgres(dev, ours) is None
    rds = Settings(lake=str(tmp_path), catalog_uri="postgresql+psycopg://app:secret@db.internal:5432/lake")
    assert _external_postgres(rds, ours) == "db.internal:5432"
    assert _in_use(rds, ours) == ["kafka", "s3", "postgres"]
    sqlite = Settings(lake=str(tmp_path), catalog_uri="sqlite:////tmp/c.db")
    assert _external_postgres(sqlite, ours) is None
