"""The insight-ready layer (lake/derived.py): built by etl, rebuilt only where bars changed,
its returns equal to the insights' own basis, and read by the service only while current."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.compute as pc

from tickerlake.config import Settings
from tickerlake.insights._panel import basis_returns
from tickerlake.lake.contract import read_actions, read_bars, read_table
from tickerlake.lake.derived import BY_DATE, DAILY_TOTALS, TICKER_YEARS, refresh_derived
from tickerlake.lake.pushdown import LakeSlices

CLI = [sys.executable, "-c", "from tickerlake.cli import main; main()"]


def tl(lake: Path, *args: str) -> dict:
    proc = subprocess.run(
        [*CLI, "--lake", str(lake), *args, "--json"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def test_etl_keeps_the_layer_per_changed_year(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    tl(lake, "ingest", "sim", "-t", "AAPL,MSFT,NVDA", "--start", "2020-01-01", "--end", "2022-12-31")
    first = tl(lake, "etl")["derived"]
    assert first["years"] == [2020, 2021, 2022] and first["rows"] > 2000
    settings = Settings(lake=str(lake))

    # Returns: the same numbers as the insights' basis (adj_close, else close without split days).
    bars = read_bars(settings)
    panel, rets = basis_returns(bars, read_actions(settings))
    by_date = read_table(settings, BY_DATE)
    assert by_date.num_rows == bars.num_rows
    col = {t: j for j, t in enumerate(panel.tickers)}
    row = {d: i for i, d in enumerate(panel.dates.astype(object))}
    compared = 0
    for t, d, r in zip(*(by_date.column(c).to_pylist() for c in ("ticker", "date", "ret")), strict=True):
        want = rets.r[row[d], col[t]]
        if r is None:
            assert math.isnan(want), (t, d)
        else:
            assert math.isclose(r, want, rel_tol=1e-12, abs_tol=1e-15), (t, d, r, want)
            compared += 1
    assert compared > 2000

    # Nothing changed: nothing rebuilt.
    assert tl(lake, "etl")["derived"]["years"] == []
    # Another year of bars for one ticker: only the years its new files span are rebuilt
    # (a ticker the corporate-actions pass rewrites counts for every year it spans).
    tl(lake, "ingest", "sim", "-t", "AMZN", "--start", "2022-06-01", "--end", "2023-06-30")
    again = tl(lake, "etl")["derived"]
    assert 2023 in again["years"] and 2020 not in again["years"]
    by_date = read_table(settings, BY_DATE)
    assert by_date.num_rows == read_bars(settings).num_rows
    years = read_table(settings, TICKER_YEARS)
    assert int(pc.sum(years.column("bars")).as_py()) == by_date.num_rows
    totals = read_table(settings, DAILY_TOTALS)
    days = np.unique(by_date.column("date").to_numpy())
    assert totals.num_rows == len(days)

    # Read by the service while current; a commit to the bars it was not built from retires it.
    assert LakeSlices.open(settings).derived
    tl(lake, "ingest", "sim", "-t", "AMZN", "--start", "2023-07-01", "--end", "2023-07-31")
    plain = Settings(lake=str(lake), derived_layer=False)
    tl_env = subprocess.run(
        [*CLI, "--lake", str(lake), "etl", "--json"], capture_output=True, text=True, timeout=300,
        env={**os.environ, "TICKERLAKE_DERIVED_LAYER": "false"},
    )  # fmt: skip
    assert tl_env.returncode == 0 and json.loads(tl_env.stdout)["derived"] is None
    assert not LakeSlices.open(plain).derived
    assert refresh_derived(settings).years == [2023]
    assert LakeSlices.open(settings).derived
