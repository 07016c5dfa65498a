"""Catalog URIs: which catalog each selects, and a clear error when its extra is missing."""

import importlib.util

import pytest

from tickerlake.config import Settings
from tickerlake.errors import UserError
from tickerlake.lake.catalog import catalog_kind, open_catalog, sqlalchemy_uri
from tickerlake.services.postgres import catalog_uri


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("sqlite:////tmp/x/catalog.db", "sqlite"),
        ("postgresql+psycopg://u:p@db:5432/lake", "postgresql"),
        ("postgresql://u:p@db/lake", "postgresql"),
        ("postgres://u:p@db/lake", "postgresql"),
        ("https://catalog.example/api/catalog", "rest"),
        ("http://127.0.0.1:8181", "rest"),
        ("glue", "glue"),
        ("mysql+pymysql://u:p@db/lake", "sql"),
    ],
)
def test_catalog_kind(uri: str, kind: str) -> None:
    assert catalog_kind(uri) == kind


def test_a_bare_postgresql_uri_goes_through_psycopg_3() -> None:
    assert sqlalchemy_uri("postgresql://u:p@db:5432/lake") == "postgresql+psycopg://u:p@db:5432/lake"
    assert sqlalchemy_uri("postgres://u:p@db/lake") == "postgresql+psycopg://u:p@db/lake"
    assert sqlalchemy_uri("postgresql+psycopg://u:p@db/lake") == "postgresql+psycopg://u:p@db/lake"
    assert sqlalchemy_uri("sqlite:////x.db") == "sqlite:////x.db"


def test_the_dev_server_uri() -> None:
    assert (
        catalog_uri("127.0.0.1:5433")
        == "postgresql+psycopg://tickerlake:tickerlake@127.0.0.1:5433/tickerlake"
    )


def test_glue_without_its_extra_says_what_to_install(tmp_path) -> None:
    # boto3 is not a dependency of the base install (nor of the dev extra).
    assert importlib.util.find_spec("boto3") is None
    with pytest.raises(UserError, match=r"pip install 'tickerlake\[glue\]'"):
        open_catalog(Settings(lake=str(tmp_path), catalog_uri="glue"))
