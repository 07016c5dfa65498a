"""Property: any valid bars, written in any layout sites use, read back to the same bars.

Each layout writer below follows its site's format (labels, delimiter, date format,
number format, order, file names); the reader must recover the bars exactly, and must
refuse (naming the line) exactly the files whose dates read two ways.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickerlake.sources.csv import CsvReport
from tickerlake.sources.files import expand_inputs, read_sources
from tickerlake.sources.options import ReadOptions

Bar = tuple[str, dt.date, int, int, int, int, int]  # ticker, date, o/h/l/c in cents, volume
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TICKERS = ("AAPL", "MSFT", "BRK.B", "BF.B", "T")


@st.composite
def bar_sets(draw: st.DrawFn) -> list[Bar]:
    out: list[Bar] = []
    for ticker in draw(st.lists(st.sampled_from(TICKERS), min_size=1, max_size=3, unique=True)):
        days = draw(
            st.lists(
                st.dates(dt.date(1990, 1, 1), dt.date(2030, 12, 31)), min_size=1, max_size=6, unique=True
            )
        )
        for day in days:
            cents = st.integers(1, 250_000_000)
            o, h, lo, c = (draw(cents) for _ in range(4))
            out.append((ticker, day, o, h, lo, c, draw(st.integers(0, 10**11))))
    return out


def money(cents: int, thousands: str = "", decimal: str = ".") -> str:
    units = f"{cents // 100:,}".replace(",", thousands)
    return f"{units}{decimal}{cents % 100:02d}"


def by_ticker(bars: list[Bar]) -> dict[str, list[Bar]]:
    out: dict[str, list[Bar]] = {}
    for b in bars:
        out.setdefault(b[0], []).append(b)
    return out


# --------------------------------------------------------------------------- site writers
# Each returns the option sets the reader needs per file (only --ticker for Nasdaq).


def nasdaq(folder: Path, bars: list[Bar]) -> None:
    for k, (ticker, rows) in enumerate(by_ticker(bars).items()):
        sub = folder / ticker
        sub.mkdir()
        (sub / "tickerlake.toml").write_text(f'ticker = "{ticker}"\n')
        lines = ["Date,Close/Last,Volume,Open,High,Low"]
        for _, d, o, h, lo, c, v in sorted(rows, key=lambda b: b[1], reverse=True):  # newest first
            cells = [f"${money(x, ',')}" for x in (c,)] + [str(v)] + [f"${money(x, ',')}" for x in (o, h, lo)]
            lines.append(",".join([d.strftime("%m/%d/%Y"), *(f'"{x}"' for x in cells)]))
        (sub / f"HistoricalData_{1656624000000 + k}.csv").write_text("\n".join(lines) + "\n")


def stooq(folder: Path, bars: list[Bar]) -> None:
    lines = ["<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>"]
    for t, d, o, h, lo, c, v in bars:
        prices = ",".join(money(x) for x in (o, h, lo, c))
        lines.append(f"{t}.US,D,{d:%Y%m%d},000000,{prices},{v},0")
    (folder / "d_us.txt").write_text("\n".join(lines) + "\n")


def kaggle(folder: Path, bars: list[Bar]) -> None:
    for ticker, rows in by_ticker(bars).items():
        lines = ["Date,Open,High,Low,Close,Volume,OpenInt"]
        for _, d, o, h, lo, c, v in sorted(rows, key=lambda b: b[1]):
            lines.append(f"{d.isoformat()},{','.join(money(x) for x in (o, h, lo, c))},{v},0")
        (folder / f"{ticker.lower()}.us.txt").write_text("\n".join(lines) + "\n")


def european(folder: Path, bars: list[Bar]) -> None:
    for ticker, rows in by_ticker(bars).items():
        lines = ["Datum;Eröffnung;Hoch;Tief;Schluss;Volumen"]
        for _, d, o, h, lo, c, v in rows:
            prices = ";".join(money(x, ".", ",") for x in (o, h, lo, c))
            volume = f"{v:,}".replace(",", ".")
            lines.append(f"{d:%d.%m.%Y};{prices};{volume}")
        (folder / f"{ticker}.csv").write_text("\n".join(lines) + "\n", encoding="cp1252")


def jsonl(folder: Path, bars: list[Bar]) -> None:
    rows = [
        {
            "stock symbol": t,
            "Date": d.isoformat(),
            "Open": float(money(o)),
            "High": float(money(h)),
            "Low": float(money(lo)),
            "Close": float(money(c)),
            "Volume": v,
        }
        for t, d, o, h, lo, c, v in bars
    ]
    (folder / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def parquet(folder: Path, bars: list[Bar]) -> None:
    cols = list(zip(*bars, strict=True))
    table = pa.table(
        {
            "symbol": pa.array(cols[0]),
            "date": pa.array(cols[1], pa.date32()),
            **{
                k: pa.array([float(money(x)) for x in cols[i]])
                for i, k in enumerate(("open", "high", "low", "close"), 2)
            },
            "volume": pa.array(cols[6], pa.int64()),
        }
    )
    pq.write_table(table, folder / "bars.parquet")


def read_back(folder: Path, **options: object) -> tuple[list[Bar], CsvReport]:
    report = CsvReport()
    inputs = expand_inputs([folder], report.errors, report.warnings, ReadOptions.parse(options, "test"))
    got: list[Bar] = []
    for dataset, table in read_sources(inputs, report):
        if dataset != "daily_bars":
            continue
        for r in table.to_pylist():
            cents = [round(float(r[k]) * 100) for k in ("open", "high", "low", "close")]
            got.append((r["ticker"], dt.date.fromisoformat(r["date"]), *cents, int(r["volume"])))  # type: ignore[arg-type]
    return sorted(got), report


def check(writer: Callable[[Path, list[Bar]], None], bars: list[Bar], day_first: bool = False) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        writer(folder, bars)
        got, report = read_back(folder)
        # A slash-dated file reads two ways when no day of a ticker's file is above 12.
        ambiguous = [
            t
            for t, rows in by_ticker(bars).items()
            if all(b[1].day <= 12 for b in rows) and any(b[1].day != b[1].month for b in rows)
        ]
        if day_first and ambiguous:
            assert len(report.errors) == len(ambiguous)
            assert all(
                "read both as MM/DD/YYYY and as DD/MM/YYYY" in e.problem and e.row for e in report.errors
            )
            got, report = read_back(folder, date_format="MM/DD/YYYY")
        assert report.errors == []
        assert got == sorted(bars)


@SETTINGS
@given(bars=bar_sets())
def test_nasdaq_downloads_round_trip(bars: list[Bar]) -> None:
    check(nasdaq, bars, day_first=True)


@SETTINGS
@given(bars=bar_sets())
def test_stooq_exports_round_trip(bars: list[Bar]) -> None:
    check(stooq, bars)


@SETTINGS
@given(bars=bar_sets())
def test_kaggle_folders_round_trip(bars: list[Bar]) -> None:
    check(kaggle, bars)


@SETTINGS
@given(bars=bar_sets())
def test_european_exports_round_trip(bars: list[Bar]) -> None:
    check(european, bars)


@SETTINGS
@given(bars=bar_sets())
def test_json_rows_and_parquet_round_trip(bars: list[Bar]) -> None:
    check(jsonl, bars)
    check(parquet, bars)
