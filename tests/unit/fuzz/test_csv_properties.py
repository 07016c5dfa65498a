"""Property tests of the CSV source on hostile input: every file is read or refused with a reason.

The contract checked here (see :mod:`tickerlake.sources.csv`):

* a file that cannot be used at all raises :class:`~tickerlake.errors.InputFileError`
  with a one-line message, and nothing else ever escapes;
* a usable file accounts for every record: each non-blank record becomes exactly one raw
  row carrying its 1-based starting line, blank records are counted in ``empty_rows``
  (records in = rows + empty rows);
* the values of a well-formed record come back verbatim, whatever the line endings, BOM,
  encoding or quoting, or read the one way the file's values say (its date format and
  decimal mark); a file whose values read two ways is refused naming a line.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickerlake.errors import InputFileError
from tickerlake.sources.csv import CsvFileResult, CsvReport, read_csv_file, read_csv_sources
from tickerlake.sources.values import _TIME_PART, date_format_named, number_from_text

HEADER = ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]
VALUE_KEYS = ["date", "open", "high", "low", "close", "adj_close", "volume"]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass
class Read:
    """What reading one file gave: rows of every dataset, the file result, or the refusal."""

    rows: list[dict[str, str | None]]
    result: CsvFileResult
    error: InputFileError | None


def read_bytes(data: bytes, name: str = "AAPL.csv", block_size: int = 1 << 20) -> Read:
    """Write ``data`` to a fresh file called ``name`` and read it to the end.

    Any exception other than InputFileError propagates and fails the test.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        result = CsvFileResult(path=str(path), layout="")
        rows: list[dict[str, str | None]] = []
        try:
            for _, table in read_csv_file(path, block_size=block_size, result=result, warnings=[]):
                rows.extend(table.to_pylist())
        except InputFileError as e:
            return Read(rows, result, e)
        return Read(rows, result, None)


def assert_one_line_refusal(err: InputFileError) -> None:
    """A refusal names the file and says what is wrong, on one line."""
    text = str(err)
    assert err.problem.strip(), "a refusal must say why"
    assert "\n" not in text and "\r" not in text, f"multi-line error: {text!r}"
    assert text.startswith(err.path)


def check_read_or_refused(data: bytes, got: Read) -> None:
    """Refused with one line, or every row points at a line that exists in the file."""
    if got.error is not None:
        assert_one_line_refusal(got.error)
        return
    # Each \r or \n byte ends at most one line, whatever the encoding.
    last_line = data.count(b"\r") + data.count(b"\n") + 1
    for r in got.rows:
        assert 1 <= int(r["source_row"]) <= last_line
        assert r["source_file"] == got.result.path
    assert got.rows or got.result.malformed_rows, "accepted a file without a single row"


# --------------------------------------------------------------------------- strategies

_CELL_ALPHABET = st.sampled_from([*list('0123456789.-+eE ,;"\r\naAzZ\té€\u2028'), "nan", "inf", "-0"])
cells = st.lists(_CELL_ALPHABET, max_size=8).map("".join)
line_endings = st.sampled_from(["\n", "\r\n", "\r"])


def quote(cell: str) -> str:
    """A cell as a CSV writer writes it: quoted when it holds a delimiter, quote or line break."""
    if any(ch in cell for ch in ',"\r\n') or cell != cell.strip():
        return '"' + cell.replace('"', '""') + '"'
    return cell


@dataclass
class Doc:
    """A generated file: its text, its records and the line each record starts on."""

    text: str
    records: list[list[str]]
    lines: list[int]


@st.composite
def documents(draw: st.DrawFn, header: list[str] = HEADER) -> Doc:
    """A header plus records of random cells (some the wrong width, some blank), random line endings."""
    width = len(header)
    record = st.one_of(
        st.lists(cells, min_size=width, max_size=width),
        st.lists(cells, min_size=0, max_size=width + 2),
        st.just([""] * width),
    )
    records = draw(st.lists(record, min_size=1, max_size=12))
    parts = [",".join(quote(c) for c in header)]
    ends = [draw(line_endings)]
    for rec in records:
        parts.append(",".join(quote(c) for c in rec))
        end = draw(line_endings)
        if ends[-1] == "\r" and not parts[-1] and end.startswith("\n"):
            end = "\r"  # a lone \r then \n would be one line break, merging a blank record away
        ends.append(end)
    if parts[-1] and not draw(st.booleans()):
        ends[-1] = ""  # no line break at the end (only meaningful after a non-empty record)
    text = ""
    starts: list[int] = []
    for k, (part, end) in enumerate(zip(parts, ends, strict=True)):
        if k:
            starts.append(len(text))
        text += part + end
    breaks = [m.end() for m in _BREAK.finditer(text)]
    lines = [1 + sum(1 for b in breaks if b <= s) for s in starts]
    return Doc(text, records, lines)


def is_blank(record: list[str], width: int = len(HEADER)) -> bool:
    """A record with nothing in it: all fields empty (or, at the wrong width, whitespace)."""
    if len(record) == width:
        return all(c == "" for c in record)
    return not any(c.strip() for c in record)


def check_reconciles(doc: Doc, got: Read, width: int = len(HEADER)) -> None:
    """Records in = rows + empty rows; every non-blank record is one row on its own line.

    ``width`` above the bar header's means a leading ticker column (a long file).
    """
    if all(is_blank(rec, width) for rec in doc.records):
        assert got.error is not None and got.error.problem == "no data rows"
        return
    if got.error is not None and got.error.problem.startswith(VALUE_REFUSALS):
        assert got.error.row is not None, "a refusal for values names the line"
        return
    assert got.error is None, f"refused a usable file: {got.error}"
    rows_by_line = {int(r["source_row"]): r for r in got.rows}
    assert len(rows_by_line) == len(got.rows), "two rows claim the same line"
    assert len(got.rows) + got.result.empty_rows == len(doc.records)
    for rec, line in zip(doc.records, doc.lines, strict=True):
        if line not in rows_by_line:
            assert is_blank(rec, width), f"record on line {line} ({rec!r}) vanished"
            continue
        row = rows_by_line[line]
        if len(rec) != width:
            continue  # malformed: kept for the ETL to quarantine, values not trusted
        values = rec
        if width > len(HEADER):
            ticker, values = rec[0], rec[1:]
            assert row["ticker"] == (ticker.strip().upper() if ticker else None)
        else:
            assert row["ticker"] == "AAPL"
        # Well-formed: every value verbatim (an empty cell is read as null), or read the one
        # way the file's values say (its date format, its decimal mark).
        for key, cell in zip(VALUE_KEYS, values, strict=True):
            check_value(key, cell, row[key], got.result)


def check_value(key: str, cell: str, value: str | None, result: CsvFileResult) -> None:
    """A raw value is its cell verbatim or the file-wide reading of it, never another guess."""
    if value == (cell if cell != "" else None):
        return
    if key == "date":
        assert result.date_format is not None, f"date {cell!r} rewritten to {value!r} without a format"
        fmt = date_format_named(result.date_format)
        if value is not None and value.endswith(f" (not {fmt.name})"):
            return  # kept, noted, for the ETL to quarantine
        parsed = dt.datetime.strptime(re.sub(_TIME_PART, "", cell.strip()), fmt.strptime).date()
        assert value == parsed.isoformat()
    else:
        assert result.decimal is not None, f"{key} {cell!r} rewritten to {value!r} without a decimal mark"
        expected = number_from_text(cell, result.decimal)
        if value == f"{cell} (not a number with decimal mark {result.decimal})":
            assert expected is None  # kept, noted, for the ETL to quarantine
            return
        assert expected is not None and value is not None and float(value) == expected


#: What a file of usable records may still be refused for: values that read two ways.
VALUE_REFUSALS = ("numbers use both a decimal point", "dates such as")


# --------------------------------------------------------------------------- properties


@SETTINGS
@given(data=st.binary(max_size=2048), name=st.sampled_from(["AAPL.csv", "prices.csv", "x.csv.gz"]))
def test_arbitrary_bytes_are_read_or_refused_with_one_line(data: bytes, name: str) -> None:
    check_read_or_refused(data, read_bytes(data, name))


_TOKENS = st.sampled_from(
    [
        "Date",
        "Close",
        "close",
        "Ticker",
        "Price",
        "AAPL",
        "Volume",
        "Dividends",
        "Stock Splits",
        ",",
        ";",
        '"',
        '""',
        "\n",
        "\r",
        "\r\n",
        "2020-01-02",
        "99999-01-01",
        "0001-01-01",
        "1.5",
        "NaN",
        "-inf",
        "-0",
        "4:1",
        " ",
        "\ufeff",
        "\x00",
        "é",
    ]
)


@SETTINGS
@given(
    tokens=st.lists(_TOKENS, max_size=60),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "latin-1"]),
    name=st.sampled_from(["AAPL.csv", "prices.csv"]),
)
def test_csv_like_token_soup_is_read_or_refused(tokens: list[str], encoding: str, name: str) -> None:
    data = "".join(tokens).encode(encoding, errors="replace")
    check_read_or_refused(data, read_bytes(data, name))


@SETTINGS
@given(doc=documents(), encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]))
def test_generated_files_reconcile_and_round_trip(doc: Doc, encoding: str) -> None:
    check_reconciles(doc, read_bytes(doc.text.encode(encoding)))


@SETTINGS
@given(doc=documents())
def test_generated_files_reconcile_in_tiny_blocks(doc: Doc) -> None:
    # Tiny blocks make the fast reader hand over to the exact one at every kind of boundary.
    check_reconciles(doc, read_bytes(doc.text.encode(), block_size=64))


@st.composite
def valid_bars(draw: st.DrawFn) -> list[list[str]]:
    """Rows of well-formed daily bars, dates from year 1 to 9999, any finite or special value."""
    number = st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.integers(min_value=-(2**70), max_value=2**70).map(str),
        st.sampled_from(["-0", "-0.0", "1e400", "NaN", "inf", "-inf", ""]),
    )
    dates = st.dates().map(lambda d: f"{d.year:04d}-{d.month:02d}-{d.day:02d}")
    return draw(st.lists(st.tuples(dates, *[number] * 6).map(list), min_size=1, max_size=20))


@SETTINGS
@given(bars=valid_bars(), end=line_endings)
def test_valid_bars_round_trip(bars: list[list[str]], end: str) -> None:
    text = end.join(",".join(row) for row in [HEADER, *bars]) + end
    got = read_bytes(text.encode())
    assert got.error is None, str(got.error)
    assert [[r[k] for k in VALUE_KEYS] for r in got.rows] == [[c or None for c in row] for row in bars]
    assert [int(r["source_row"]) for r in got.rows] == list(range(2, len(bars) + 2))


@SETTINGS
@given(doc=documents(header=["Symbol", *HEADER]))
def test_long_files_keep_every_ticker_row(doc: Doc) -> None:
    check_reconciles(doc, read_bytes(doc.text.encode(), name="prices.csv"), width=len(HEADER) + 1)


@SETTINGS
@given(files=st.lists(st.binary(max_size=300), min_size=1, max_size=4))
def test_read_csv_sources_never_raises_and_accounts_for_every_file(files: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for k, data in enumerate(files):
            path = Path(tmp) / f"T{k}.csv"
            path.write_bytes(data)
            paths.append(path)
        report = CsvReport()
        list(read_csv_sources(paths, report))
    assert len(report.files) + len(report.errors) == len(files)
    for err in report.errors:
        assert_one_line_refusal(err)


# --------------------------------------------------------------------------- regressions


def _bars_text(end: str) -> str:
    rows = ["2020-01-02,1,2,0.5,1.5,1.5,100", "2020-01-03,1,2,0.5,1.6,1.6,200"]
    return end.join([",".join(HEADER), *rows]) + end


@pytest.mark.parametrize("end", ["\r", "mixed"])
def test_regression_old_mac_and_mixed_line_endings_are_read(end: str) -> None:
    # Was refused: "new-line character seen in unquoted field" while sniffing the header.
    text = _bars_text("\r") if end == "\r" else _bars_text("\n").replace("\n", "\r", 1)
    got = read_bytes(text.encode())
    assert got.error is None, str(got.error)
    assert [(r["date"], r["close"], r["source_row"]) for r in got.rows] == [
        ("2020-01-02", "1.5", "2"),
        ("2020-01-03", "1.6", "3"),
    ]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_regression_utf16_files_are_read(encoding: str) -> None:
    # Was refused as "binary content": Excel's "Unicode text" export is UTF-16.
    got = read_bytes(_bars_text("\r\n").encode(encoding))
    assert got.error is None, str(got.error)
    assert [(r["date"], r["volume"], r["source_row"]) for r in got.rows] == [
        ("2020-01-02", "100", "2"),
        ("2020-01-03", "200", "3"),
    ]


def test_regression_unterminated_quote_in_last_row_is_kept_not_dropped() -> None:
    # Was silently dropped: pyarrow skipped the bad row and produced no batch at all.
    got = read_bytes(b'Date,Open,High,Low,Close,Adj Close,Volume\n2020-01-02,"1,2,3\n')
    assert got.error is None, str(got.error)
    assert got.result.malformed_rows == 1
    assert [(r["date"], r["open"], r["source_row"]) for r in got.rows] == [("2020-01-02", "1,2,3\n", "2")]


def test_regression_ten_megabyte_field_after_a_quoted_line_break() -> None:
    # Was "unreadable CSV (field larger than field limit (131072))" once the exact reader took over,
    # after earlier batches had already been handed out.
    big = "9" * (10 << 20)
    text = ",".join(HEADER) + '\n2020-01-02,1,2,0.5,"1\n5",1.5,100\n' + f"2020-01-03,1,2,0.5,{big},1,1\n"
    got = read_bytes(text.encode())
    assert got.error is None, str(got.error)
    assert [r["source_row"] for r in got.rows] == ["2", "4"]
    assert got.rows[1]["close"] == big


def test_ten_megabyte_header_line_is_refused_with_a_reason() -> None:
    got = read_bytes(("Date,Close," + "x" * (10 << 20) + "\n2020-01-02,1,1\n").encode())
    assert got.error is not None
    assert_one_line_refusal(got.error)
    assert "no line break in the first megabyte" in got.error.problem


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xef\xbb\xbf",
        b"\xff\xfe",
        b"\r\n\r\n",
        ",".join(HEADER).encode(),
        (b"Date,Close,Close\n"),
    ],
)
def test_empty_header_only_and_duplicate_header_files_are_refused(data: bytes) -> None:
    got = read_bytes(data)
    assert got.error is not None and not got.rows
    assert_one_line_refusal(got.error)


def test_special_values_and_far_dates_are_kept_verbatim_for_the_etl() -> None:
    text = ",".join(HEADER) + "\n0001-01-01,NaN,inf,-0,-inf,nan,1e400\n99999-12-31,1,1,1,1,1,1\n"
    got = read_bytes(text.encode())
    assert [[r[k] for k in VALUE_KEYS] for r in got.rows] == [
        ["0001-01-01", "NaN", "inf", "-0", "-inf", "nan", "1e400"],
        ["99999-12-31", "1", "1", "1", "1", "1", "1"],
    ]


def test_generated_quoting_parses_back_with_the_csv_module() -> None:
    # The generator quotes as a CSV writer does: an independent parser reads the cells back.
    cellset = ["a,b", 'say "hi"', "line\nbreak", "cr\ronly", " pad ", ""]
    line = ",".join(quote(c) for c in cellset)
    assert next(csv.reader(io.StringIO(line, newline=""))) == cellset


def test_regression_per_ticker_file_whose_first_row_has_no_date_is_not_taken_for_wide() -> None:
    # Was refused: "cannot determine the ticker of column 2 ('Open'): its ticker header cell is
    # empty", the header and the first data row being read as the two header rows of a wide file.
    got = read_bytes(b"Date,Open,High,Low,Close,Adj Close,Volume\n,a,,,,,\n2020-01-02,1,1,1,1,1,1\n")
    assert got.error is None, str(got.error)
    assert got.result.layout == "per_ticker"
    assert [(r["date"], r["open"], r["source_row"]) for r in got.rows] == [
        (None, "a", "2"),
        ("2020-01-02", "1", "3"),
    ]


def test_regression_utf16_file_with_an_odd_trailing_byte_is_read() -> None:
    # Was UnicodeDecodeError ("truncated data") out of pyarrow's strict UTF-16 transcoder.
    got = read_bytes("Date,Close\n2020-01-02,7\n".encode("utf-16") + b"\x00")
    assert got.error is None, str(got.error)
    assert next((r["date"], r["close"], r["source_row"]) for r in got.rows) == ("2020-01-02", "7", "2")
