"""CSV source: price files of every common shape → raw-zone text tables in long format.

Shapes understood (detected from the header labels, never from column positions):

* **long** — one row per (ticker, date) with a ticker column under any common spelling
  (``Ticker``, ``symbol``, ``stock symbol``…), e.g. a Kaggle or Yahoo export;
* **per-ticker** — a Yahoo download such as ``AAPL.csv`` (``Date,Open,High,Low,Close,Adj
  Close,Volume``) or a Kaggle ``aapl.us.txt`` whose ticker comes from the file name (or
  ``--ticker``, for a Nasdaq.com ``HistoricalData_<digits>.csv``);
* **wide** — the two- or three-header-row file that ``yfinance.download(...).to_csv()``
  writes for several tickers, in either column order (``group_by='column'``: fields
  first, or ``group_by='ticker'``: tickers first); each value column is labelled by its
  (field, ticker) header cells;
* **actions** — ``Dividends`` / ``Stock Splits`` columns (Yahoo history files) or files
  holding only those, which become ``corporate_actions`` rows.

Labels are matched through :mod:`tickerlake.sources.labels` (six languages, ``--columns``
over them). Values are kept as text, verbatim unless the file needs reading: a file whose
dates are not ISO gets its date format decided from its values and its dates written ISO,
a file with currency signs, separators or decimal commas gets its decimal mark decided
and its numbers written plain (:mod:`tickerlake.sources.values`); symbols go through the
symbol map (:mod:`tickerlake.sources.symbols`). The ETL casts the text and quarantines what
does not parse, with the file and 1-based line number carried in ``source_file``/``source_row``.
A file that cannot be used at all raises :class:`~tickerlake.errors.InputFileError` with a
one-line problem; :func:`read_csv_sources` collects those per file and carries on.

Large files stream in bounded memory through pyarrow's CSV reader. pyarrow does not
report line numbers, so the fast path assumes one record per physical line and checks
that assumption on every batch; when a batch has malformed rows or values spanning
lines, reading continues from that batch with Python's ``csv`` module, which tracks
lines exactly.
"""

from __future__ import annotations

import csv as _pycsv
import gzip
import io
import os
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from tickerlake.errors import InputFileError
from tickerlake.lake.contract import RAW_ACTION_COLUMNS, RAW_BAR_COLUMNS
from tickerlake.sources.labels import FIELD_SYNONYMS, field_of, map_labels, normalise_label
from tickerlake.sources.options import ReadOptions
from tickerlake.sources.symbols import SymbolMap, ticker_from_file_name
from tickerlake.sources.values import (
    AmbiguousValues,
    DateFormat,
    DateVote,
    apply_date_format,
    apply_decimal,
    decide_decimal,
    is_iso_date_text,
    needs_number_cleaning,
)

__all__ = [
    "FIELD_SYNONYMS",
    "SOURCE_SYMBOL_COLUMNS",
    "Chunk",
    "Counters",
    "CsvFileResult",
    "CsvReport",
    "Layout",
    "Series",
    "decide_plan",
    "detect_layout",
    "expand_paths",
    "normalise_label",
    "read_chunks",
    "read_csv_file",
    "read_csv_sources",
    "split_ratio_text",
    "ticker_from_file_name",
]

SOURCE = "csv"

_VALUE_FIELDS = ("open", "high", "low", "close", "adj_close", "volume")
_ACTION_FIELDS = ("dividends", "splits")
#: Per-ticker columns yfinance may write that carry nothing for the bar tables.
_KNOWN_IGNORED = ("capitalgains", "repaired")
#: First-column cells of the header rows of a yfinance wide file.
_WIDE_LABEL_CELLS = frozenset({"", "price", "prices", "ticker", "tickers", "symbol", "date", "datetime"})
#: Those that may start the first two (field and ticker) rows: pandas writes the index
#: name (``Date``) on the third row only, and a first row starting with ``Date`` is the
#: header of a per-ticker file whatever its next row holds.
_WIDE_LEVEL_CELLS = _WIDE_LABEL_CELLS - {"date", "datetime"}

_DATA_LIKE = re.compile(
    r"^\s*(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{2,4}|[+-]?\d+(\.\d*)?([eE][+-]?\d+)?)\s*$"
)
_ZERO = r"^\s*[+-]?0*\.?0*\s*$"
_RATIO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?::|/|-?\s*for\s*-?)\s*(\d+(?:\.\d+)?)\s*$", re.IGNORECASE)

_HEAD_BYTES = 1 << 20
#: Longest field the exact reader takes. Python's csv module stops at 128 KiB by default,
#: while pyarrow's fast path takes anything up to its block size: without raising the
#: limit, one long value would refuse the whole file only when the exact reader happens to
#: be the one reading it (after a quoted line break, say), midway through the file.
_FIELD_LIMIT = 1 << 30
_DEFAULT_BLOCK = 32 << 20
_EXACT_BATCH_ROWS = 200_000
_MAX_WARNINGS_PER_FILE = 20


_WIDE_FIELD_LABELS = frozenset(
    {s for f in (*_VALUE_FIELDS, *_ACTION_FIELDS) for s in FIELD_SYNONYMS[f]} | set(_KNOWN_IGNORED)
)


def split_ratio_text(text: str | None) -> str | None:
    """A split ratio as new shares per old share: ``'4:1'`` → ``'4.0'``, ``'4.0'`` stays ``'4.0'``.

    Text that is not an ``n:m`` / ``n/m`` / ``n-for-m`` ratio is returned unchanged so the
    ETL can quarantine it with its original value.
    """
    if text is None:
        return None
    m = _RATIO.match(text)
    if not m:
        return text.strip()
    new, old = float(m.group(1)), float(m.group(2))
    if old == 0:
        return text.strip()
    return repr(new / old)


@dataclass(frozen=True, slots=True)
class Series:
    """One ticker's (or, with a ticker column, every ticker's) columns in a file.

    Attributes:
        ticker: The ticker of every row, or None when a ``ticker`` column holds it.
        columns: Canonical field (``ticker``, ``date``, ``close``…) → 0-based column index.
    """

    ticker: str | None
    columns: dict[str, int]

    @property
    def has_bars(self) -> bool:
        """Whether the series yields price rows (it has a close column)."""
        return "close" in self.columns

    @property
    def has_actions(self) -> bool:
        """Whether the series has dividend or split columns."""
        return any(f in self.columns for f in _ACTION_FIELDS)


@dataclass(frozen=True, slots=True)
class Layout:
    """How to read a file, derived from its header rows alone.

    Attributes:
        kind: ``long`` (ticker column), ``per_ticker`` (ticker from the file name) or
            ``wide`` (yfinance multi-ticker file).
        header_lines: Physical lines before the first data row.
        n_columns: Fields per record.
        series: Column maps; one per ticker for wide files.
        expect_ticker: For a ticker-named file with a ticker column, the ticker every row
            must carry.
        ignored: Header labels that map to no field.
        ticker_line: Line of the header row holding tickers (wide files).
    """

    kind: str
    header_lines: int
    n_columns: int
    series: tuple[Series, ...]
    expect_ticker: str | None = None
    ignored: tuple[str, ...] = ()
    ticker_line: int | None = None

    @property
    def columns_needed(self) -> list[int]:
        """Sorted column indexes any series reads."""
        return sorted({i for s in self.series for i in s.columns.values()})


def _map_labels(
    labels: Sequence[str], path: str, line: int, explicit: dict[str, str] | None = None
) -> tuple[dict[str, int], list[str]]:
    """Canonical field → column index for one header row, plus the labels left unmapped."""
    mapping, ignored, ambiguous = map_labels(labels, "bar", explicit)
    for fld, idxs in ambiguous:
        names = " and ".join(repr(labels[j].strip()) for j in idxs)
        raise InputFileError(
            path,
            f"ambiguous header: columns {names} both mean {fld} (say which with --columns {fld}=LABEL)",
            row=line,
        )
    for fld, wanted in (explicit or {}).items():
        if fld not in mapping:
            raise InputFileError(
                path,
                f"--columns {fld}={wanted}: no column {wanted!r} in the header {_short(list(labels))!r}",
                row=line,
            )
    return mapping, ignored


def _short(cells: Sequence[str], limit: int = 80) -> str:
    text = ",".join(cells)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _missing_required(mapping: dict[str, int]) -> list[str]:
    missing = [f for f in ("date",) if f not in mapping]
    if "close" not in mapping and not any(f in mapping for f in _ACTION_FIELDS):
        missing.append("close")
    return missing


def _detect_wide(
    records: Sequence[Sequence[str]], lines: Sequence[int], file_name: str, path: str
) -> Layout | None:
    if len(records) < 2:
        return None
    r0, r1 = records[0], records[1]
    if len(r0) < 2 or len(r0) != len(r1):
        return None
    if normalise_label(r0[0]) not in _WIDE_LEVEL_CELLS or normalise_label(r1[0]) not in _WIDE_LEVEL_CELLS:
        return None

    def fields_row(cells: Sequence[str]) -> bool:
        return all(normalise_label(c) in _WIDE_FIELD_LABELS for c in cells)

    # The level names pandas writes in the first column settle the order; without them
    # (older yfinance) the row made of price-field labels is the field row.
    l0, l1 = normalise_label(r0[0]), normalise_label(r1[0])
    if l0 == "price" or l1 in ("ticker", "tickers", "symbol"):
        fields_first = True
    elif l1 == "price" or l0 in ("ticker", "tickers", "symbol"):
        fields_first = False
    elif fields_row(r0[1:]) != fields_row(r1[1:]):
        fields_first = fields_row(r0[1:])
    else:
        return None
    if fields_first:
        field_cells, ticker_cells, ticker_line = r0, r1, lines[1]
    else:
        field_cells, ticker_cells, ticker_line = r1, r0, lines[0]
    if not fields_row(field_cells[1:]):
        return None
    if any(c.strip() and not re.search(r"[A-Za-z]", c) for c in ticker_cells[1:]):
        return None  # numbers, not tickers: the second row is data
    for j in range(1, len(ticker_cells)):
        if not ticker_cells[j].strip():
            raise InputFileError(
                path,
                f"cannot determine the ticker of column {j + 1} ({field_cells[j].strip()!r}): "
                "its ticker header cell is empty",
                row=ticker_line,
            )
    header_lines = lines[1]
    if len(records) >= 3:
        r2 = records[2]
        if normalise_label(r2[0]) in _WIDE_LABEL_CELLS and not any(c.strip() for c in r2[1:]):
            header_lines = lines[2]

    by_ticker: dict[str, dict[str, int]] = {}
    ignored: list[str] = []
    for j in range(1, len(field_cells)):
        ticker = ticker_cells[j].strip().upper()
        norm = normalise_label(field_cells[j])
        if norm in _KNOWN_IGNORED:
            ignored.append(f"{field_cells[j].strip()}/{ticker}")
            continue
        hit = field_of(field_cells[j])
        assert hit is not None  # fields_row() checked every label
        fld = hit[0]
        cols = by_ticker.setdefault(ticker, {"date": 0})
        if fld in cols:
            raise InputFileError(
                path, f"ambiguous header: two {fld} columns for ticker {ticker}", row=ticker_line
            )
        cols[fld] = j

    named = ticker_from_file_name(file_name, strict_case=True)
    if named is not None:
        for ticker in by_ticker:
            if ticker != named:
                raise InputFileError(
                    path,
                    f"ticker {ticker!r} in the header differs from the file name ticker {named!r}",
                    row=ticker_line,
                )
    series = []
    for ticker, cols in by_ticker.items():
        if "close" not in cols and not any(f in cols for f in _ACTION_FIELDS):
            raise InputFileError(
                path, f"missing required columns for ticker {ticker}: close", row=ticker_line
            )
        series.append(Series(ticker=ticker, columns=cols))
    return Layout(
        kind="wide",
        header_lines=header_lines,
        n_columns=len(field_cells),
        series=tuple(series),
        ignored=tuple(ignored),
        ticker_line=ticker_line,
    )


def detect_layout(
    records: Sequence[Sequence[str]],
    lines: Sequence[int],
    file_name: str,
    path: str | None = None,
    options: ReadOptions | None = None,
) -> Layout:
    """Work out a file's shape from its first records. Pure: no I/O.

    Args:
        records: The first (up to three) non-blank records of the file, as parsed cells.
        lines: The 1-based physical line number of each record.
        file_name: The file's name (per-ticker files take their ticker from it).
        path: Path used in error messages (defaults to ``file_name``).
        options: What the user said (``--columns``, ``--ticker``).

    Returns:
        The layout.

    Raises:
        InputFileError: No header, missing required columns, ambiguous or unrecognised
            header, or a ticker that cannot be determined.
    """
    path = path or file_name
    options = options or ReadOptions()
    if not records:
        raise InputFileError(path, "empty file")
    # Columns named by the user mean a one-header-row file.
    wide = None if options.columns else _detect_wide(records, lines, file_name, path)
    if wide is not None:
        return wide

    header = list(records[0])
    filled = [c for c in header if c.strip()]
    data_like = sum(1 for c in filled if _DATA_LIKE.match(c))
    if data_like and data_like * 2 >= len(filled):
        raise InputFileError(
            path, f"no header row: the first line is data ({_short(header)!r})", row=lines[0]
        )
    mapping, ignored = _map_labels(header, path, lines[0], dict(options.columns))
    if not mapping:
        raise InputFileError(
            path,
            f"unrecognised layout: no date or price columns in header {_short(header)!r} "
            "(name them with --columns date=LABEL,close=LABEL,...)",
            row=lines[0],
        )
    missing = _missing_required(mapping)
    if missing:
        shown = _short([c.strip() for c in header])
        hint = ",".join(f"{m}=LABEL" for m in missing)
        raise InputFileError(
            path,
            f"missing required columns: {', '.join(missing)} (header: {shown!r}; map them with --columns {hint})",
            row=lines[0],
        )

    if "ticker" in mapping:
        named = options.ticker or ticker_from_file_name(file_name, strict_case=True)
        return Layout(
            kind="long",
            header_lines=lines[0],
            n_columns=len(header),
            series=(Series(ticker=None, columns=mapping),),
            expect_ticker=named,
            ignored=tuple(ignored),
        )
    ticker = options.ticker or ticker_from_file_name(file_name)
    if ticker is None:
        raise InputFileError(
            path,
            f"cannot determine the ticker: no ticker column and the file name {os.path.basename(file_name)!r} "
            "is not a ticker symbol (pass --ticker SYMBOL, or rename the file SYMBOL.csv)",
        )
    return Layout(
        kind="per_ticker",
        header_lines=lines[0],
        n_columns=len(header),
        series=(Series(ticker=ticker, columns=mapping),),
        ignored=tuple(ignored),
    )


# --------------------------------------------------------------------------- file access


@dataclass(frozen=True, slots=True)
class _Opened:
    path: str
    compression: str | None
    encoding: str
    delimiter: str


def _open_bytes(path: str, compression: str | None) -> gzip.GzipFile | io.BufferedReader:
    if compression == "gzip":
        return gzip.open(path, "rb")
    return open(path, "rb")


def _read_head(path: str, compression: str | None) -> bytes:
    try:
        with _open_bytes(path, compression) as f:
            return f.read(_HEAD_BYTES)
    except (gzip.BadGzipFile, EOFError, OSError, zlib.error) as e:
        if isinstance(e, FileNotFoundError | PermissionError | IsADirectoryError):
            raise InputFileError(path, e.strerror or str(e)) from None
        raise InputFileError(path, f"unreadable compressed file ({e})") from None


def _raise_field_limit() -> None:
    # Process-wide setting, only ever raised: other csv users keep working as before.
    if _pycsv.field_size_limit() < _FIELD_LIMIT:
        _pycsv.field_size_limit(_FIELD_LIMIT)


_UTF16_BOMS = {b"\xff\xfe": "utf-16-le", b"\xfe\xff": "utf-16-be"}


def _utf16_without_bom(head: bytes) -> str | None:
    """``utf-16-le``/``-be`` when the head reads as BOM-less UTF-16 text, else None.

    Text in the Latin range written as UTF-16 has a zero byte in every other position and
    none in the others; binary data practically never has that shape over many bytes.
    """
    sample = head[: 4096 - 4096 % 2] if len(head) >= 4096 else head[: len(head) - len(head) % 2]
    if len(sample) < 8:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) == len(odd) and even.count(0) == 0:
        return "utf-16-le"
    if even.count(0) == len(even) and odd.count(0) == 0:
        return "utf-16-be"
    return None


def _looks_binary(head: bytes) -> bool:
    if b"\x00" in head:
        return True
    sample = head[:8192]
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    return controls > max(2, len(sample) // 20)


def _choose_delimiter(line: str) -> str:
    counts = {d: line.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > counts[","] else ","


@dataclass(frozen=True, slots=True)
class _Head:
    """The first megabyte of a file as text (records for sampling values) and whether it is all."""

    text: str
    truncated: bool


def _sniff(
    path: str, options: ReadOptions | None = None
) -> tuple[_Opened, list[list[str]], list[int], _Head]:
    """Open a file just enough to classify it: compression, encoding, delimiter, first records."""
    options = options or ReadOptions()
    try:
        if os.path.getsize(path) == 0:
            raise InputFileError(path, "empty file")
    except OSError as e:
        raise InputFileError(path, e.strerror or str(e)) from None
    compression = "gzip" if path.lower().endswith(".gz") else None
    head = _read_head(path, compression)
    if compression is None and head[:2] == b"\x1f\x8b":
        compression = "gzip"
        head = _read_head(path, compression)
    if head[:4] == b"PK\x03\x04":
        raise InputFileError(path, "not a text CSV file (a zip archive, e.g. an Excel workbook)")
    truncated = len(head) == _HEAD_BYTES
    # Excel's "Unicode text" export is UTF-16 (with a BOM); some tools drop the BOM.
    utf16 = _UTF16_BOMS.get(head[:2]) or _utf16_without_bom(head)
    if options.encoding is not None and not options.encoding.startswith("utf-16"):
        if truncated:
            cut = head.rfind(b"\n")
            head = head[: cut + 1] if cut > 0 else head
        encoding = options.encoding
        try:
            text = head.decode(encoding)
        except UnicodeDecodeError as e:
            raise InputFileError(
                path, f"not {encoding} text ({e.reason} at byte {e.start}; try another --encoding)"
            ) from None
    elif utf16 is not None:
        text = head[: len(head) - len(head) % 2].decode(utf16, errors="replace")
        if truncated:
            cut = text.rfind("\n")
            text = text[: cut + 1] if cut > 0 else text
        # The BOM, when there is one, is left in the stream: "utf-16" reads it and drops it.
        encoding = "utf-16" if head[:2] in _UTF16_BOMS else utf16
        if _looks_binary(text.encode("utf-8", errors="replace")):
            raise InputFileError(path, "not a text CSV file (binary content)")
    else:
        if _looks_binary(head):
            raise InputFileError(path, "not a text CSV file (binary content)")
        if truncated:
            cut = head.rfind(b"\n")
            head = head[: cut + 1] if cut > 0 else head
        encoding = "utf-8"
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError:
            # Spreadsheet exports are often Windows-1252 (its 0x80 is the euro sign); latin-1
            # maps every byte, so reading never fails when Windows-1252 does not fit.
            try:
                encoding = "cp1252"
                text = head.decode(encoding)
            except UnicodeDecodeError:
                encoding = "latin-1"
                text = head.decode(encoding)
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise InputFileError(path, "empty file")
    # Only CR, LF and CRLF end CSV lines (str.splitlines also splits on U+2028 and others).
    first_line = next((ln for ln in re.split(r"\r\n|\r|\n", text) if ln.strip()), "")
    delimiter = options.delimiter or _choose_delimiter(first_line)
    records: list[list[str]] = []
    lines: list[int] = []
    _raise_field_limit()
    # newline="": lines end at CR, LF or CRLF, as in the streaming readers (old Mac files use CR).
    reader = _pycsv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    consumed = 0
    try:
        for row in reader:
            start = consumed + 1
            consumed = reader.line_num
            if not any(c.strip() for c in row):
                continue
            records.append(row)
            lines.append(start)
            if len(records) == 3:
                break
    except _pycsv.Error as e:
        raise InputFileError(path, f"not a readable CSV file ({e})") from None
    if truncated and "\n" not in text and "\r" not in text:
        raise InputFileError(path, "not a CSV file: no line break in the first megabyte")
    return _Opened(path, compression, encoding, delimiter), records, lines, _Head(text, truncated)


def _pyarrow_stream(
    opened: _Opened,
    header_lines: int,
    n_columns: int,
    block_size: int,
    on_invalid: Callable[[object], str],
) -> pacsv.CSVStreamingReader:
    names = [f"c{i}" for i in range(n_columns)]
    source = pa.input_stream(opened.path, compression=opened.compression)
    return pacsv.open_csv(
        source,
        read_options=pacsv.ReadOptions(
            skip_rows=header_lines,
            column_names=names,
            block_size=block_size,
            encoding="utf8" if opened.encoding == "utf-8" else opened.encoding,
        ),
        parse_options=pacsv.ParseOptions(
            delimiter=opened.delimiter,
            ignore_empty_lines=False,
            newlines_in_values=False,
            invalid_row_handler=on_invalid,
        ),
        convert_options=pacsv.ConvertOptions(
            # Every column is read, even unused ones, so that a quoted line break anywhere
            # is seen and line numbers stay exact.
            column_types={n: pa.string() for n in names},
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            null_values=[""],
        ),
    )


def _spans_lines(batch: pa.RecordBatch) -> bool:
    """Whether any value holds a line break (a quoted multi-line field)."""
    for col in batch.columns:
        buffer = col.buffers()[2] if col.null_count < len(col) else None
        if buffer is None:
            continue
        # A byte search over the column's character buffer runs at memchr speed.
        data = buffer.to_pybytes()
        if b"\n" in data or b"\r" in data:
            return True
    return False


@dataclass
class Counters:
    """What a reader counted besides rows: blank and malformed records, notes about them."""

    empty_rows: int = 0
    malformed_rows: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One batch of records: text columns by index, their 1-based lines, malformed-record mask."""

    arrays: dict[int, pa.Array]
    lines: np.ndarray
    malformed: np.ndarray | None = None


def _stream_fast(
    opened: _Opened, layout: Layout, cols: list[int], block_size: int, counters: Counters
) -> Iterator[Chunk]:
    """Batches of the columns ``cols`` with line numbers (pyarrow, then the exact fallback)."""
    invalid = [0]

    def on_invalid(_row: object) -> str:
        invalid[0] += 1
        return "skip"

    done = 0
    first = layout.header_lines + 1
    try:
        reader = _pyarrow_stream(opened, layout.header_lines, layout.n_columns, block_size, on_invalid)
        for batch in reader:
            if invalid[0] or _spans_lines(batch):
                # This batch's rows are no longer one per line: re-read exactly from its start.
                break
            n = batch.num_rows
            arrays = {i: batch.column(i) for i in cols}
            yield Chunk(arrays, np.arange(first + done, first + done + n, dtype=np.int64))
            done += n
        else:
            # pyarrow skips an invalid row without a batch when no valid row shares its block,
            # so the end of the stream alone does not mean every row was handed out.
            if not invalid[0]:
                return
    except (pa.ArrowInvalid, UnicodeDecodeError):
        # e.g. bytes that are not UTF-8 further down, or a UTF-16 file cut mid-character
        # (pyarrow's transcoder is strict): the exact reader replaces what does not decode.
        pass
    yield from _stream_exact(opened, layout, cols, first + done, counters)


def _stream_exact(
    opened: _Opened, layout: Layout, cols: list[int], start_line: int, counters: Counters
) -> Iterator[Chunk]:
    """The same batches via Python's csv module from ``start_line`` on, with exact line numbers."""
    encoding = "utf-8-sig" if opened.encoding == "utf-8" else opened.encoding
    _raise_field_limit()
    with _open_bytes(opened.path, opened.compression) as raw:
        text = io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="")
        for _ in range(start_line - 1):
            if not text.readline():
                return
        reader = _pycsv.reader(text, delimiter=opened.delimiter)
        values: list[list[str | None]] = [[] for _ in cols]
        line_nos: list[int] = []
        bad: list[bool] = []
        consumed = 0
        n_expected = layout.n_columns
        try:
            for row in reader:
                line = start_line + consumed
                consumed = reader.line_num
                if len(row) != n_expected:
                    if not any(c.strip() for c in row):
                        counters.empty_rows += 1
                        continue
                    counters.malformed_rows += 1
                    if len(counters.warnings) < _MAX_WARNINGS_PER_FILE:
                        counters.warnings.append(
                            f"{opened.path}:{line}: expected {n_expected} fields, got {len(row)}"
                        )
                    # Kept so that the ETL quarantines it and counts reconcile. A short record
                    # lacks its trailing fields (read as empty, like any CSV reader does); in
                    # a long one no field can be trusted to be under its header.
                    short = len(row) < n_expected
                    for v, i in zip(values, cols, strict=True):
                        v.append(row[i] or None if short and i < len(row) else None)
                    bad.append(True)
                else:
                    bad.append(False)
                    for v, i in zip(values, cols, strict=True):
                        cell = row[i]
                        v.append(cell if cell != "" else None)
                line_nos.append(line)
                if len(line_nos) >= _EXACT_BATCH_ROWS:
                    yield _exact_batch(values, cols, line_nos, bad)
                    values = [[] for _ in cols]
                    line_nos = []
                    bad = []
        except _pycsv.Error as e:
            raise InputFileError(opened.path, f"unreadable CSV ({e})", row=start_line + consumed) from None
        except (gzip.BadGzipFile, EOFError, zlib.error) as e:
            # A compressed file whose data is corrupt past its first block.
            raise InputFileError(
                opened.path, f"unreadable compressed file ({e})", row=start_line + consumed
            ) from None
        if line_nos:
            yield _exact_batch(values, cols, line_nos, bad)


def _exact_batch(
    values: list[list[str | None]], cols: list[int], line_nos: list[int], bad: list[bool]
) -> Chunk:
    arrays = {i: pa.array(v, type=pa.string()) for v, i in zip(values, cols, strict=True)}
    return Chunk(
        arrays, np.asarray(line_nos, dtype=np.int64), np.asarray(bad, dtype=bool) if any(bad) else None
    )


# --------------------------------------------------------------------------- batch → tables


def _const(value: str, n: int) -> pa.Array:
    return (
        pa.array([value] * n, type=pa.string()) if n < 1024 else pc.fill_null(pa.nulls(n, pa.string()), value)
    )


def _filled(arr: pa.Array) -> pa.Array:
    """True where a cell holds a value (empty cells are read as null)."""
    return pc.is_valid(arr)


_NO_RENAMES = SymbolMap()


def _resolve_tickers(tickers: pa.Array, symbols: SymbolMap, renamed: dict[str, str]) -> pa.Array:
    """Tickers through the symbol map, one lookup per distinct symbol; renames recorded."""
    encoded = pc.dictionary_encode(tickers)
    names = encoded.dictionary.to_pylist()
    mapped = [symbols.resolve(v) if v else v for v in names]
    if mapped == names:
        return tickers
    for before, after in zip(names, mapped, strict=True):
        if before != after:
            renamed[before] = after
    return pc.take(pa.array(mapped, pa.string()), encoded.indices)


def _series_tables(
    series: Series,
    arrays: dict[int, pa.Array],
    lines: np.ndarray,
    source_file: str,
    counters: Counters,
    kind: str,
    malformed: np.ndarray | None = None,
    symbols: SymbolMap = _NO_RENAMES,
    renamed: dict[str, str] | None = None,
) -> tuple[pa.Table | None, pa.Table | None]:
    renamed = renamed if renamed is not None else {}
    n = len(lines)
    cols = series.columns
    # A record is empty when none of its fields are filled: a blank line, or (wide files)
    # the padding yfinance adds for a ticker on dates it did not trade.
    content = [f for f in cols if f != "date"] if kind == "wide" else list(cols)
    filled = None
    for f in content:
        m = _filled(arrays[cols[f]])
        filled = m if filled is None else pc.or_(filled, m)
    keep = filled if filled is not None else pa.array(np.ones(n, dtype=bool))
    if malformed is not None:
        keep = pc.or_(keep, pa.array(malformed))
    kept = pc.sum(keep).as_py() or 0
    if kept < n:
        if kind != "wide":
            counters.empty_rows += n - kept
        arrays = {i: pc.filter(a, keep) for i, a in arrays.items()}
        lines = lines[np.asarray(keep.to_numpy(zero_copy_only=False), dtype=bool)]
        n = kept
    if n == 0:
        return None, None
    if series.ticker is not None:
        ticker = _const(symbols.resolve(series.ticker), n)
        if ticker[0].as_py() != series.ticker:
            renamed[series.ticker] = ticker[0].as_py()
    else:
        ticker = _resolve_tickers(
            pc.utf8_upper(pc.utf8_trim_whitespace(arrays[cols["ticker"]])), symbols, renamed
        )
    row = pc.cast(pa.array(lines, type=pa.int64()), pa.string())
    src = _const(SOURCE, n)
    file_col = _const(source_file, n)

    bars = None
    if series.has_bars:
        data = {
            "ticker": ticker,
            "date": arrays[cols["date"]],
            **{f: arrays[cols[f]] if f in cols else pa.nulls(n, pa.string()) for f in _VALUE_FIELDS},
            "source": src,
            "source_file": file_col,
            "source_row": row,
        }
        bars = pa.table([data[c] for c in RAW_BAR_COLUMNS], names=list(RAW_BAR_COLUMNS))

    actions = None
    if series.has_actions:
        parts = []
        for fld, action in (("dividends", "dividend"), ("splits", "split")):
            if fld not in cols:
                continue
            vals = arrays[cols[fld]]
            mask = pc.invert(pc.fill_null(pc.match_substring_regex(vals, _ZERO), True))
            if not pc.any(mask).as_py():
                continue
            idx = pc.indices_nonzero(mask)
            picked = pc.take(vals, idx)
            m = len(picked)
            text = [None if v is None else v.strip() for v in picked.to_pylist()]
            if action == "split":
                ratio = pa.array([split_ratio_text(v) for v in text], pa.string())
                amount = pa.nulls(m, pa.string())
            else:
                ratio = pa.nulls(m, pa.string())
                amount = pa.array(text, pa.string())
            data = {
                "ticker": pc.take(ticker, idx),
                "date": pc.take(arrays[cols["date"]], idx),
                "action": _const(action, m),
                "ratio": ratio,
                "amount": amount,
                "source": _const(SOURCE, m),
                "source_file": _const(source_file, m),
                "source_row": pc.take(row, idx),
            }
            parts.append(pa.table([data[c] for c in RAW_ACTION_COLUMNS], names=list(RAW_ACTION_COLUMNS)))
        if parts:
            actions = pa.concat_tables(parts)
    return bars, actions


# --------------------------------------------------------------------------- public API


@dataclass
class CsvFileResult:
    """What one input file yielded.

    Attributes:
        path: The file (absolute).
        layout: ``long``, ``per_ticker`` or ``wide``.
        tickers: Tickers named by the layout (wide and per-ticker files), else empty.
        rows: Rows per raw dataset.
        empty_rows: Blank records skipped.
        malformed_rows: Records with the wrong number of fields (kept with empty values so
            the ETL quarantines them).
        ignored_columns: Header labels that map to no field.
        renamed: Symbol as written → ticker, for the symbols the symbol map renamed.
        date_format: The date format the values were read in (None: ISO dates, kept as they are).
        decimal: The decimal mark numbers were read with (None: plain numbers, kept as they are).
    """

    path: str
    layout: str
    tickers: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    empty_rows: int = 0
    malformed_rows: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)
    date_format: str | None = None
    decimal: str | None = None


@dataclass
class CsvReport:
    """Outcome of reading a set of CSV inputs.

    Attributes:
        files: One result per usable file.
        errors: One error per unusable file (the file was skipped).
        warnings: Non-CSV files skipped in folders and row-level notes (malformed records,
            capped per file).
    """

    files: list[CsvFileResult] = field(default_factory=list)
    errors: list[InputFileError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def rows(self) -> dict[str, int]:
        """Rows per dataset over all files."""
        out: dict[str, int] = {}
        for f in self.files:
            for k, v in f.rows.items():
                out[k] = out.get(k, 0) + v
        return out


def _check_ticker_column(
    opened: _Opened, layout: Layout, block_size: int, symbols: SymbolMap, what: str = "the file name ticker"
) -> None:
    """In a ticker-named file (or with ``--ticker``), every row's ticker must be the file's ticker."""
    expected = symbols.resolve(layout.expect_ticker or "")
    col = layout.series[0].columns["ticker"]
    counters = Counters()
    for chunk in _stream_fast(opened, layout, [col], block_size, counters):
        lines = chunk.lines
        tickers = _resolve_tickers(pc.utf8_upper(pc.utf8_trim_whitespace(chunk.arrays[col])), symbols, {})
        bad = pc.fill_null(pc.and_(pc.not_equal(tickers, expected), pc.not_equal(tickers, "")), False)
        if pc.any(bad).as_py():
            i = pc.indices_nonzero(bad)[0].as_py()
            raise InputFileError(
                opened.path,
                f"ticker {tickers[i].as_py()!r} in the data differs from {what} {expected!r}",
                row=int(lines[i]),
            )


#: Columns of the ``source_symbols`` raw dataset: which symbol of a file became which ticker.
SOURCE_SYMBOL_COLUMNS: tuple[str, ...] = ("ticker", "source_symbol", "rule", "source", "source_file")
#: Fields whose values are numbers (cleaned of currency signs and separators when a file needs it).
_NUMBER_FIELDS = ("open", "high", "low", "close", "adj_close", "volume", "dividends")
#: Records a file's formats are decided from; when its dates do not tell, all of them are read.
_SAMPLE_ROWS = 2_000
#: Records the decimal mark is decided from (every price of a record tells); a later value
#: that does not fit is noted for the ETL's quarantine, not misread.
_NUMBER_SAMPLE_ROWS = 500


@dataclass(frozen=True, slots=True)
class _Plan:
    """How a file's values are rewritten before they land (None: kept as they are)."""

    date_col: int | None
    date_format: DateFormat | None
    number_cols: tuple[int, ...]
    decimal: str | None

    def apply(self, arrays: dict[int, pa.Array]) -> dict[int, pa.Array]:
        out = dict(arrays)
        if self.date_format is not None and self.date_col in out:
            out[self.date_col] = apply_date_format(out[self.date_col], self.date_format)
        if self.decimal is not None:
            for i in self.number_cols:
                if i in out:
                    out[i] = apply_decimal(out[i], self.decimal)
        return out


def _head_sample(opened: _Opened, layout: Layout, head: _Head) -> tuple[list[list[str]], list[int]]:
    """Records after the header in the file's first megabyte, with their lines."""
    reader = _pycsv.reader(io.StringIO(head.text, newline=""), delimiter=opened.delimiter)
    records: list[list[str]] = []
    lines: list[int] = []
    consumed = 0
    try:
        for row in reader:
            start = consumed + 1
            consumed = reader.line_num
            if start <= layout.header_lines or len(row) != layout.n_columns:
                continue
            records.append(row)
            lines.append(start)
            if len(records) >= _SAMPLE_ROWS:
                break
    except _pycsv.Error:
        pass  # the streaming readers report it with its line
    return records, lines


def decide_plan(
    layout: Layout,
    sample: Sequence[Sequence[str | None]],
    lines: Sequence[int],
    options: ReadOptions,
    label: str,
    delimiter: str = ",",
    all_dates: Callable[[], Iterable[tuple[pa.Array, np.ndarray]]] | None = None,
) -> _Plan:
    """Decide a file's date format and decimal mark from its values (see ``sources.values``).

    Args:
        layout: The file's layout.
        sample: The first records (cells by column index), as text.
        lines: Their lines (or row numbers).
        options: What the user said (``--date-format``, ``--decimal`` win).
        label: The date column's label, for messages.
        delimiter: The file's delimiter (breaks a tie on the decimal mark).
        all_dates: Every date of the file in batches, read when the sample cannot tell.

    Raises:
        AmbiguousValues: The dates read two ways, or in no known format.
    """
    date_col = layout.series[0].columns.get("date")
    number_cols = tuple(
        sorted({i for s in layout.series for f, i in s.columns.items() if f in _NUMBER_FIELDS})
    )
    date_format = options.date_format
    if date_format is None and date_col is not None:
        dates = [r[date_col] for r in sample]
        if not is_iso_date_text(dates):
            vote = DateVote()
            vote.add(pa.array(dates, pa.string()), np.asarray(lines, dtype=np.int64))
            try:
                date_format = vote.result()
            except AmbiguousValues:
                if all_dates is None:
                    raise
                # The sample does not tell: every date of the file may.
                vote = DateVote()
                for values, at in all_dates():
                    vote.add(values, at)
                date_format = vote.result()
            if date_format is not None and date_format.name == "YYYY-MM-DD":
                # The ETL reads ISO dates as they are; with no known format at all the
                # values go as they are too, and the ETL quarantines them with their text.
                date_format = None
    decimal = options.decimal
    if decimal is None and number_cols:
        head = zip(sample[:_NUMBER_SAMPLE_ROWS], lines, strict=False)
        samples = [(r[i] or "", ln) for r, ln in head for i in number_cols]
        if needs_number_cleaning([v for v, _ in samples]):
            decimal = decide_decimal(samples, delimiter)
    return _Plan(date_col, date_format, number_cols, decimal)


def _symbol_table(renamed: dict[str, str], symbols: SymbolMap, source_file: str) -> pa.Table:
    before = sorted(renamed)
    rules = ["symbol map" if b in symbols.explicit else "exchange suffix" for b in before]
    data = {
        "ticker": [renamed[b] for b in before],
        "source_symbol": before,
        "rule": rules,
        "source": [SOURCE] * len(before),
        "source_file": [source_file] * len(before),
    }
    return pa.table({c: pa.array(data[c], pa.string()) for c in SOURCE_SYMBOL_COLUMNS})


def read_csv_file(
    path: str | os.PathLike[str],
    block_size: int = _DEFAULT_BLOCK,
    result: CsvFileResult | None = None,
    warnings: list[str] | None = None,
    options: ReadOptions | None = None,
    name: str | None = None,
    source_file: str | None = None,
) -> Iterator[tuple[str, pa.Table]]:
    """Read one CSV file into ``(dataset, table)`` batches of raw text rows.

    Args:
        path: The file.
        block_size: Bytes per streamed batch.
        result: Filled in with counts as the file is read.
        warnings: Receives row-level notes.
        options: What the user said about the file (``--ticker``, ``--columns``...).
        name: The file name a ticker is taken from (default: the file's own; a zip
            member's name when the file was extracted from an archive).
        source_file: What rows and errors call the file (default: its absolute path).

    Yields:
        ``("daily_bars", table)`` in :data:`RAW_BAR_COLUMNS`,
        ``("corporate_actions", table)`` in :data:`RAW_ACTION_COLUMNS` and, when symbols
        were renamed, ``("source_symbols", table)`` in :data:`SOURCE_SYMBOL_COLUMNS`; all text.

    Raises:
        InputFileError: The file cannot be used (see :func:`detect_layout`), or its dates
            read two ways.
    """
    options = options or ReadOptions()
    apath = os.path.abspath(os.fspath(path))
    shown = source_file or apath
    if os.path.isdir(apath):
        raise InputFileError(shown, "is a folder (pass it to read_csv_sources)")
    try:
        opened, records, lines, head = _sniff(apath, options)
        layout = detect_layout(records, lines, name or os.path.basename(apath), apath, options)
        res = result if result is not None else CsvFileResult(path=shown, layout=layout.kind)
        res.layout = layout.kind
        symbols = options.symbols
        res.tickers = sorted({symbols.resolve(s.ticker) for s in layout.series if s.ticker})
        res.ignored_columns = list(layout.ignored)
        if layout.expect_ticker is not None:
            what = "--ticker" if options.ticker else "the file name ticker"
            _check_ticker_column(opened, layout, block_size, symbols, what)
        date_col = layout.series[0].columns["date"]  # every layout has one
        label = records[0][date_col].strip() if layout.kind != "wide" else "date"
        try:
            sample, sample_lines = _head_sample(opened, layout, head)

            def all_dates() -> Iterator[tuple[pa.Array, np.ndarray]]:
                for chunk in _stream_fast(opened, layout, [date_col], block_size, Counters()):
                    yield chunk.arrays[date_col], chunk.lines

            plan = decide_plan(
                layout,
                sample,
                sample_lines,
                options,
                label,
                opened.delimiter,
                all_dates,
            )
        except AmbiguousValues as e:
            raise InputFileError(apath, str(e), row=e.line) from None
        counters = Counters()
        chunks = _stream_fast(opened, layout, layout.columns_needed, block_size, counters)
        yield from read_chunks(chunks, layout, plan, symbols, res, warnings, shown, counters)
    except InputFileError as e:
        if e.path == apath and shown != apath:
            raise InputFileError(shown, e.problem, row=e.row) from None
        raise


def read_chunks(
    chunks: Iterable[Chunk],
    layout: Layout,
    plan: _Plan,
    symbols: SymbolMap,
    res: CsvFileResult,
    warnings: list[str] | None,
    shown: str,
    counters: Counters,
) -> Iterator[tuple[str, pa.Table]]:
    """Raw-zone tables from batches of a file's text columns (CSV, Parquet and JSON readers).

    Args:
        chunks: Text columns by index with their lines; ``counters`` filled by the reader.
        layout: The file's layout.
        plan: Value rewrites (:func:`decide_plan`).
        symbols: Symbol renames.
        res: Filled in with counts.
        warnings: Receives row-level notes.
        shown: What rows call the file (``source_file``).
        counters: The reader's counts of empty and malformed records.

    Raises:
        InputFileError: The file has no data rows.
    """
    renamed: dict[str, str] = {}
    res.date_format = plan.date_format.name if plan.date_format is not None else None
    res.decimal = plan.decimal
    for chunk in chunks:
        arrays = plan.apply(chunk.arrays)
        bar_parts: list[pa.Table] = []
        action_parts: list[pa.Table] = []
        for k, series in enumerate(layout.series):
            sub = {i: arrays[i] for i in series.columns.values()}
            # A malformed record of a wide file becomes one row (under its first ticker), not one per ticker.
            malformed = chunk.malformed if k == 0 else None
            bars, actions = _series_tables(
                series, sub, chunk.lines, shown, counters, layout.kind, malformed, symbols, renamed
            )
            if bars is not None:
                bar_parts.append(bars)
            if actions is not None:
                action_parts.append(actions)
        for dataset, parts in (("daily_bars", bar_parts), ("corporate_actions", action_parts)):
            if parts:
                table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
                res.rows[dataset] = res.rows.get(dataset, 0) + table.num_rows
                yield dataset, table
    if renamed:
        res.renamed = dict(sorted(renamed.items()))
        yield "source_symbols", _symbol_table(renamed, symbols, shown)
    res.empty_rows = counters.empty_rows
    res.malformed_rows = counters.malformed_rows
    if warnings is not None:
        warnings.extend(counters.warnings)
        if counters.malformed_rows > len(counters.warnings):
            warnings.append(
                f"{shown}: {counters.malformed_rows - len(counters.warnings)} more malformed rows"
            )
    if not res.rows and not counters.malformed_rows:
        raise InputFileError(shown, "no data rows")


def expand_paths(
    paths: Iterable[str | os.PathLike[str]], errors: list[InputFileError], warnings: list[str]
) -> list[str]:
    """Files to read: files as given, folders searched recursively (see :func:`sources.files.expand_inputs`).

    A missing path or a folder without price files adds an error to ``errors``; another
    file inside a folder is skipped with a note in ``warnings``. Nothing stops the run.
    """
    from tickerlake.sources.files import expand_inputs

    return list(dict.fromkeys(i.path for i in expand_inputs(paths, errors, warnings)))


def read_csv_sources(
    paths: Iterable[str | os.PathLike[str]],
    report: CsvReport | None = None,
    block_size: int = _DEFAULT_BLOCK,
    on_file: Callable[[str, CsvFileResult | InputFileError], None] | None = None,
) -> Iterator[tuple[str, pa.Table]]:
    """Read files and folders of price data into ``(dataset, table)`` batches.

    An unusable file is recorded in ``report.errors`` and skipped; the others are still
    read. Callers decide the exit status from ``report.errors``. Parquet, JSON-lines and
    zip inputs are read too (see :mod:`tickerlake.sources.files`).

    Args:
        paths: Files or folders (searched recursively for price files).
        report: Receives per-file results, errors and warnings.
        block_size: Bytes per streamed batch.
        on_file: Called once per file with its result or error (progress).

    Yields:
        ``(dataset, table)`` pairs as :func:`read_csv_file` does.
    """
    from tickerlake.sources.files import expand_inputs, read_sources

    report = report if report is not None else CsvReport()
    inputs = expand_inputs(paths, report.errors, report.warnings)
    yield from read_sources(inputs, report, on_file=on_file, block_size=block_size)
