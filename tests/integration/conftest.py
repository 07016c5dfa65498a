"""Fixtures for integration tests: the real dev Kafka broker and S3 server.

Both are session-scoped and lazy: a service starts (through the same launcher as
``tickerlake services up``) the first time a test asks for it, runs in a temporary state
folder for the rest of the session, and is stopped at the end. A session that uses
neither starts no Java process. Jars come from ``services/lib`` (fetched by Maven on
first use; ``python -m tickerlake.services.jars`` fetches them up front).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tickerlake.config import Settings
from tickerlake.services import S3Endpoint, dev_s3, down, up

__all__ = ["kafka_bootstrap", "postgres_catalog", "postgres_server", "s3_endpoint", "services_settings"]

#: The bucket the ``s3_endpoint`` fixture creates for tests.
TEST_BUCKET = "tickerlake-it"


@pytest.fixture(scope="session")
def services_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings whose state folder holds this session's dev services.

    Kafka and S3 addresses are blanked so a developer's own ``TICKERLAKE_BOOTSTRAP_SERVERS``
    or ``TICKERLAKE_S3_ENDPOINT`` never sends test traffic to a real cluster.
    """
    root = tmp_path_factory.mktemp("services")
    return Settings(
        lake=str(root / "lake"), state_dir=str(root / "state"), bootstrap_servers="", s3_endpoint=""
    )


@pytest.fixture(scope="session")
def kafka_bootstrap(services_settings: Settings) -> Iterator[str]:
    """Bootstrap servers (``127.0.0.1:<port>``) of a single-node KRaft broker for the session."""
    (kafka,) = up(services_settings, only="kafka")
    assert kafka.endpoint is not None
    try:
        yield kafka.endpoint
    finally:
        down(services_settings, only="kafka")


@pytest.fixture(scope="session")
def s3_endpoint(services_settings: Settings) -> Iterator[S3Endpoint]:
    """An S3Proxy server for the session, with the bucket :data:`TEST_BUCKET` created.

    ``s3_endpoint.settings("s3://tickerlake-it/some/lake")`` gives Settings for a lake there.
    """
    up(services_settings, only="s3")
    try:
        running = dev_s3(services_settings)
        assert running is not None
        endpoint = dataclasses.replace(running, bucket=TEST_BUCKET)
        endpoint.create_bucket()
        yield endpoint
    finally:
        down(services_settings, only="s3")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """``host:port`` of a dev PostgreSQL server (Debian's package) for the session.

    Its state folder is a world-traversable temporary folder, not pytest's (0700 when
    root): as root the launcher runs PostgreSQL as the ``postgres`` user, who must reach it.
    """
    root = Path(tempfile.mkdtemp(prefix="tickerlake-pg-"))
    root.chmod(0o755)
    settings = Settings(lake=str(root / "lake"), state_dir=str(root / "state"), catalog_uri="")
    try:
        (pg,) = up(settings, only="postgres")
        assert pg.endpoint is not None
        yield urllib.parse.urlsplit(pg.endpoint).netloc
    finally:
        down(settings, only="postgres")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_catalog(postgres_server: str) -> str:
    """A ``postgresql+psycopg://`` catalog URI on a fresh, empty database of the session's server."""
    import psycopg

    from tickerlake.services.postgres import DEV_PASSWORD, DEV_USER

    name = f"t_{uuid.uuid4().hex[:12]}"
    host, _, port = postgres_server.rpartition(":")
    with psycopg.connect(
        host=host, port=int(port), user=DEV_USER, password=DEV_PASSWORD, dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"postgresql+psycopg://{DEV_USER}:{DEV_PASSWORD}@{postgres_server}/{name}"
