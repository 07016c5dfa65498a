"""Concurrent ETL runs on one lake: conflicts are caught in the Iceberg commit, never appended twice."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from tickerlake.config import Settings
from tickerlake.lake.catalog import open_catalog
from tickerlake.lake.contract import RAW_BAR_COLUMNS, read_table
from tickerlake.lake.etl import LOADED_PROP, run_etl
from tickerlake.lake.ingest import land

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-c", "from tickerlake.cli import main; main()"]


def _bars(rows: list[tuple]) -> "object":
    import pyarrow as pa

    cols: dict[str, list] = {c: [] for c in RAW_BAR_COLUMNS}
    for t, d, c, r in rows:
        for k, v in zip(RAW_BAR_COLUMNS, (t, d, c, c + 1, c - 1, c, c, 100, "csv", "in.csv", r), strict=True):
            cols[k].append(str(v))
    return pa.table(cols)


def _keys(settings: Settings) -> tuple[int, int]:
    t = read_table(settings, "market.daily_bars", columns=["ticker", "date"])
    return t.num_rows, len(
        set(zip(t.column("ticker").to_pylist(), t.column("date").to_pylist(), strict=True))
    )


def test_three_etl_processes_at_once_load_each_row_once(tmp_path):
    lake = tmp_path / "lake"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKERLAKE_")}
    env["TICKERLAKE_LAKE"] = str(lake)
    subprocess.run(
        [*CLI, "ingest", "sim", "--seed", "1", "-t", "AAPL,MSFT,NVDA", "--start", "2015-01-01", "--json"],
        env=env,
        check=True,
        capture_output=True,
    )
    procs = [
        subprocess.Popen([*CLI, "etl", "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[1][-500:] for o in outs]
    reports = [json.loads(o[0]) for o in outs]
    settings = Settings(lake=str(lake))
    rows, keys = _keys(settings)
    assert rows == keys > 0
    inserted = [
        next(t for t in r["tables"] if t["table"] == "market.daily_bars")["inserted"] for r in reports
    ]
    # Exactly one run loaded the rows; the others found the file loaded (at plan or after a conflict).
    assert sorted(inserted) == [0, 0, rows]


def test_a_run_that_loses_the_commit_race_replans_and_does_not_double(tmp_path):
    settings = Settings(lake=str(tmp_path / "lake"))
    land(
        settings,
        "csv",
        [("daily_bars", _bars([("AAPL", "2020-01-02", 10, 2), ("AAPL", "2020-01-03", -5, 3)]))],
        {"daily_bars": RAW_BAR_COLUMNS},
    )
    inner: list = []

    def concurrent_run(stage: str, done: int, total: int) -> None:
        # While the outer run validates, another run (own catalog connection) loads and commits.
        if "daily_bars: read" in stage and not inner:
            inner.append(run_etl(settings))

    outer = run_etl(settings, on_progress=concurrent_run)
    bars_load = next(t for t in outer.tables if t.table == "market.daily_bars")
    assert bars_load.conflicts == 1
    assert bars_load.files == 0 and bars_load.already_loaded == 1 and bars_load.inserted == 0
    inner_load = next(t for t in inner[0].tables if t.table == "market.daily_bars")
    assert (inner_load.inserted, inner_load.quarantined) == (1, 1)
    assert _keys(settings) == (1, 1)
    # The negative close was quarantined once, although both runs validated it.
    assert read_table(settings, "market.quarantine").num_rows == 1
    table = open_catalog(settings).load_table("market.daily_bars")
    assert len(json.loads(table.properties[LOADED_PROP])) == 1


def test_same_content_under_two_names_loads_once_and_rerun_changes_nothing(tmp_path):
    settings = Settings(lake=str(tmp_path / "lake"))
    report = land(
        settings,
        "csv",
        [("daily_bars", _bars([("MSFT", "2021-03-01", 20, 2), ("MSFT", "2021-03-02", 21, 3)]))],
        {"daily_bars": RAW_BAR_COLUMNS},
    )
    src = report.files[0].removeprefix("file://")
    shutil.copy(src, os.path.join(os.path.dirname(src), "copied by hand.csv"))
    first = next(t for t in run_etl(settings).tables if t.table == "market.daily_bars")
    assert (first.files, first.inserted, first.already_loaded) == (1, 2, 1)
    again = next(t for t in run_etl(settings).tables if t.table == "market.daily_bars")
    assert (again.files, again.read, again.already_loaded) == (0, 0, 2)
    assert _keys(settings) == (2, 2)


def test_processes_creating_a_new_lakes_catalog_and_table_at_once_all_succeed(tmp_path):
    code = (
        "import sys; from tickerlake.config import Settings; "
        "from tickerlake.lake.catalog import ensure_table, open_catalog; "
        "ensure_table(open_catalog(Settings(lake=sys.argv[1])), 'market.daily_bars')"
    )
    for i in range(4):
        lake = str(tmp_path / f"lake{i}")
        procs = [
            subprocess.Popen([sys.executable, "-c", code, lake], stderr=subprocess.PIPE) for _ in range(4)
        ]
        errors = [p.communicate(timeout=120)[1].decode()[-300:] for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
