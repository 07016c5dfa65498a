"""Two "hosts" share one S3 lake and one PostgreSQL catalog: what one loads, the other sees.

Each host is its own process tree with its own environment and state folder (so nothing
but the S3 store and the PostgreSQL database is shared), like two machines of a team.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

from tickerlake.services import S3Endpoint

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-c", "from tickerlake.cli import main; main()"]


def _host_env(state: Path, lake: str, s3: S3Endpoint, catalog_uri: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKERLAKE_")}
    return {
        **env,
        **s3.env(),
        "TICKERLAKE_LAKE": lake,
        "TICKERLAKE_STATE_DIR": str(state),
        "TICKERLAKE_CATALOG_URI": catalog_uri,
    }


def _run(env: dict[str, str], *args: str) -> dict | list:
    out = subprocess.run([*CLI, *args, "--json"], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def _inserted(report: dict, table: str) -> int:
    return next(t["inserted"] for t in report["tables"] if t["table"] == table)


def test_two_hosts_share_an_s3_lake_through_a_postgres_catalog(
    tmp_path: Path, s3_endpoint: S3Endpoint, postgres_catalog: str
) -> None:
    lake = f"s3://{s3_endpoint.bucket}/shared-{uuid.uuid4().hex[:8]}"
    host_a = _host_env(tmp_path / "a", lake, s3_endpoint, postgres_catalog)
    host_b = _host_env(tmp_path / "b", lake, s3_endpoint, postgres_catalog)

    # Host A lands 2 tickers and loads them.
    _run(
        host_a,
        "ingest",
        "sim",
        "--seed",
        "3",
        "-t",
        "AAPL,MSFT",
        "--start",
        "2023-01-01",
        "--end",
        "2023-12-31",
    )
    report = _run(host_a, "etl")
    loaded = _inserted(report, "market.daily_bars")
    # 2023 has 250 NYSE trading days; two tickers.
    assert loaded == 2 * 250

    # Host B (its own state folder: no SQLite file of its own) sees the tables and rows.
    tables = _run(host_b, "tables")
    assert "market.daily_bars" in {t["name"] for t in tables}
    rows = _run(host_b, "query", "SELECT ticker, count(*) AS n FROM market.daily_bars GROUP BY 1 ORDER BY 1")
    assert rows == [{"ticker": "AAPL", "n": 250}, {"ticker": "MSFT", "n": 250}]
    movers = _run(host_b, "insights", "movers", "--date", "2023-12-29")
    assert {m["ticker"] for m in movers["rows"]} == {"AAPL", "MSFT"}
    assert not (tmp_path / "b" / "catalogs").exists()

    proc = subprocess.Popen(
        [*CLI, "serve", "--port", "0", "--json"],
        env=host_b,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = json.loads(proc.stdout.readline())["url"]
        with urllib.request.urlopen(url + "api/meta", timeout=30) as resp:
            meta = json.load(resp)
        assert meta["tickers"] == ["AAPL", "MSFT"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    # New raw files, then both hosts run the ETL at once: every row is loaded exactly once.
    _run(host_b, "ingest", "sim", "--seed", "4", "-t", "NVDA", "--start", "2023-01-01", "--end", "2023-12-31")
    procs = [
        subprocess.Popen(
            [*CLI, "etl", "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for env in (host_a, host_b)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-1000:] for o in outs]
    inserted = sorted(_inserted(json.loads(o[0]), "market.daily_bars") for o in outs)
    assert inserted == [0, 250]
    total = _run(
        host_a, "query", "SELECT count(*) AS n, count(DISTINCT (ticker, date)) AS k FROM market.daily_bars"
    )
    assert total == [{"n": 750, "k": 750}]


def test_a_stale_commit_is_caught_on_postgres(tmp_path: Path, postgres_catalog: str) -> None:
    """The SQL catalog's compare-and-swap holds on PostgreSQL: the second of two writers that
    loaded the same snapshot is refused, refreshes and retries; no update is lost."""
    import pyarrow as pa
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField

    from tickerlake.config import Settings
    from tickerlake.lake.catalog import ensure_table, open_catalog

    settings = Settings(
        lake=str(tmp_path / "lake"), catalog_uri=postgres_catalog, state_dir=str(tmp_path / "s")
    )
    first = ensure_table(
        open_catalog(settings), "t.cas", Schema(NestedField(1, "x", LongType(), required=False))
    )
    second = open_catalog(settings).load_table("t.cas")  # same (empty) snapshot as `first`
    first.append(pa.table({"x": [1]}))
    second.append(pa.table({"x": [2]}))  # stale: refused by the catalog, then retried on top of [1]
    table = open_catalog(settings).load_table("t.cas")
    assert sorted(table.scan().to_arrow().column("x").to_pylist()) == [1, 2]
    snapshots = table.snapshots()
    assert len(snapshots) == 2 and snapshots[1].parent_snapshot_id == snapshots[0].snapshot_id
