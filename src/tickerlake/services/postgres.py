"""The dev PostgreSQL server: a shared Iceberg SQL catalog that several hosts can use at once.

It runs Debian's PostgreSQL binaries (``apt-get install postgresql``; ``make`` installs
them when missing) on a cluster initialised in ``<state dir>/services/postgres/data``,
listening on 127.0.0.1 only, with password authentication for the dev role
``tickerlake``. PostgreSQL refuses to run as root, so when the launcher is root the
server runs as the ``postgres`` system user that Debian's package creates.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import os
import pwd
import shutil
import stat
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tickerlake.errors import TickerlakeError, TransientError, UserError
from tickerlake.services import _proc

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "DEV_DATABASE",
    "DEV_PASSWORD",
    "DEV_USER",
    "catalog_uri",
    "ensure_database",
    "init_cluster",
    "pg_binary",
    "postgres_healthy",
    "start_postgres",
    "wait_until_healthy",
]

#: The dev role, its password and the catalog database (dev only: the server listens on 127.0.0.1).
DEV_USER = "tickerlake"
DEV_PASSWORD = "tickerlake"
DEV_DATABASE = "tickerlake"

_HINT = "install PostgreSQL (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql)"


def catalog_uri(host_port: str, password: str = DEV_PASSWORD) -> str:
    """The ``TICKERLAKE_CATALOG_URI`` (SQLAlchemy, psycopg 3 driver) of a dev server at ``host:port``."""
    return f"postgresql+psycopg://{DEV_USER}:{password}@{host_port}/{DEV_DATABASE}"


@functools.cache
def pg_binary(name: str) -> str:
    """A PostgreSQL server program (``initdb``, ``postgres``): on PATH, else Debian's versioned folder.

    Raises:
        UserError: If PostgreSQL's server programs are not installed.
    """
    found = shutil.which(name)
    if found:
        return found
    # Debian keeps the server programs out of PATH, one folder per major version.
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(Path(p).parts[-3]))
    if candidates:
        return candidates[-1]
    raise UserError(f"PostgreSQL's {name} not found; the dev catalog server needs it: {_HINT}")


@dataclass(frozen=True, slots=True)
class _RunAs:
    """The system user the server runs as when the launcher is root."""

    uid: int
    gid: int
    name: str


def _run_as() -> _RunAs | None:
    """``postgres`` when running as root (PostgreSQL will not), else None (the current user)."""
    if os.geteuid() != 0:
        return None
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        raise UserError(
            f"PostgreSQL will not run as root and there is no 'postgres' user to run it as: {_HINT}"
        ) from None
    return _RunAs(pw.pw_uid, pw.pw_gid, pw.pw_name)


def _check_reachable(folder: Path, who: _RunAs) -> None:
    """Fail clearly when ``who`` cannot walk down to ``folder`` (e.g. a 0700 home or temp folder)."""
    for parent in reversed(folder.parents):
        st = parent.stat()
        mode = st.st_mode
        ok = (
            mode & stat.S_IXOTH
            or (st.st_uid == who.uid and mode & stat.S_IXUSR)
            or (st.st_gid == who.gid and mode & stat.S_IXGRP)
        )
        if not ok:
            raise UserError(
                f"PostgreSQL will not run as root, so it runs as user {who.name!r}, who cannot enter "
                f"{parent}: make it traversable (chmod o+x) or set TICKERLAKE_STATE_DIR elsewhere"
            )


def _chown(path: Path, who: _RunAs | None) -> None:
    if who is not None:
        os.chown(path, who.uid, who.gid)


def init_cluster(service_dir: Path) -> Path:
    """Create the database cluster in ``service_dir/data`` unless it is there already.

    Returns:
        The data folder.

    Raises:
        UserError: If PostgreSQL is missing or its user cannot reach the folder.
        TickerlakeError: If ``initdb`` fails (its first error line and the log path).
    """
    data = service_dir / "data"
    if (data / "PG_VERSION").is_file():
        return data
    who = _run_as()
    service_dir.mkdir(parents=True, exist_ok=True)
    if who is not None:
        _check_reachable(service_dir, who)
    _chown(service_dir, who)
    shutil.rmtree(data, ignore_errors=True)  # a half-made cluster from an interrupted initdb
    pwfile = service_dir / ".pwfile"
    pwfile.write_text(DEV_PASSWORD + "\n")
    pwfile.chmod(0o600)
    _chown(pwfile, who)
    log = service_dir / "initdb.log"
    argv = [
        pg_binary("initdb"),
        "-D",
        str(data),
        "-U",
        DEV_USER,
        f"--pwfile={pwfile}",
        "--auth=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C",
    ]
    try:
        with open(log, "wb") as out:
            proc = subprocess.run(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
                cwd=service_dir,
                user=who.uid if who else None,
                group=who.gid if who else None,
                extra_groups=[] if who else None,
            )
    finally:
        pwfile.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise TickerlakeError(f"initdb failed: {_proc.first_error(log)} (log: {log})")
    return data


def start_postgres(service_dir: Path, port: int) -> subprocess.Popen[bytes]:
    """Initialise the cluster if needed and launch the server on ``127.0.0.1:port`` (without waiting).

    The server takes no Unix socket (TCP on 127.0.0.1 only), and allows enough connections
    for a few sinks, ETL runs and a web server, each with a small pool.
    """
    data = init_cluster(service_dir)
    who = _run_as()
    log_path = service_dir / "postgres.log"
    argv = [
        pg_binary("postgres"),
        "-D",
        str(data),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        f"port={port}",
        "-c",
        "unix_socket_directories=",
        "-c",
        "max_connections=200",
    ]
    with open(log_path, "ab") as log:
        log.write(f"\n===== {time.strftime('%Y-%m-%dT%H:%M:%S%z')} starting: {' '.join(argv)}\n".encode())
        log.flush()
        return subprocess.Popen(
            argv,
            cwd=service_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            user=who.uid if who else None,
            group=who.gid if who else None,
            extra_groups=[] if who else None,
        )


def _connect(host_port: str, dbname: str, timeout_s: float) -> psycopg.Connection[Any]:
    import psycopg

    host, _, port = host_port.rpartition(":")
    return psycopg.connect(
        host=host,
        port=int(port),
        user=DEV_USER,
        password=DEV_PASSWORD,
        dbname=dbname,
        connect_timeout=max(1, round(timeout_s)),
        autocommit=True,
    )


def postgres_healthy(host_port: str, timeout_s: float = 3.0) -> bool:
    """Whether the dev server at ``host:port`` accepts the dev role's login and answers a query."""
    import psycopg

    try:
        with _connect(host_port, "postgres", timeout_s) as conn:
            conn.execute("SELECT 1")
        return True
    except (psycopg.Error, OSError, ValueError):
        return False


def ensure_database(host_port: str) -> None:
    """Create the catalog database on first start (idempotent)."""
    import psycopg
    from psycopg import sql

    with _connect(host_port, "postgres", 5.0) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DEV_DATABASE,)).fetchone()
        if not exists:
            # Two launchers may race here; either one making it is fine.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DEV_DATABASE)))


def wait_until_healthy(
    host_port: str, proc_alive: Callable[[], bool], log_path: Path, timeout_s: float
) -> float:
    """Poll until the server accepts logins, then make sure the catalog database exists.

    Returns:
        Seconds waited.

    Raises:
        TickerlakeError: If the server exits during start-up.
        TransientError: If the timeout passes first.
    """
    t0 = time.monotonic()
    while True:
        if not proc_alive():
            last = _proc.first_error(log_path)
            raise TickerlakeError(f"PostgreSQL exited during start-up: {last[:300]} (log: {log_path})")
        if time.monotonic() - t0 > timeout_s:
            raise TransientError(f"PostgreSQL did not answer within {timeout_s:.0f} s (log: {log_path})")
        if postgres_healthy(host_port, timeout_s=1.0):
            ensure_database(host_port)
            return time.monotonic() - t0
        time.sleep(0.1)
