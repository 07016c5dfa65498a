"""Pipeline page's ETL runs from `tickerlake etl` alone: the counts come from the snapshot summaries."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest

from tickerlake.config import Settings
from tickerlake.lake.contract import RAW_BAR_COLUMNS
from tickerlake.lake.etl import run_etl
from tickerlake.lake.ingest import land
from tickerlake.service.pipeline import etl_runs

pytestmark = pytest.mark.integration

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "real" / "yahoo_2004_2008.csv"


def _land(settings: Settings, *rows: tuple) -> None:
    """Raw bars of (ticker, date, close, source_row), landed strictly after any earlier landing."""
    cols: dict[str, list] = {c: [] for c in RAW_BAR_COLUMNS}
    for t, d, c, r in rows:
        values = (t, d, c, c, c, c, c, 10, "csv", "in.csv", r)
        for k, v in zip(RAW_BAR_COLUMNS, values, strict=True):
            cols[k].append(str(v))
    report = land(settings, "csv", [("daily_bars", pa.table(cols))], {"daily_bars": RAW_BAR_COLUMNS})
    for uri in report.files:
        path = uri.removeprefix("file://")
        st = os.stat(path)
        bump = len(os.listdir(os.path.dirname(path))) * 10**9
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump))


def test_etl_runs_reconcile_from_snapshot_summaries(tmp_path: Path) -> None:
    settings = Settings(lake=str(tmp_path / "lake"))
    _land(
        settings,
        ("AAPL", "2020-01-02", 1.5, 2),
        ("AAPL", "2020-01-02", 1.7, 3),  # a later row of the same key: one duplicate
        ("MSFT", "2020-01-02", 3.5, 4),
        ("MSFT", "not a date", 3.5, 5),  # quarantined
    )
    run_etl(settings)
    # Into an existing table: one row identical to a loaded one, one new, one bad.
    _land(
        settings,
        ("AAPL", "2020-01-02", 1.7, 2),
        ("AAPL", "2020-01-03", 1.8, 3),
        ("MSFT", "bad", 3.5, 4),
    )
    run_etl(settings)
    second, first = etl_runs(settings)
    assert (first.read, first.loaded, first.duplicates, first.quarantined, first.reconciles) == (
        4,
        2,
        1,
        1,
        True,
    )
    assert (second.read, second.loaded, second.duplicates, second.quarantined, second.reconciles) == (
        3,
        1,
        1,
        1,
        True,
    )
    (bars,) = second.tables
    assert (bars.table, bars.files, bars.read, bars.duplicates, bars.quarantined) == (
        "market.daily_bars",
        1,
        3,
        1,
        1,
    )


def test_the_corporate_actions_pass_neither_hides_nor_inflates_the_counts(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tickerlake.cli import app

    lake = str(tmp_path / "lake")
    for args in (["ingest", "csv", str(REAL)], ["etl"]):
        result = CliRunner().invoke(app, ["--lake", lake, *args, "--json"])
        assert result.exit_code == 0, result.stdout
    (run,) = etl_runs(Settings(lake=lake))
    # 4,368 rows read and loaded; the pass then rewrote AAPL's bars and added 35 inferred
    # actions (the split and 34 dividends), which are no rows read.
    tables = {t.table: t for t in run.tables}
    assert tables["market.corporate_actions"].added == 35 and tables["market.corporate_actions"].files is None
    assert (tables["market.daily_bars"].files, tables["market.daily_bars"].read) == (1, 4368)
    assert (run.read, run.loaded, run.duplicates, run.quarantined, run.reconciles) == (4368, 4368, 0, 0, True)
