"""Price files as sites deliver them: the same June 2022 AAPL and MSFT bars in every layout.

Fixtures in ``tests/fixtures/csv/layouts/`` (hand-written, see the README there): a
Nasdaq.com download, a Stooq export, Kaggle's per-ticker ``.us.txt`` files, German and
French broker exports, the original project's JSON rows; plus the ambiguous-date and
dotted-ticker cases. Each must read to the same bars.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tickerlake.errors import UserError
from tickerlake.sources.csv import CsvReport
from tickerlake.sources.files import expand_inputs, read_sources
from tickerlake.sources.options import ReadOptions

LAYOUTS = Path(__file__).resolve().parents[2] / "fixtures" / "csv" / "layouts"

#: The bars every layout holds: (ticker, date, open, high, low, close, volume).
BARS = sorted(
    [
        ("AAPL", "2022-06-01", 149.90, 151.74, 147.68, 148.71, 74286600),
        ("AAPL", "2022-06-02", 147.83, 151.27, 146.86, 151.21, 72348100),
        ("AAPL", "2022-06-03", 146.90, 147.97, 144.46, 145.38, 88570300),
        ("AAPL", "2022-06-30", 137.25, 138.37, 133.77, 136.72, 98964500),
        ("MSFT", "2022-06-01", 275.20, 277.69, 270.04, 272.42, 25292300),
        ("MSFT", "2022-06-02", 270.31, 274.65, 261.60, 274.58, 40818200),
        ("MSFT", "2022-06-03", 270.31, 273.45, 268.41, 270.02, 28052200),
        ("MSFT", "2022-06-30", 257.05, 259.53, 252.90, 256.83, 31730900),
    ]
)


def read(*paths: Path | str, **options: object) -> tuple[dict[str, list[dict[str, str | None]]], CsvReport]:
    report = CsvReport()
    opts = ReadOptions.parse(options, "test") if options else None
    inputs = expand_inputs(paths, report.errors, report.warnings, opts)
    rows: dict[str, list[dict[str, str | None]]] = {}
    for dataset, table in read_sources(inputs, report):
        rows.setdefault(dataset, []).extend(table.to_pylist())
    return rows, report


def bars(rows: dict[str, list[dict[str, str | None]]]) -> list[tuple[object, ...]]:
    """Raw bar rows as numbers, as the ETL types them."""
    out = []
    for r in rows["daily_bars"]:
        assert r["adj_close"] is None
        values = [float(r[k] or "nan") for k in ("open", "high", "low", "close")]
        out.append((r["ticker"], r["date"], *values, int(r["volume"] or -1)))
    return sorted(out)


@pytest.mark.parametrize(
    ("layout", "read_as"),
    [
        # Newest first, $ prices, MM/DD/YYYY; the tickers come from each folder's sidecar.
        ("nasdaq", {("MM/DD/YYYY", ".")}),
        # <TICKER>,<PER>,<DATE>... with AAPL.US symbols and YYYYMMDD dates.
        ("stooq/us_daily.txt", {("YYYYMMDD", None)}),
        # aapl.us.txt, msft.us.txt in a folder of .txt files; OpenInt ignored.
        ("kaggle", {(None, None)}),
        # German (;, 1.234,56, DD.MM.YYYY) and French (Windows-1252, € and no-break-space
        # thousands, DD/MM/YYYY) broker exports.
        ("european", {("DD.MM.YYYY", ","), ("DD/MM/YYYY", ",")}),
        # The original project's rows as JSON lines ("stock symbol", "Date"...).
        ("jsonl/producer_rows.jsonl", {(None, None)}),
    ],
)
def test_every_layout_reads_to_the_same_bars(
    layout: str, read_as: set[tuple[str | None, str | None]]
) -> None:
    rows, report = read(LAYOUTS / layout)
    assert report.errors == []
    assert bars(rows) == BARS
    assert {(f.date_format, f.decimal) for f in report.files} == read_as


def test_exchange_suffixes_are_removed_and_the_original_symbols_kept() -> None:
    rows, report = read(LAYOUTS / "stooq" / "us_daily.txt", LAYOUTS / "kaggle")
    assert [f.renamed for f in report.files] == [
        {"AAPL.US": "AAPL", "MSFT.US": "MSFT"},
        {"AAPL.US": "AAPL"},
        {"MSFT.US": "MSFT"},
    ]
    # The raw zone keeps which symbol became which ticker, per file.
    assert sorted((r["source_symbol"], r["ticker"], r["rule"]) for r in rows["source_symbols"]) == [
        ("AAPL.US", "AAPL", "exchange suffix"),
        ("AAPL.US", "AAPL", "exchange suffix"),
        ("MSFT.US", "MSFT", "exchange suffix"),
        ("MSFT.US", "MSFT", "exchange suffix"),
    ]


def test_dotted_tickers_are_never_mangled() -> None:
    rows, report = read(LAYOUTS / "dotted")
    assert report.errors == []
    assert sorted((r["ticker"], r["date"]) for r in rows["daily_bars"]) == [
        ("BF.B", "2022-06-01"),  # bf.b.us.txt
        ("BF.B", "2022-06-02"),  # BF.B.US in a symbol column
        ("BRK.B", "2022-06-01"),  # BRK.B.csv
        ("BRK.B", "2022-06-02"),  # BRK.B in a symbol column
    ]


def test_a_file_whose_dates_read_two_ways_is_refused_unless_told() -> None:
    rows, report = read(LAYOUTS / "ambiguous")
    assert rows == {}
    [err] = report.errors
    assert str(err) == (
        f"{LAYOUTS / 'ambiguous' / 'AAPL.csv'}:2: dates such as '06/03/2022' read both as MM/DD/YYYY "
        "and as DD/MM/YYYY, and no date in the file tells them apart "
        "(pass --date-format MM/DD/YYYY or --date-format DD/MM/YYYY)"
    )
    rows, report = read(LAYOUTS / "ambiguous", date_format="MM/DD/YYYY")
    assert report.errors == []
    assert bars(rows) == [b for b in BARS if b[0] == "AAPL" and b[1] != "2022-06-30"]


def test_a_file_without_a_ticker_is_refused_with_the_option_that_fixes_it(tmp_path: Path) -> None:
    src = LAYOUTS / "nasdaq" / "AAPL" / "HistoricalData_1656624000000.csv"
    shutil.copy(src, tmp_path / src.name)  # without the folder's sidecar
    rows, report = read(tmp_path / src.name)
    assert [str(e) for e in report.errors] == [
        f"{tmp_path / src.name}: cannot determine the ticker: no ticker column and the file name "
        "'HistoricalData_1656624000000.csv' is not a ticker symbol (pass --ticker SYMBOL, or rename the file SYMBOL.csv)"
    ]
    rows, report = read(tmp_path / src.name, ticker="aapl")
    assert bars(rows) == [b for b in BARS if b[0] == "AAPL"]


def test_a_zip_of_kaggle_files_reads_like_the_folder(tmp_path: Path) -> None:
    archive = tmp_path / "price-volume-data.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted((LAYOUTS / "kaggle" / "Stocks").iterdir()):
            z.write(f, f"Stocks/{f.name}")
        z.writestr("readme.md", "not prices")
    rows, report = read(archive)
    assert report.errors == []
    assert bars(rows) == BARS
    assert sorted({r["source_file"] for r in rows["daily_bars"]}) == [
        f"{archive}!Stocks/aapl.us.txt",
        f"{archive}!Stocks/msft.us.txt",
    ]


def test_sidecar_options_apply_to_their_folder_and_the_command_line_wins(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    # A broker export whose labels no synonym covers, in a folder that says how to read it.
    (drop / "export.csv").write_text(
        "Tag|Erster Kurs|Max|Min|Letzter Kurs|Stück\n01.06.2022|149,90|151,74|147,68|148,71|74.286.600\n"
    )
    (drop / "tickerlake.toml").write_text(
        'ticker = "AAPL"\ndelimiter = "|"\ncolumns = { date = "Tag", open = "Erster Kurs", close = "Letzter Kurs" }\n'
    )
    rows, report = read(drop)
    assert report.errors == []
    assert bars(rows) == [("AAPL", "2022-06-01", 149.9, 151.74, 147.68, 148.71, 74286600)]
    rows, report = read(drop, ticker="MSFT")
    assert {r["ticker"] for r in rows["daily_bars"]} == {"MSFT"}


def test_columns_option_names_missing_labels_with_the_line(tmp_path: Path) -> None:
    path = tmp_path / "AAPL.csv"
    path.write_text("Tag;Kurs\n01.06.2022;148,71\n")
    _, report = read(path, columns="date=Tag,close=Schluss")
    assert [str(e) for e in report.errors] == [
        f"{path}:1: --columns close=Schluss: no column 'Schluss' in the header 'Tag,Kurs'"
    ]
    rows, report = read(path, columns="date=Tag,close=Kurs")
    assert [(r["date"], r["close"]) for r in rows["daily_bars"]] == [("2022-06-01", "148.71")]


def test_a_value_that_misfits_the_files_convention_is_noted_for_quarantine(tmp_path: Path) -> None:
    path = tmp_path / "AAPL.csv"
    path.write_text('Date,Close\n06/30/2022,$136.72\n06/29/2022,"139,2"\n13/06/2022,$1.5\n')
    _, report = read(path)
    assert [str(e) for e in report.errors] == [
        f"{path}:3: numbers use both a decimal point ('$136.72', line 2) and a decimal comma "
        "('139,2', line 3) (pass --decimal . or --decimal ,)"
    ]
    rows, report = read(path, decimal=".")
    assert [(r["date"], r["close"]) for r in rows["daily_bars"]] == [
        ("2022-06-30", "136.72"),
        ("2022-06-29", "139,2 (not a number with decimal mark .)"),
        ("13/06/2022 (not MM/DD/YYYY)", "1.5"),
    ]


def test_parquet_input_reads_like_csv(tmp_path: Path) -> None:
    table = pa.table(
        {
            "Ticker": [b[0] for b in BARS],
            "Date": pa.array([b[1] for b in BARS]).cast(pa.date32()),
            "Open": [b[2] for b in BARS],
            "High": [b[3] for b in BARS],
            "Low": [b[4] for b in BARS],
            "Close": [b[5] for b in BARS],
            "Volume": pa.array([b[6] for b in BARS], pa.int64()),
        }
    )
    pq.write_table(table, tmp_path / "bars.parquet")
    rows, report = read(tmp_path / "bars.parquet")
    assert report.errors == []
    assert bars(rows) == BARS
    assert [r["source_row"] for r in rows["daily_bars"]] == [str(i) for i in range(1, 9)]


def test_folder_pattern_and_bad_option_values(tmp_path: Path) -> None:
    shutil.copytree(LAYOUTS / "kaggle", tmp_path / "k")
    (tmp_path / "k" / "Stocks" / "extra.csv").write_text("x\n")
    rows, report = read(tmp_path / "k", pattern="*.us.txt")
    assert report.errors == [] and bars(rows) == BARS
    assert report.warnings == [
        f"{tmp_path / 'k' / 'Stocks' / 'extra.csv'}: does not match --pattern *.us.txt (skipped)"
    ]
    for bad, message in [
        ({"decimal": ";"}, "test: decimal: ';' must be . or ,"),
        ({"columns": "price=Kurs"}, "test: columns: 'price' is not a field"),
        ({"date_format": "DD.MM"}, "test: date_format: 'DD.MM' is not a date format"),
        ({"encoding": "klingon"}, "test: encoding: 'klingon' is not a known text encoding"),
        ({"symbol_map": "FB"}, "test: --symbol-map: 'FB' is neither a file nor FROM=TO pairs"),
    ]:
        with pytest.raises(UserError) as e:
            ReadOptions.parse(bad, "test")
        assert str(e.value).startswith(message)


def test_symbol_map_file_renames_vendor_spellings(tmp_path: Path) -> None:
    (tmp_path / "map.csv").write_text("from,to\nBRK-B,BRK.B\nFB,META\n")
    path = tmp_path / "prices.csv"
    path.write_text(
        "Symbol,Date,Close\nBRK-B,2022-06-01,314.16\nfb.us,2022-06-01,188.64\nAAPL,2022-06-01,148.71\n"
    )
    rows, report = read(path, symbol_map=str(tmp_path / "map.csv"))
    assert [r["ticker"] for r in rows["daily_bars"]] == ["BRK.B", "META", "AAPL"]
    assert report.files[0].renamed == {"BRK-B": "BRK.B", "FB.US": "META"}


def test_json_lines_with_pandas_epoch_dates(tmp_path: Path) -> None:
    # DataFrame.to_json(orient="records", lines=True) writes dates as epoch milliseconds.
    path = tmp_path / "bars.jsonl"
    path.write_text(
        '{"Ticker":"AAPL","Date":1654041600000,"Close":148.71}\n{"Ticker":"AAPL","Date":1654128000000,"Close":151.21}\n'
    )
    rows, report = read(path)
    assert report.errors == []
    assert [(r["date"], r["close"]) for r in rows["daily_bars"]] == [
        ("2022-06-01", "148.71"),
        ("2022-06-02", "151.21"),
    ]
