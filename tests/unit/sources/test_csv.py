"""CSV source: every input shape and every kind of unusable file, on small hand-written fixtures."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pytest

from tickerlake.errors import InputFileError
from tickerlake.lake.contract import RAW_ACTION_COLUMNS, RAW_BAR_COLUMNS
from tickerlake.sources.csv import (
    CsvFileResult,
    CsvReport,
    detect_layout,
    normalise_label,
    read_csv_file,
    read_csv_sources,
    split_ratio_text,
    ticker_from_file_name,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "csv"


def read(
    path: Path | str, **kwargs: object
) -> tuple[dict[str, list[dict[str, str | None]]], CsvFileResult, list[str]]:
    """All rows of one file by dataset, plus the file result and warnings."""
    result = CsvFileResult(path=str(path), layout="")
    warnings: list[str] = []
    out: dict[str, list[dict[str, str | None]]] = {}
    for dataset, table in read_csv_file(path, result=result, warnings=warnings, **kwargs):  # type: ignore[arg-type]
        expected = RAW_BAR_COLUMNS if dataset == "daily_bars" else RAW_ACTION_COLUMNS
        assert tuple(table.column_names) == expected
        assert all(t == pa.string() for t in table.schema.types)
        out.setdefault(dataset, []).extend(table.to_pylist())
    return out, result, warnings


def prices(row: dict[str, str | None]) -> tuple[str | None, ...]:
    return tuple(row[c] for c in ("ticker", "date", "open", "high", "low", "close", "adj_close", "volume"))


# --------------------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("stock symbol", "stocksymbol"),
        ("Adj. Close", "adjclose"),
        ("adj_close", "adjclose"),
        ("Close*", "close"),
    ],
)
def test_normalise_label(label: str, expected: str) -> None:
    assert normalise_label(label) == expected


@pytest.mark.parametrize(
    ("name", "strict", "expected"),
    [
        ("AAPL.csv", True, "AAPL"),
        ("data/BRK-B.csv", True, "BRK-B"),
        ("AAPL (1).csv", True, "AAPL"),
        ("^GSPC.csv", True, "^GSPC"),
        ("MSFT.csv.gz", True, "MSFT"),
        ("aapl.csv", False, "AAPL"),
        ("aapl.csv", True, None),
        ("prices.csv", True, None),
        ("daily_prices.csv", False, None),
        ("my prices.csv", False, None),
        ("2020.csv", False, None),
    ],
)
def test_ticker_from_file_name(name: str, strict: bool, expected: str | None) -> None:
    assert ticker_from_file_name(name, strict_case=strict) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4:1", "4.0"),
        ("4.0", "4.0"),
        ("3:2", "1.5"),
        ("1:10", "0.1"),
        ("2-for-1", "2.0"),
        ("1/20", "0.05"),
        ("x", "x"),
    ],
)
def test_split_ratio_text(text: str, expected: str) -> None:
    assert split_ratio_text(text) == expected


def test_detect_layout_maps_wide_columns_by_label_in_both_level_orders() -> None:
    by_field = [
        ["Price", "Close", "Close", "Volume", "Volume"],
        ["Ticker", "MSFT", "AAPL", "AAPL", "MSFT"],
        ["Date", "", "", "", ""],
    ]
    layout = detect_layout(by_field, [1, 2, 3], "x.csv")
    assert layout.kind == "wide" and layout.header_lines == 3
    assert {s.ticker: s.columns for s in layout.series} == {
        "MSFT": {"date": 0, "close": 1, "volume": 4},
        "AAPL": {"date": 0, "close": 2, "volume": 3},
    }
    by_ticker = [["Ticker", "AAPL", "MSFT", "AAPL"], ["Price", "Volume", "Close", "Close"]]
    layout = detect_layout(by_ticker, [1, 2], "x.csv")
    assert layout.header_lines == 2
    assert {s.ticker: s.columns for s in layout.series} == {
        "AAPL": {"date": 0, "volume": 1, "close": 3},
        "MSFT": {"date": 0, "close": 2},
    }


def test_detect_layout_long_and_per_ticker() -> None:
    long = detect_layout([["Volume", "stock symbol", "Date", "Close"]], [1], "prices.csv")
    assert long.kind == "long" and long.expect_ticker is None
    assert long.series[0].columns == {"volume": 0, "ticker": 1, "date": 2, "close": 3}
    per = detect_layout([["Date", "Close", "Adj Close"]], [2], "NVDA.csv")
    assert per.kind == "per_ticker" and per.header_lines == 2
    assert per.series[0].ticker == "NVDA"
    assert per.series[0].columns == {"date": 0, "close": 1, "adj_close": 2}
    # A ticker-named file with a ticker column is checked row by row against its name.
    assert detect_layout([["Ticker", "Date", "Close"]], [1], "AAPL.csv").expect_ticker == "AAPL"


def test_detect_layout_prefers_the_better_spelling() -> None:
    layout = detect_layout([["Date", "Time", "Close", "Last"]], [1], "SPY.csv")
    assert layout.series[0].columns == {"date": 0, "close": 2}
    assert layout.ignored == ("Time", "Last")


# --------------------------------------------------------------------------- good shapes


def test_long_file_with_space_in_ticker_header() -> None:
    rows, result, _ = read(FIXTURES / "long_stock_symbol.csv")
    assert result.layout == "long"
    bars = rows["daily_bars"]
    assert [prices(r) for r in bars] == [
        (
            "AMZN",
            "2022-06-29",
            "107.379997",
            "110.989998",
            "106.910004",
            "108.919998",
            "108.919998",
            "66375300",
        ),
        ("AMZN", "2022-06-30", "108.110001", "108.18", "102.519997", "106.209999", "106.209999", "97679400"),
    ]
    assert [r["source_row"] for r in bars] == ["2", "3"]
    assert {r["source"] for r in bars} == {"csv"}
    assert {r["source_file"] for r in bars} == {str(FIXTURES / "long_stock_symbol.csv")}


def test_long_file_in_another_column_order_with_lower_case_tickers() -> None:
    rows, _, _ = read(FIXTURES / "long_snake_case.csv")
    assert [prices(r) for r in rows["daily_bars"]] == [
        (
            "AAPL",
            "2020-09-01",
            "132.759995",
            "134.800003",
            "130.529999",
            "134.179993",
            "132.360001",
            "151948100",
        ),
        (
            "MSFT",
            "2020-09-01",
            "225.509995",
            "227.449997",
            "224.429993",
            "227.270004",
            "222.70549",
            "25725500",
        ),
    ]


def test_semicolon_delimited_file() -> None:
    rows, _, _ = read(FIXTURES / "long_semicolon.csv")
    assert [prices(r) for r in rows["daily_bars"]] == [
        ("GOOGL", "2020-09-02", "83.400497", "86.305", "83.009499", "85.869499", "85.869499", "49522000")
    ]


def test_index_column_and_unknown_columns_are_ignored() -> None:
    rows, result, _ = read(FIXTURES / "long_index_col.csv")
    assert [prices(r) for r in rows["daily_bars"]] == [
        ("AAPL", "2020-09-03", None, None, None, "120.879997", None, None),
        ("MSFT", "2020-09-03", None, None, None, "217.300003", None, None),
    ]
    assert result.ignored_columns == ["Comment"]


def test_folder_of_per_ticker_yahoo_downloads() -> None:
    report = CsvReport()
    tables = list(read_csv_sources([FIXTURES / "per_ticker"], report))
    assert report.errors == []
    bars = [r for d, t in tables if d == "daily_bars" for r in t.to_pylist()]
    assert [prices(r) for r in bars] == [
        (
            "AAPL",
            "2020-08-28",
            "126.012497",
            "126.442497",
            "124.577499",
            "124.807503",
            "123.114647",
            "187630000",
        ),
        ("AAPL", "2020-08-31", "127.580002", "131.0", "126.0", "129.039993", "127.289711", "225702700"),
        (
            "MSFT",
            "2020-08-28",
            "228.179993",
            "230.639999",
            "226.580002",
            "228.910004",
            "224.312546",
            "26292900",
        ),
    ]
    assert [(f.layout, f.tickers, f.rows) for f in report.files] == [
        ("per_ticker", ["AAPL"], {"daily_bars": 2}),
        ("per_ticker", ["MSFT"], {"daily_bars": 1}),
    ]
    assert report.rows == {"daily_bars": 3}


def test_wide_yfinance_file_maps_each_value_to_its_labelled_ticker() -> None:
    # Tickers are in a different order under each field (Close: MSFT, AAPL; High: AAPL, MSFT...).
    rows, result, _ = read(FIXTURES / "wide_column_3rows.csv")
    assert result.layout == "wide" and result.tickers == ["AAPL", "MSFT"]
    got = sorted((*prices(r), r["source_row"]) for r in rows["daily_bars"])
    assert got == [
        (
            "AAPL",
            "2020-08-28",
            "126.012497",
            "126.442497",
            "124.577499",
            "124.807503",
            "123.114647",
            "187630000",
            "4",
        ),
        ("AAPL", "2020-08-31", "127.580002", "131.0", "126.0", "129.039993", "127.289711", "225702700", "5"),
        (
            "MSFT",
            "2020-08-28",
            "228.179993",
            "230.639999",
            "226.580002",
            "228.910004",
            "224.312546",
            "26292900",
            "4",
        ),
        (
            "MSFT",
            "2020-08-31",
            "227.0",
            "228.699997",
            "224.309998",
            "225.529999",
            "221.000443",
            "28774200",
            "5",
        ),
    ]


def test_wide_file_grouped_by_ticker_with_padding_and_actions() -> None:
    rows, result, _ = read(FIXTURES / "wide_ticker_3rows.csv")
    assert result.tickers == ["GOOGL", "MSFT"]
    got = sorted((*prices(r), r["source_row"]) for r in rows["daily_bars"])
    # GOOGL has no prices on 2020-08-18 (yfinance padding): no row for it.
    assert got == [
        ("GOOGL", "2020-08-19", "77.624496", "78.443001", "77.0", "77.230499", "77.230499", "30472000", "5"),
        (
            "MSFT",
            "2020-08-18",
            "210.529999",
            "212.360001",
            "209.210007",
            "211.490005",
            "206.742645",
            "21336200",
            "4",
        ),
        (
            "MSFT",
            "2020-08-19",
            "211.490005",
            "212.100006",
            "209.25",
            "209.699997",
            "205.488373",
            "27627600",
            "5",
        ),
    ]
    assert rows["corporate_actions"] == [
        {
            "ticker": "MSFT",
            "date": "2020-08-19",
            "action": "dividend",
            "ratio": None,
            "amount": "0.51",
            "source": "csv",
            "source_file": str(FIXTURES / "wide_ticker_3rows.csv"),
            "source_row": "5",
        }
    ]


def test_wide_file_with_two_unnamed_header_rows() -> None:
    rows, _, _ = read(FIXTURES / "wide_2rows_unnamed.csv")
    got = sorted((r["ticker"], r["close"], r["volume"], r["source_row"]) for r in rows["daily_bars"])
    assert got == [("AAPL", "134.179993", "151948100", "3"), ("MSFT", "227.270004", "25725500", "3")]


def test_yahoo_history_file_with_split_column() -> None:
    rows, _, _ = read(FIXTURES / "history" / "AAPL.csv")
    assert [(r["date"], r["close"]) for r in rows["daily_bars"]] == [
        ("2020-08-28 00:00:00-04:00", "124.807503"),
        ("2020-08-31 00:00:00-04:00", "129.039993"),
    ]
    assert [
        (r["ticker"], r["date"], r["action"], r["ratio"], r["source_row"]) for r in rows["corporate_actions"]
    ] == [("AAPL", "2020-08-31 00:00:00-04:00", "split", "4.0", "3")]


def test_split_history_file_only_yields_actions() -> None:
    rows, _, _ = read(FIXTURES / "splits" / "TSLA.csv")
    assert "daily_bars" not in rows
    assert [(r["ticker"], r["date"], r["ratio"], r["amount"]) for r in rows["corporate_actions"]] == [
        ("TSLA", "2020-08-31", "5.0", None),
        ("TSLA", "2022-08-25", "3.0", None),
    ]


def test_blank_lines_keep_line_numbers_exact() -> None:
    rows, result, _ = read(FIXTURES / "blank_lines" / "NVDA.csv")
    assert [(r["date"], r["close"], r["source_row"]) for r in rows["daily_bars"]] == [
        ("2020-09-01", "134.179993", "3"),
        ("2020-09-02", "131.399994", "5"),
    ]
    assert result.empty_rows == 1


def test_row_level_problems_are_kept_verbatim_for_the_etl() -> None:
    rows, result, warnings = read(FIXTURES / "rowlevel.csv")
    got = [
        (r["source_row"], r["ticker"], r["date"], r["open"], r["high"], r["low"], r["close"], r["volume"])
        for r in rows["daily_bars"]
    ]
    assert got == [
        ("2", "AAPL", "2020-09-01", "132.759995", "134.800003", "130.529999", "134.179993", "151948100"),
        ("3", "AAPL", "not-a-date", "1", "2", "1", "1.5", "100"),
        ("5", "AAPL", "2020-09-02", "abc", "137.979996", "127.0", "131.399994", "200119000"),
        ("6", "AAPL", "2020-09-03", "-126.910004", "128.839996", "120.5", "120.879997", "257599600"),
        ("7", "AAPL", "2020-09-04", "120.07", "110.0", "123.7", "120.959999", "332607200"),
        ("8", "AAPL", "2020-09-04", "120.07", "110.0", "123.7", "120.959999", "332607200"),
        # Four fields instead of eight: kept (trailing fields empty) so the ETL quarantines it.
        ("9", "MSFT", "2020-09-01", "225.509995", "227.449997", None, None, None),
        # Thousands separators are removed (the file's decimal mark is '.').
        ("10", "MSFT", "2020-09-02", "227.97", "232.860001", "227.350006", "231.649994", "34080800"),
    ]
    assert (result.empty_rows, result.malformed_rows) == (1, 1)
    assert warnings == [f"{FIXTURES / 'rowlevel.csv'}:9: expected 8 fields, got 4"]


def test_streaming_in_small_blocks_keeps_line_numbers(tmp_path: Path) -> None:
    lines = ["Ticker,Date,Close"]
    for i in range(300):
        lines.append(f"T{i % 3},2020-01-{1 + i % 28:02d},{i}.5")
        if i == 150:
            lines.append("")
    path = tmp_path / "many.csv"
    path.write_text("\n".join(lines) + "\n")
    rows, result, _ = read(path, block_size=512)
    bars = rows["daily_bars"]
    assert len(bars) == 300 and result.empty_rows == 1
    assert (bars[0]["close"], bars[0]["source_row"]) == ("0.5", "2")
    assert (bars[150]["close"], bars[150]["source_row"]) == ("150.5", "152")
    assert (bars[151]["close"], bars[151]["source_row"]) == ("151.5", "154")
    assert (bars[299]["close"], bars[299]["source_row"]) == ("299.5", "302")


def test_quoted_line_break_switches_to_exact_line_counting(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    path.write_text('Ticker,Date,Close,Note\nAAPL,2020-09-01,1.5,"two\nlines"\nAAPL,2020-09-02,2.5,x\n')
    rows, _, _ = read(path)
    assert [(r["date"], r["source_row"]) for r in rows["daily_bars"]] == [
        ("2020-09-01", "2"),
        ("2020-09-02", "4"),
    ]


def test_gzip_compressed_file(tmp_path: Path) -> None:
    path = tmp_path / "AAPL.csv.gz"
    path.write_bytes(gzip.compress((FIXTURES / "per_ticker" / "AAPL.csv").read_bytes()))
    rows, _, _ = read(path)
    assert [(r["ticker"], r["close"], r["source_row"]) for r in rows["daily_bars"]] == [
        ("AAPL", "124.807503", "2"),
        ("AAPL", "129.039993", "3"),
    ]


@pytest.mark.parametrize("where", [0.05, 0.5, 0.9])
def test_corrupt_gzip_data_is_a_file_error_not_a_crash(tmp_path: Path, where: float) -> None:
    # Found by the fuzz run: corrupt deflate data raises zlib.error, which is not an OSError.
    body = (
        b"Date,Open,High,Low,Close,Volume\n"
        + b"".join(f"2020-01-{d:02d},1,2,0.5,{d},{d * 10}\n".encode() for d in range(1, 29)) * 40
    )
    data = bytearray(gzip.compress(body))
    data[max(10, int(len(data) * where))] ^= 0xFF
    path = tmp_path / "AAPL.csv.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(InputFileError, match=r"AAPL\.csv\.gz") as info:
        read(path)
    assert "\n" not in str(info.value)


def test_latin1_file(tmp_path: Path) -> None:
    path = tmp_path / "SAP.csv"
    path.write_bytes("Date,Close,Commentaire\n2020-09-01,134.5,hausse élevée\n".encode("latin-1"))
    rows, _, _ = read(path)
    assert [(r["ticker"], r["close"]) for r in rows["daily_bars"]] == [("SAP", "134.5")]


def test_utf8_bom_header(tmp_path: Path) -> None:
    path = tmp_path / "AMD.csv"
    path.write_bytes("\ufeffDate,Close\n2020-09-01,90.1\n".encode())
    rows, _, _ = read(path)
    assert [(r["ticker"], r["date"], r["close"]) for r in rows["daily_bars"]] == [
        ("AMD", "2020-09-01", "90.1")
    ]


# --------------------------------------------------------------------------- unusable files


@pytest.mark.parametrize(
    ("name", "row", "problem"),
    [
        ("empty.csv", None, "empty file"),
        ("header_only.csv", None, "no data rows"),
        ("no_header.csv", 1, "no header row: the first line is data"),
        (
            "missing_close.csv",
            1,
            "missing required columns: close (header: 'Ticker,Date,Open,Volume'; "
            "map them with --columns close=LABEL)",
        ),
        ("missing_date_close.csv", 1, "missing required columns: date, close"),
        (
            "unknown_layout.csv",
            1,
            "unrecognised layout: no date or price columns in header 'alpha,beta,gamma'",
        ),
        ("ambiguous.csv", 1, "ambiguous header: columns 'Close' and 'close' both mean close"),
        ("daily_prices.csv", None, "cannot determine the ticker"),
        ("mismatch/AAPL.csv", 4, "ticker 'MSFT' in the data differs from the file name ticker 'AAPL'"),
        (
            "wide_mismatch/AAPL.csv",
            2,
            "ticker 'GOOGL' in the header differs from the file name ticker 'AAPL'",
        ),
        ("wide_empty_ticker.csv", 2, "cannot determine the ticker of column 3"),
    ],
)
def test_unusable_files_raise_one_line_errors(name: str, row: int | None, problem: str) -> None:
    path = FIXTURES / name
    with pytest.raises(InputFileError) as info:
        read(path)
    err = info.value
    assert err.path == str(path)
    assert err.row == row
    assert err.problem.startswith(problem)
    assert "\n" not in str(err)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\x00\x01\x02binary\x00data" * 10, "not a text CSV file (binary content)"),
        (b"PK\x03\x04" + b"\x00" * 40, "not a text CSV file (a zip archive, e.g. an Excel workbook)"),
        (b"   \n\n  \n", "empty file"),
    ],
)
def test_binary_and_blank_files(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "AAPL.csv"
    path.write_bytes(content)
    with pytest.raises(InputFileError) as info:
        read(path)
    assert info.value.problem == problem


def test_bad_files_are_skipped_and_the_rest_is_read() -> None:
    report = CsvReport()
    seen: list[str] = []
    tables = list(
        read_csv_sources(
            [FIXTURES / "long_semicolon.csv", FIXTURES / "missing_close.csv", FIXTURES / "mixed_folder"],
            report,
            on_file=lambda path, _: seen.append(Path(path).name),
        )
    )
    tickers = [r["ticker"] for d, t in tables for r in t.to_pylist()]
    assert tickers == ["GOOGL", "GOOGL"]
    assert [str(e) for e in report.errors] == [
        f"{FIXTURES / 'missing_close.csv'}:1: missing required columns: close "
        "(header: 'Ticker,Date,Open,Volume'; map them with --columns close=LABEL)",
    ]
    # A stray text file in a folder is tried, then skipped with a warning, not counted as unusable input.
    assert report.warnings == [
        f"{FIXTURES / 'mixed_folder' / 'readme.txt'}: not a price file (skipped: unrecognised layout: "
        "no date or price columns in header 'Downloaded from Yahoo Finance.')"
    ]
    assert seen == ["long_semicolon.csv", "missing_close.csv", "GOOGL.csv", "readme.txt"]


def test_missing_path_is_an_error_not_a_crash(tmp_path: Path) -> None:
    report = CsvReport()
    assert list(read_csv_sources([tmp_path / "nope.csv", tmp_path], report)) == []
    assert [e.problem.split(" (")[0] for e in report.errors] == [
        "no such file or folder",
        "no price files in this folder",
    ]
