"""An Iceberg REST catalog server, built from the Iceberg project's own pieces from Maven Central.

Iceberg's REST fixture (the server of its ``iceberg-rest-fixture`` image) listens on every
interface with no setting for the address, so ``java/LoopbackRestCatalog.java`` assembles
the same parts (a JDBC catalog, SQLite file or PostgreSQL, behind Iceberg's
``RESTCatalogAdapter`` and ``RESTCatalogServlet`` in Jetty) with its connector on
127.0.0.1; Java runs that file from source. Table metadata goes under the warehouse with
HadoopFileIO. Point tickerlake at it with ``TICKERLAKE_CATALOG_URI=http://127.0.0.1:<port>``.
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

_LAUNCHER = Path(__file__).with_name("java") / "LoopbackRestCatalog.java"


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
            [java, "-Xmx256m", "-cp", classpath("rest"), str(_LAUNCHER)],
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
