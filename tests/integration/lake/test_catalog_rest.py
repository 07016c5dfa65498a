"""The REST catalog branch against a real Iceberg REST server (the Iceberg project's own REST
catalog classes from Maven Central, served on 127.0.0.1): ETL commits through it, queries read
through it, concurrent runs stay correct."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tickerlake.services import _proc
from tickerlake.services.rest import start_rest_catalog, wait_until_healthy

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLI = [sys.executable, "-c", "from tickerlake.cli import main; main()"]


@pytest.fixture
def rest_lake(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment of a local lake whose catalog is a REST server on a SQLite database."""
    lake = tmp_path / "lake"
    port = _proc.free_port()
    proc = start_rest_catalog(
        tmp_path / "rest", port, f"file://{lake}/warehouse", f"jdbc:sqlite:{tmp_path / 'rest' / 'catalog.db'}"
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(url, lambda: proc.poll() is None, tmp_path / "rest" / "rest.log", 120)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKERLAKE_")}
        yield {**env, "TICKERLAKE_LAKE": str(lake), "TICKERLAKE_CATALOG_URI": url}
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def _listeners(port: int) -> set[str]:
    """The local addresses that listen on ``port`` (hex, as /proc/net/tcp and tcp6 write them)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.rsplit(":", 1)
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    found.add(address)
    return found


def test_the_rest_server_listens_on_the_loopback_address_only(rest_lake: dict[str, str]) -> None:
    port = int(rest_lake["TICKERLAKE_CATALOG_URI"].rsplit(":", 1)[1])
    # 127.0.0.1 in little-endian hex, or the same as an IPv4-mapped IPv6 address (Java's
    # sockets); never 0.0.0.0 or ::.
    loopback = {"0100007F", "0000000000000000FFFF00000100007F"}
    assert _listeners(port) and _listeners(port) <= loopback, _listeners(port)


def _run(env: dict[str, str], *args: str) -> dict | list:
    out = subprocess.run([*CLI, *args, "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def _inserted(report: dict, table: str = "market.daily_bars") -> int:
    return next(t["inserted"] for t in report["tables"] if t["table"] == table)


def test_etl_and_queries_through_a_real_rest_catalog(rest_lake: dict[str, str]) -> None:
    _run(
        rest_lake,
        "ingest",
        "sim",
        "--seed",
        "5",
        "-t",
        "AAPL,MSFT",
        "--start",
        "2023-01-01",
        "--end",
        "2023-06-30",
    )
    assert _inserted(_run(rest_lake, "etl")) == 2 * 124  # NYSE trading days in 2023-H1
    rows = _run(
        rest_lake, "query", "SELECT ticker, count(*) AS n FROM market.daily_bars GROUP BY 1 ORDER BY 1"
    )
    assert rows == [{"ticker": "AAPL", "n": 124}, {"ticker": "MSFT", "n": 124}]

    # Two ETL runs at once on new raw files: the REST server refuses the stale commit (409),
    # the loser re-plans and loads nothing twice.
    _run(
        rest_lake,
        "ingest",
        "sim",
        "--seed",
        "6",
        "-t",
        "NVDA",
        "--start",
        "2023-01-01",
        "--end",
        "2023-06-30",
    )
    procs = [
        subprocess.Popen(
            [*CLI, "etl", "--json"], env=rest_lake, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-1000:] for o in outs]
    assert sorted(_inserted(json.loads(o[0])) for o in outs) == [0, 124]
    total = _run(
        rest_lake, "query", "SELECT count(*) AS n, count(DISTINCT (ticker, date)) AS k FROM market.daily_bars"
    )
    assert total == [{"n": 372, "k": 372}]
    (maintained,) = _run(rest_lake, "maintain", "market.daily_bars")["tables"]
    assert maintained["files_after"] == 1
    assert _run(rest_lake, "query", "SELECT count(*) AS n FROM market.daily_bars") == [{"n": 372}]
