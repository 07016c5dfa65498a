"""A killed dev service comes back on the same address, so running clients reconnect to it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
import urllib.error
import urllib.request

import pytest

from tickerlake.config import Settings
from tickerlake.services import S3Endpoint, status, up
from tickerlake.services._proc import port_free

pytestmark = pytest.mark.integration

__all__: list[str] = []


def _time_wait_port() -> int:
    """A port whose listener is gone but whose server side of a connection is in TIME_WAIT."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Like the JVM's server sockets (Kafka, Jetty): the TIME_WAIT socket inherits the flag.
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = server.accept()
    # The server closes first (as a killed service's kernel does), so its side lingers.
    conn.close()
    server.close()
    client.recv(1)
    client.close()
    return port


def test_port_with_connections_in_time_wait_counts_as_free() -> None:
    port = _time_wait_port()
    assert port_free(port)


def test_port_with_a_listener_is_not_free() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        assert not port_free(s.getsockname()[1])


def _wait_gone(pid: int, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} still alive")


def test_killed_s3_server_restarts_on_its_address(
    services_settings: Settings, s3_endpoint: S3Endpoint
) -> None:
    (before,) = status(services_settings, only="s3")
    assert before.pid is not None and before.endpoint is not None
    # A served request leaves a connection behind: killing the server puts it in TIME_WAIT.
    with contextlib.suppress(urllib.error.HTTPError):  # 403 without credentials: still served
        urllib.request.urlopen(before.endpoint, timeout=10).close()
    os.kill(before.pid, signal.SIGKILL)
    _wait_gone(before.pid)
    # The session's other tests use this server afterwards: up() must bring it back either way.
    (after,) = up(services_settings, only="s3")
    assert after.state == "running"
    assert after.pid != before.pid
    assert after.endpoint == before.endpoint == s3_endpoint.endpoint_url
