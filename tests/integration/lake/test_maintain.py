"""``maintain`` on a real lake: compaction keeps every row once and sorts it, expiry and orphan
removal delete only what nothing references, and conflicts with other writers are survived."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tickerlake.config import Settings
from tickerlake.lake.catalog import ensure_table, load_table, open_catalog
from tickerlake.lake.contract import TABLES, arrow_schema
from tickerlake.lake.maintain import (
    MAINTAIN_PROP,
    MaintainOptions,
    MaintainReport,
    compact_table,
    expire_snapshots,
    maintain,
    referenced_files,
)
from tickerlake.lake.storage import LakeStorage
from tickerlake.stream.sink.committer import CommitConflict
from tickerlake.stream.sink.iceberg import IcebergVersion

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-c", "from tickerlake.cli import main; main()"]
OFFSETS = "tickerlake.kafka.offsets"
NOW = 1_700_000_000_000_000


def _ticks(batch: int, n: int = 50) -> pa.Table:
    """``n`` ticks of batch ``batch``, tickers and times deliberately out of order."""
    tickers = ["NVDA", "AAPL", "MSFT"]
    rows = {
        "ticker": [tickers[(batch + i) % 3] for i in range(n)],
        "ts": pa.array([NOW + (n - i) * 1000 + batch for i in range(n)], pa.timestamp("us", "UTC")),
        "price": [100.0 + i for i in range(n)],
        "size": [i + 1 for i in range(n)],
        "seq": [batch * n + i for i in range(n)],
        "kafka_topic": ["t"] * n,
        "kafka_partition": [0] * n,
        "kafka_offset": [batch * n + i for i in range(n)],
        "ingested_at": pa.array([NOW] * n, pa.timestamp("us", "UTC")),
    }
    return pa.table(rows, schema=arrow_schema(TABLES["stream.ticks"]))


def _lake(tmp_path: Path, batches: int) -> Settings:
    settings = Settings(lake=str(tmp_path / "lake"))
    table = ensure_table(open_catalog(settings), "stream.ticks")
    for b in range(batches):
        table.append(_ticks(b), snapshot_properties={OFFSETS: json.dumps({"t/0": (b + 1) * 50})})
    return settings


def _offsets(settings: Settings) -> list[int]:
    table = load_table(open_catalog(settings), "stream.ticks")
    return sorted(table.scan(selected_fields=("kafka_offset",)).to_arrow().column(0).to_pylist())


def _old(path: Path) -> None:
    past = time.time() - 7200
    os.utime(path, (past, past))


def test_maintain_compacts_sorts_expires_and_removes_orphans(tmp_path: Path) -> None:
    settings = _lake(tmp_path, batches=12)
    table = load_table(open_catalog(settings), "stream.ticks")
    data_dir = Path(table.location().removeprefix("file://")) / "data"
    old_files = sorted(data_dir.glob("*.parquet"))
    assert len(old_files) == 12
    # Leftovers of crashed writers: an old unreferenced Parquet file and .tmp files (one old,
    # one fresh: a writer may be writing it right now).
    stray = data_dir / "stray.parquet"
    pq.write_table(_ticks(99), stray)
    _old(stray)
    raw = tmp_path / "lake" / "raw" / "daily_bars"
    raw.mkdir(parents=True)
    (raw / ".tmp-dead").write_bytes(b"x")
    _old(raw / ".tmp-dead")
    (raw / ".tmp-live").write_bytes(b"y")

    (report,) = maintain(settings, options=MaintainOptions(retain_s=0.0, orphan_age_s=60.0))
    assert (report.files_before, report.files_rewritten, report.files_written, report.files_after) == (
        12,
        12,
        1,
        1,
    )
    assert report.rows_rewritten == 600
    assert _offsets(settings) == list(range(600))

    table = load_table(open_catalog(settings), "stream.ticks")
    # The compaction snapshot carries the stream position forward; the older ones are gone.
    assert len(table.metadata.snapshots) == 1 and report.snapshots_expired == 12
    summary = table.current_snapshot().summary
    assert summary[MAINTAIN_PROP] == "compact" and json.loads(summary[OFFSETS]) == {"t/0": 600}
    (task,) = table.scan().plan_files()
    rows = pq.read_table(task.file.file_path.removeprefix("file://"), columns=["ticker", "ts"]).to_pylist()
    assert rows == sorted(rows, key=lambda r: (r["ticker"], r["ts"]))

    # The 12 replaced files are deleted only after their grace period passed.
    for f in old_files:
        assert f.exists()
        _old(f)
    assert not stray.exists() and not (raw / ".tmp-dead").exists() and (raw / ".tmp-live").exists()
    (again,) = maintain(settings, options=MaintainOptions(retain_s=0.0, orphan_age_s=60.0))
    assert again.files_rewritten == 0 and again.snapshots_expired == 0
    assert again.orphans_removed >= 12 and not any(f.exists() for f in old_files)
    assert _offsets(settings) == list(range(600))


def test_compaction_survives_a_concurrent_append_and_a_concurrent_compaction(tmp_path: Path) -> None:
    settings = _lake(tmp_path, batches=6)
    catalog = open_catalog(settings)
    storage = LakeStorage(settings)
    stale = load_table(catalog, "stream.ticks")
    # Another writer appends after this compaction loaded the table.
    load_table(open_catalog(settings), "stream.ticks").append(_ticks(6))
    loads = iter([stale])

    def load():  # the stale version first, then fresh ones
        return next(loads, None) or load_table(catalog, "stream.ticks")

    report = MaintainReport(table="stream.ticks")
    compact_table(load, storage, 64 * 2**20, report)
    assert _offsets(settings) == list(range(350))

    # A second compaction planned on the version before the first one: its input files are
    # gone, so its commit fails cleanly, its files are deleted and it plans again (nothing to do).
    load_table(open_catalog(settings), "stream.ticks").append(_ticks(7))
    stale = load_table(open_catalog(settings), "stream.ticks")
    (first,) = maintain(settings, ["stream.ticks"], MaintainOptions(expire=False, remove_orphans=False))
    assert first.files_rewritten == 3  # the first compaction's file and the two appends
    loads = iter([stale])
    late = MaintainReport(table="stream.ticks")
    compact_table(load, storage, 64 * 2**20, late)
    assert late.commit_retries == 1 and late.files_rewritten == 0
    assert _offsets(settings) == list(range(400))
    # The losing compaction's file was deleted: every compacted file left is in some snapshot.
    written = {
        f"file://{p}" for p in (Path(stale.location().removeprefix("file://")) / "data").glob("compact-*")
    }
    assert len(written) == 2 and written <= referenced_files(load_table(catalog, "stream.ticks"))


def test_expiry_that_loses_to_a_concurrent_expiry_plans_again(tmp_path: Path) -> None:
    settings = _lake(tmp_path, batches=6)
    catalog = open_catalog(settings)
    stale = load_table(catalog, "stream.ticks")
    snaps = sorted(stale.metadata.snapshots, key=lambda s: s.timestamp_ms)
    assert len(snaps) == 6
    # Another expiry (a sink's, another maintain) removes the two oldest after `stale` was loaded:
    # pyiceberg then says "Snapshot … does not exist" (a ValueError), not a commit conflict.
    load_table(catalog, "stream.ticks").maintenance.expire_snapshots().by_ids(
        [snaps[0].snapshot_id, snaps[1].snapshot_id]
    ).commit()
    with pytest.raises(CommitConflict):  # the sink's expiry takes it for a lost race too
        IcebergVersion(stale, LakeStorage(settings)).expire_snapshots(keep=1)
    loads = iter([stale])

    def load():  # the stale version first, then fresh ones
        return next(loads, None) or load_table(catalog, "stream.ticks")

    time.sleep(0.01)  # every snapshot strictly older than the cutoff
    report = MaintainReport(table="stream.ticks")
    expire_snapshots(load, 0.0, report)
    assert report.commit_retries == 1
    assert report.snapshots_expired == 3  # the 4 left but the current one
    fresh = load_table(catalog, "stream.ticks")
    assert [s.snapshot_id for s in fresh.metadata.snapshots] == [snaps[5].snapshot_id]
    assert json.loads(fresh.current_snapshot().summary[OFFSETS]) == {"t/0": 300}
    assert _offsets(settings) == list(range(300))


def test_maintain_cli(tmp_path: Path) -> None:
    settings = _lake(tmp_path, batches=3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKERLAKE_")}
    out = subprocess.run(
        [*CLI, "--lake", settings.lake, "maintain", "stream.ticks", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    (report,) = json.loads(out.stdout)["tables"]
    assert (report["files_before"], report["files_after"], report["snapshots_expired"]) == (3, 1, 0)
    missing = subprocess.run(
        [*CLI, "--lake", settings.lake, "maintain", "market.nope"], env=env, capture_output=True, text=True
    )
    assert missing.returncode != 0 and "no table 'market.nope'" in missing.stderr
