"""The sliced reads give the same insights as the whole table did, for every insight kind.

Before issue 15 every operation handed the whole of ``market.daily_bars`` (the selected
tickers' whole history) to the pure insight functions. Now each reads only the slice it
needs (tickers, days, boundary rows) through DuckDB. Here both paths run side by side on
the eight-ticker lake and on a 200-ticker simulated universe: every number equal to 1e-9,
every error of the same kind.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tickerlake import insights as ins
from tickerlake.config import Settings
from tickerlake.errors import TickerlakeError
from tickerlake.lake import pushdown
from tickerlake.lake.contract import BAR_COLUMNS, read_actions, read_bars
from tickerlake.service import insights as svc
from tickerlake.service.market import Market, MarketStore

D = dt.date.fromisoformat


def same(a: Any, b: Any, path: str = "") -> None:
    """Assert ``a`` equals ``b``: floats to 1e-9 (relative, or absolute near zero), NaN equal to NaN."""
    if isinstance(a, float) or isinstance(b, float):
        assert isinstance(a, int | float) and isinstance(b, int | float), f"{path}: {a!r} vs {b!r}"
        if math.isnan(a) or math.isnan(b):
            assert math.isnan(a) and math.isnan(b), f"{path}: {a!r} vs {b!r}"
        else:
            assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), f"{path}: {a!r} vs {b!r}"
    elif dataclasses.is_dataclass(a) and not isinstance(a, type):
        assert type(a) is type(b), f"{path}: {type(a)} vs {type(b)}"
        for f in dataclasses.fields(a):
            same(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), f"{path}: {len(a)} vs {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{i}]")
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{path}: keys differ"
        for k in a:
            same(a[k], b[k], f"{path}[{k!r}]")
    else:
        assert a == b, f"{path}: {a!r} vs {b!r}"


def outcome(fn: Callable[[], Any]) -> Any:
    """The result, or the error's class (messages may name the slice's span)."""
    try:
        return fn()
    except TickerlakeError as e:
        return type(e)


def whole(market: Market, settings: Settings, tickers: str | None) -> pa.Table:
    """The pre-issue-15 input: the selected tickers' whole history."""
    bars = read_bars(settings, columns=BAR_COLUMNS)
    chosen = market.select(tickers)
    if len(chosen) == len(market.tickers):
        return bars
    return bars.filter(pc.is_in(bars.column("ticker"), value_set=pa.array(list(chosen))))


def cases(market: Market, sel: str | None) -> list[tuple[str, Any, Callable[[pa.Table, pa.Table], Any]]]:
    """(kind, service parameters, the same insight on whole bars) for one selection."""
    last = market.last_date
    assert last is not None
    mid = market.date(len(market.dates) // 2)
    early = market.date(30)
    w2 = (last - dt.timedelta(days=730), last)
    out: list[tuple[str, Any, Callable[[pa.Table, pa.Table], Any]]] = []
    for day in (last, mid, early):
        for measure in ("close", "volume"):
            out.append(
                ("movers", svc.MoversParams(sel, day, 5, False, measure),
                 lambda b, a, d=day, m=measure: ins.movers(b, d, 5, False, m, "pct_change", a))
            )  # fmt: skip
    for grain in ("day", "week", "month", "quarter", "year"):
        out.append(
            ("period", svc.PeriodParams(sel, mid, grain),
             lambda b, a, g=grain: ins.period_over_period(b, mid, g, "close", a))
        )  # fmt: skip
    for grain in ("month", "year"):
        out.append(
            ("period-to-date", svc.PeriodToDateParams(sel, last, grain),
             lambda b, a, g=grain: ins.period_to_date(b, last, g, "close", a))
        )  # fmt: skip
    out += [
        ("growth", svc.GrowthParams(sel, None, *w2, "month"),
         lambda b, a: ins.growth(b, *w2, "month", "close", a)),
        ("ranked", svc.RankedParams(sel, None, *w2, 5),
         lambda b, a: ins.ranked(b, *w2, 5, False, "close", a)),
        ("ranked", svc.RankedParams(sel, None, None, None, 5, True, "volume"),
         lambda b, a: ins.ranked(b, None, None, 5, True, "volume", a)),
        ("extremes", svc.ExtremesParams(sel, None, *w2),
         lambda b, a: ins.extremes(b, *w2, "close", a)),
        ("anomalies", svc.AnomaliesParams(sel, None, *w2),
         lambda b, a: ins.anomalies(b, *w2, 0.5, "close", 3, a)),
        ("anomalies", svc.AnomaliesParams(sel, None, D("2008-09-01"), D("2008-12-31"), 0.8, "adj_close"),
         lambda b, a: ins.anomalies(b, D("2008-09-01"), D("2008-12-31"), 0.8, "adj_close", 3, a)),
        ("forecast", svc.ForecastParams(None, 30, "close", sel, mid),
         lambda b, a: ins.forecast(b, list(market.select(sel)) if len(market.select(sel)) > 1
                                   else market.select(sel)[0], 30, "close", a, mid)),
        ("recessions", svc.RecessionParams(sel),
         lambda b, a: ins.recession(b, "study-2008-focus", None, None, None, "close", a)),
        ("recessions", svc.RecessionParams(sel, "covid-2020"),
         lambda b, a: ins.recession(b, "covid-2020", None, None, None, "close", a)),
        ("summary", svc.SummaryParams(sel, None, last - dt.timedelta(days=365), last),
         lambda b, a: ins.summary(b, last - dt.timedelta(days=365), last, 5, "close", a)),
    ]  # fmt: skip
    return out


def check_lake(settings: Settings, selections: list[str | None]) -> int:
    market = MarketStore(settings).market()
    # The universe's anomalies and summary read the returns the ETL stored: that path too.
    assert market.slices.derived
    actions = read_actions(settings)
    compared = 0
    for sel in selections:
        bars = whole(market, settings, sel)
        for kind, params, direct in cases(market, sel):
            op = svc.KINDS[kind][1]
            sliced = outcome(lambda op=op, params=params: op(market, params, None))
            before = outcome(lambda direct=direct, bars=bars: direct(bars, actions))
            same(sliced, before, f"{kind} {params}")
            compared += 1
        # recessions-compare against each window on whole bars
        cmp = svc.recession_compare(market, svc.RecessionCompareParams(sel))
        for row in cmp.windows:
            w = ins.BUILTIN_WINDOWS[row.name]
            res = outcome(lambda w=w, bars=bars: ins.recession(bars, w, corporate_actions=actions))
            if isinstance(res, type):
                assert row.error is not None, row.name
            else:
                assert row.basket is not None and row.tickers is not None
                same(row.basket.return_pct, res.basket.return_pct, row.name)
                same(row.basket.max_drawdown_pct, res.basket.max_drawdown_pct, row.name)
                same(
                    {t.ticker: t.return_pct for t in res.tickers},
                    {k: v.return_pct for k, v in row.tickers.items()},
                )
            compared += 1
    return compared


@pytest.mark.parametrize("in_memory", [True, False], ids=["in-memory", "from-files"])
@pytest.mark.parametrize("stored", [False, True], ids=["recomputed", "stored-returns"])
def test_the_eight_ticker_lake_answers_as_on_the_whole_table(
    sim_lake: Settings, stored: bool, in_memory: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The universe's anomalies and summary read the stored returns on big lakes: here too.
    if stored:
        monkeypatch.setattr(svc, "STORED_RETURNS_TICKERS", 0)
    # A small lake is copied into memory; big ones are read from their files: both here.
    monkeypatch.setattr(pushdown, "MEMORY_ROWS", 10**9 if in_memory else 0)
    market = MarketStore(sim_lake).market()
    assert market.slices._src["bars"].startswith("read_parquet(") is not in_memory
    assert check_lake(sim_lake, [None, "AAPL", "MSFT,NVDA,TSLA"]) > 60


@pytest.fixture(scope="module")
def universe_lake(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    lake = tmp_path_factory.mktemp("universe") / "lake"
    cli = [sys.executable, "-c", "from tickerlake.cli import main; main()", "--lake", str(lake)]
    for args in (
        ["ingest", "sim", "--universe", "200", "--start", "2004-01-01", "--json"],
        ["etl", "--json"],
    ):
        proc = subprocess.run([*cli, *args], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
    return Settings(lake=str(lake))


@pytest.mark.slow
def test_a_200_ticker_universe_answers_as_on_the_whole_table(universe_lake: Settings) -> None:
    market = MarketStore(universe_lake).market()
    assert len(market.tickers) == 200
    # IPOs and delistings during the data make the exclusions of movers and periods count.
    late = [t for t in market.tickers if market.first[t] > market.date(len(market.dates) // 2)]
    assert late, "the simulated universe lists tickers along the way"
    fifty = ",".join(market.tickers[:50])
    assert check_lake(universe_lake, [None, fifty]) > 40


@pytest.mark.slow
def test_a_200_ticker_universe_answers_as_on_the_whole_table_from_stored_returns(
    universe_lake: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(svc, "STORED_RETURNS_TICKERS", 0)
    assert check_lake(universe_lake, [None]) > 20


def test_paths_are_used(tmp_path: Path) -> None:
    # The module's own helper: a float within 1e-9 passes, one beyond fails.
    same(1.0, 1.0 + 1e-12)
    with pytest.raises(AssertionError):
        same(1.0, 1.0 + 1e-6)


# The peak resident memory of one command, measured by a fresh wrapper process (its only child).
_PEAK = (
    "import resource, subprocess, sys; "
    "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
    "sys.stdout.write(p.stdout); "
    "sys.stderr.write(f'{p.returncode} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}')"
)


@pytest.mark.slow
def test_cli_insights_stay_within_a_memory_ceiling_and_a_screen(universe_lake: Settings) -> None:
    cli = [
        sys.executable,
        "-c",
        "from tickerlake.cli import main; main()",
        "--lake",
        str(universe_lake.lake_uri),
    ]
    market = MarketStore(universe_lake).market()
    last = market.last_date
    assert last is not None
    early = market.date(30)  # most of the universe is not listed yet: hundreds of exclusions
    outputs = []
    for args in (
        ["insights", "movers", "--date", early.isoformat()],
        ["insights", "movers"],
        ["insights", "period", "--grain", "month"],
        [
            "insights",
            "anomalies",
            "--start",
            (last - dt.timedelta(days=730)).isoformat(),
            "--end",
            last.isoformat(),
        ],
    ):
        proc = subprocess.run(
            [sys.executable, "-c", _PEAK, *cli, *args], capture_output=True, text=True, timeout=300,
            env={**os.environ, "COLUMNS": "120"},
        )  # fmt: skip
        code, peak_kb = proc.stderr.split()[-2:]
        assert code == "0", proc.stderr[-1000:]
        # Before issue 15 the whole table was read and pivoted (~500 MB here, 636 MB from 1997);
        # a slice stays near the interpreter's own ~220 MB.
        assert int(peak_kb) < 450_000, f"{args}: {int(peak_kb) // 1024} MB"
        assert proc.stdout.count("\n") <= 60, f"{args}: {proc.stdout.count(chr(10))} lines"
        outputs.append(proc.stdout)
    # The early day's unlisted tickers are counted on one line, not listed one per line.
    excluded = [line for line in outputs[0].splitlines() if line.startswith("excluded ")]
    assert len(excluded) == 1 and re.match(r"excluded \d+ tickers", excluded[0]), excluded
