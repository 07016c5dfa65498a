"""Spark's Iceberg JDBC-catalog properties for the lake's catalog database."""

from pathlib import Path

import pytest

from tickerlake.config import Settings
from tickerlake.errors import UserError
from tickerlake.services.spark import jdbc_catalog_properties


def test_sqlite_catalog_in_the_lake(tmp_path: Path) -> None:
    props = jdbc_catalog_properties(Settings(lake=str(tmp_path / "lake")))
    assert props["type"] == "jdbc" and props["jdbc.schema-version"] == "V1"
    assert props["uri"] == f"jdbc:sqlite:{tmp_path / 'lake' / 'catalog.db'}"
    assert props["warehouse"] == f"file://{tmp_path / 'lake' / 'warehouse'}"


def test_postgresql_catalog_credentials_go_to_jdbc_properties(tmp_path: Path) -> None:
    uri = "postgresql+psycopg://app:p%40ss@db.internal:5433/lake"
    props = jdbc_catalog_properties(Settings(lake=str(tmp_path), catalog_uri=uri))
    assert props["uri"] == "jdbc:postgresql://db.internal:5433/lake"
    assert (props["jdbc.user"], props["jdbc.password"]) == ("app", "p@ss")


@pytest.mark.parametrize("uri", ["glue", "http://127.0.0.1:8181"])
def test_other_catalogs_are_refused_in_one_line(tmp_path: Path, uri: str) -> None:
    with pytest.raises(UserError, match="SQLite and PostgreSQL"):
        jdbc_catalog_properties(Settings(lake=str(tmp_path), catalog_uri=uri))
