"""An Iceberg REST catalog server: the Iceberg project's own REST fixture, from Maven Central.

``RESTCatalogServer`` (iceberg-open-api's test fixtures, the server of the project's
``iceberg-rest-fixture`` image) serves a JDBC catalog (SQLite file or PostgreSQL) through
the REST protocol and writes table metadata under its warehouse with HadoopFileIO. It
reads its settings from ``CATALOG_*`` environment variables (``CATALOG_REST_PORT`` →
``rest.port``). It listens on every interface (the fixture has no bind-address setting),
so it is for tests and local use, not for exposing on a network. Point tickerlake at it
with ``TICKERLAKE_CATALOG_URI=http://127.0.0.1:<port>``.
"""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tickerlake.errors import TickerlakeError, TransientError
from tickerlake.services import _proc
from tickerlake.services.jars import classpath, ensure_jars, java_executable

__all__ = ["rest_healthy", "start_rest_catalog", "wait_until_healthy"]

_MAIN = "org.apache.iceberg.rest.RESTCatalogServer"


def start_rest_catalog(
    service_dir: Path, port: int, warehouse: str, jdbc_uri: str
) -> subprocess.Popen[bytes]:
    """Launch the server (without waiting); its log is ``service_dir/rest.log``.

    Args:
        service_dir: The server's folder (log).
        port: HTTP port.
        warehouse: Where new tables go (``file:///…``): the lake's warehouse.
        jdbc_uri: The catalog database (``jdbc:sqlite:/path/catalog.db`` or ``jdbc:postgresql://…``).
    """
    import os

    java = java_executable()
    ensure_jars(["rest"])
    env = {
        **os.environ,
        "CATALOG_REST_PORT": str(port),
        "CATALOG_WAREHOUSE": warehouse,
        "CATALOG_URI": jdbc_uri,
        "CATALOG_JDBC_SCHEMA__VERSION": "V1",
    }
    log_path = service_dir / "rest.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [java, "-Xmx256m", "-cp", classpath("rest"), _MAIN],
            cwd=service_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def rest_healthy(url: str, timeout_s: float = 3.0) -> bool:
    """Whether a REST catalog answers ``GET /v1/config`` at ``url``."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/v1/config", timeout=timeout_s) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_until_healthy(url: str, proc_alive: Callable[[], bool], log_path: Path, timeout_s: float) -> float:
    """Poll until the server answers.

    Returns:
        Seconds waited.

    Raises:
        TickerlakeError: If the server exits during start-up.
        TransientError: If the timeout passes first.
    """
    t0 = time.monotonic()
    while True:
        if not proc_alive():
            raise TickerlakeError(
                f"the REST catalog exited during start-up: {_proc.first_error(log_path)} (log: {log_path})"
            )
        if time.monotonic() - t0 > timeout_s:
            raise TransientError(
                f"the REST catalog did not answer within {timeout_s:.0f} s (log: {log_path})"
            )
        if rest_healthy(url, timeout_s=1.0):
            return time.monotonic() - t0
        time.sleep(0.2)
