"""Price files of any kind → raw-zone text tables: CSV/text, Parquet, JSON lines and zip archives.

:func:`expand_inputs` turns files and folders into the inputs to read, each with its
options (the command line over the nearest ``tickerlake.toml``, see
:mod:`tickerlake.sources.options`). :func:`read_sources` reads them by kind:

* ``.csv``, ``.txt``, ``.tsv``, ``.prn`` (also gzipped): :func:`tickerlake.sources.csv.read_csv_file`;
* ``.parquet``: columns mapped by name like CSV headers, values read as text (dates as
  ISO dates, numbers in their shortest form); row numbers are 1-based record positions;
* ``.jsonl``/``.ndjson`` (one object per line) and ``.json`` (an array of objects): keys
  mapped like CSV headers; line numbers are the file's;
* ``.zip``: every member matching the pattern is read as a file of its own, named
  ``archive.zip!member`` in rows and messages, its ticker taken from the member's name.

In folders, files are found by :data:`DEFAULT_PATTERNS` (or ``--pattern``). A ``.txt`` file
found that way that turns out not to be a price table (a readme) is skipped with a warning.
"""

from __future__ import annotations

import csv as _pycsv
import datetime as dt
import fnmatch
import itertools
import json
import math
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tickerlake.errors import InputFileError, UserError
from tickerlake.sources.csv import (
    Chunk,
    Counters,
    CsvFileResult,
    CsvReport,
    Layout,
    decide_plan,
    detect_layout,
    read_chunks,
    read_csv_file,
)
from tickerlake.sources.options import SIDECAR, ReadOptions, load_sidecar
from tickerlake.sources.values import AmbiguousValues, epoch_us

__all__ = ["DEFAULT_PATTERNS", "Input", "expand_inputs", "read_input", "read_sources"]

#: File names read in folders (and in zip archives) unless ``--pattern`` says otherwise.
DEFAULT_PATTERNS: tuple[str, ...] = (
    "*.csv",
    "*.csv.gz",
    "*.txt",
    "*.txt.gz",
    "*.tsv",
    "*.prn",
    "*.zip",
    "*.parquet",
    "*.jsonl",
    "*.ndjson",
    "*.json",
)
_BATCH_ROWS = 100_000
_DECODE = msgspec.json.Decoder().decode
_JSON_SAMPLE = 1_000


@dataclass(frozen=True)
class Input:
    """One input to read.

    Attributes:
        path: The file (absolute).
        options: Its options (command line over sidecar).
        member: The zip member to read, when ``path`` is an archive.
        optional: Found in a folder by a default pattern that also matches non-price files
            (``*.txt``): not being a price table is then a warning, not an error.
    """

    path: str
    options: ReadOptions
    member: str | None = None
    optional: bool = False

    @property
    def shown(self) -> str:
        """How rows and messages name the input."""
        return f"{self.path}!{self.member}" if self.member else self.path


def _patterns(options: ReadOptions) -> tuple[tuple[str, ...], bool]:
    if options.pattern:
        return tuple(p.strip() for p in options.pattern.split(",") if p.strip()), True
    return DEFAULT_PATTERNS, False


def _matches(name: str, patterns: Iterable[str]) -> bool:
    low = name.lower()
    return any(fnmatch.fnmatch(low, p.lower()) for p in patterns)


def _zip_members(path: str, options: ReadOptions, errors: list[InputFileError]) -> list[Input]:
    patterns, explicit = _patterns(options)
    try:
        with zipfile.ZipFile(path) as archive:
            names = [i.filename for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError) as e:
        errors.append(InputFileError(path, f"not a readable zip archive ({e})"))
        return []
    members = [
        n
        for n in names
        if not n.lower().endswith(".zip")
        and os.path.basename(n) != SIDECAR
        and not os.path.basename(n).startswith(".")
        and not n.startswith("__MACOSX/")
        and _matches(os.path.basename(n), patterns)
    ]
    if not members:
        errors.append(
            InputFileError(
                path, f"no price files in this archive (looked for {', '.join(patterns)}; use --pattern)"
            )
        )
    return [Input(path, options, m, optional=not explicit and m.lower().endswith(".txt")) for m in members]


def expand_inputs(
    paths: Iterable[str | os.PathLike[str]],
    errors: list[InputFileError],
    warnings: list[str],
    options: ReadOptions | None = None,
) -> list[Input]:
    """Inputs to read: files as given, folders searched recursively, zip archives by member.

    A missing path, an unreadable sidecar or a folder without price files adds an error to
    ``errors``; a file a folder's patterns do not match is skipped with a note in
    ``warnings``. Nothing stops the run.

    Args:
        paths: Files and folders.
        errors: Receives one error per unusable path.
        warnings: Receives skipped files.
        options: The command line's options (over each folder's sidecar file).
    """
    cli = options or ReadOptions()
    out: list[Input] = []
    for p in paths:
        path = os.path.abspath(os.fspath(p))
        try:
            if os.path.isdir(path):
                out.extend(_expand_folder(path, cli, errors, warnings))
            elif os.path.isfile(path):
                side = load_sidecar(os.path.dirname(path))
                opts = cli.over(side) if side else cli
                if path.lower().endswith(".zip"):
                    out.extend(_zip_members(path, opts, errors))
                else:
                    out.append(Input(path, opts))
            else:
                errors.append(InputFileError(path, "no such file or folder"))
        except UserError as e:
            errors.append(InputFileError(path, str(e)))
    return out


def _expand_folder(
    root: str, cli: ReadOptions, errors: list[InputFileError], warnings: list[str]
) -> list[Input]:
    out: list[Input] = []
    # Each folder's sidecar settings: its own over its parents' (the nearest wins).
    sidecars: dict[str, ReadOptions] = {}
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        inherited = sidecars.get(os.path.dirname(folder), ReadOptions()) if folder != root else ReadOptions()
        side = load_sidecar(folder)
        sidecars[folder] = side.over(inherited) if side else inherited
        opts = cli.over(sidecars[folder])
        patterns, explicit = _patterns(opts)
        for name in sorted(files):
            child = os.path.join(folder, name)
            if name == SIDECAR:
                continue
            if not _matches(name, patterns):
                why = f"does not match --pattern {opts.pattern}" if explicit else "not a CSV file"
                warnings.append(f"{child}: {why} (skipped)")
            elif name.lower().endswith(".zip"):
                out.extend(_zip_members(child, opts, errors))
            else:
                optional = not explicit and name.lower().endswith((".txt", ".txt.gz"))
                out.append(Input(child, opts, optional=optional))
    if not out:
        patterns, _ = _patterns(cli.over(sidecars.get(root, ReadOptions())))
        errors.append(
            InputFileError(
                root, f"no price files in this folder (looked for {', '.join(patterns)}; use --pattern)"
            )
        )
    return out


# --------------------------------------------------------------------------- reading


def read_input(
    inp: Input,
    result: CsvFileResult,
    warnings: list[str],
    block_size: int | None = None,
) -> Iterator[tuple[str, pa.Table]]:
    """Read one input by its kind (see the module doc)."""
    name = os.path.basename(inp.member or inp.path)
    low = name.lower()
    if inp.member is not None:
        yield from _read_member(inp, result, warnings, block_size)
        return
    if low.endswith((".parquet", ".pq")):
        yield from _read_parquet(inp.path, inp.options, result, name, inp.shown)
    elif low.endswith((".jsonl", ".ndjson", ".json")):
        yield from _read_json(inp.path, inp.options, result, warnings, name, inp.shown)
    else:
        kw: dict[str, Any] = {} if block_size is None else {"block_size": block_size}
        yield from read_csv_file(inp.path, result=result, warnings=warnings, options=inp.options, **kw)


def _read_member(
    inp: Input, result: CsvFileResult, warnings: list[str], block_size: int | None
) -> Iterator[tuple[str, pa.Table]]:
    assert inp.member is not None
    tmp = tempfile.mkdtemp(prefix="tickerlake-zip-")
    try:
        name = os.path.basename(inp.member)
        target = os.path.join(tmp, name)
        try:
            with (
                zipfile.ZipFile(inp.path) as archive,
                archive.open(inp.member) as src,
                open(target, "wb") as dst,
            ):
                shutil.copyfileobj(src, dst, 1 << 20)
        except (zipfile.BadZipFile, OSError, RuntimeError) as e:
            raise InputFileError(inp.shown, f"cannot extract from the archive ({e})") from None
        low = name.lower()
        if low.endswith((".parquet", ".pq")):
            yield from _read_parquet(target, inp.options, result, name, inp.shown)
        elif low.endswith((".jsonl", ".ndjson", ".json")):
            yield from _read_json(target, inp.options, result, warnings, name, inp.shown)
        else:
            kw: dict[str, Any] = {} if block_size is None else {"block_size": block_size}
            yield from read_csv_file(
                target,
                result=result,
                warnings=warnings,
                options=inp.options,
                name=name,
                source_file=inp.shown,
                **kw,
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _text(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A column as text: dates as ISO dates, timestamps as their (local) date, numbers as numbers."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    t = arr.type
    if pa.types.is_timestamp(t):
        local = pc.local_timestamp(arr) if t.tz else arr
        return pc.cast(pc.cast(local, pa.date32()), pa.string())
    if pa.types.is_date(t):
        return pc.cast(pc.cast(arr, pa.date32()), pa.string())
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
    if pa.types.is_large_string(arr.type) or pa.types.is_string_view(arr.type):
        return pc.cast(arr, pa.string())
    if pa.types.is_string(arr.type):
        return arr
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), pa.string())
    return pc.cast(arr, pa.string())


def _layout_of(labels: list[str], name: str, shown: str, options: ReadOptions) -> Layout:
    try:
        return detect_layout([labels], [1], name, shown, options)
    except InputFileError as e:
        # Parquet and JSON have no header line: the problem is the file's column names.
        raise InputFileError(shown, e.problem.replace("header", "column names")) from None


def _read_columnar(
    layout: Layout,
    batches: Callable[[], Iterator[Chunk]],
    options: ReadOptions,
    result: CsvFileResult,
    warnings: list[str],
    name: str,
    shown: str,
    labels: list[str],
) -> Iterator[tuple[str, pa.Table]]:
    result.layout = layout.kind
    result.tickers = sorted({options.symbols.resolve(s.ticker) for s in layout.series if s.ticker})
    result.ignored_columns = list(layout.ignored)
    chunks = batches()
    first = next(chunks, None)
    cols = layout.columns_needed
    if first is not None:
        arrays, lines = first.arrays, first.lines
        n = min(len(lines), 2_000)
        sample = [[None] * layout.n_columns for _ in range(n)]
        for i in cols:
            for r, v in enumerate(arrays[i].slice(0, n).to_pylist()):
                sample[r][i] = v
        date_col = layout.series[0].columns["date"]  # every layout has one

        def all_dates() -> Iterator[tuple[pa.Array, np.ndarray]]:
            for chunk in batches():
                yield chunk.arrays[date_col], chunk.lines

        try:
            plan = decide_plan(layout, sample, list(lines[:n]), options, labels[date_col], ",", all_dates)
        except AmbiguousValues as e:
            raise InputFileError(shown, str(e), row=e.line) from None
        rest: Iterable[Chunk] = itertools.chain([first], chunks)
    else:
        plan, rest = decide_plan(layout, [], [], options, "date"), ()
    yield from read_chunks(rest, layout, plan, options.symbols, result, warnings, shown, Counters())


def _read_parquet(
    path: str, options: ReadOptions, result: CsvFileResult, name: str, shown: str
) -> Iterator[tuple[str, pa.Table]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise InputFileError(shown, f"not a readable Parquet file ({str(e).splitlines()[0]})") from None
    labels = list(pf.schema_arrow.names)
    layout = _layout_of(labels, name, shown, options)
    wanted = [labels[i] for i in layout.columns_needed]

    def batches() -> Iterator[Chunk]:
        done = 0
        for batch in pf.iter_batches(batch_size=_BATCH_ROWS, columns=wanted):
            arrays = {i: _text(batch.column(labels[i])) for i in layout.columns_needed}
            n = batch.num_rows
            yield Chunk(arrays, np.arange(done + 1, done + n + 1, dtype=np.int64))
            done += n

    yield from _read_columnar(layout, batches, options, result, [], name, shown, labels)


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _json_date(value: Any) -> str | None:
    """A date value as text; epoch milliseconds (pandas' ``to_json``) or seconds as an ISO date."""
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not 10_000_000 <= value <= 99_999_999
    ):
        us = epoch_us(float(value)) if math.isfinite(value) else None
        if us is not None:
            return (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=us)).date().isoformat()
    return _json_text(value)


def _json_records(path: str, encoding: str) -> Iterator[tuple[int, Any]]:
    """``(line, object)`` per record; ``(line, None)`` for a line that is not a JSON object."""
    with open(path, encoding=encoding, errors="replace") as f:
        head = f.read(4096).lstrip("\ufeff \t\r\n")
        f.seek(0)
        if head.startswith("["):
            try:
                items = msgspec.json.decode(f.read())
            except (msgspec.DecodeError, RecursionError) as e:
                raise InputFileError(path, f"not valid JSON ({e})") from None
            for i, item in enumerate(items, start=1):
                yield i, item if isinstance(item, dict) else None
            return
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = _DECODE(line)
            except (msgspec.DecodeError, RecursionError):
                obj = None
            yield lineno, obj if isinstance(obj, dict) else None


def _read_json(
    path: str, options: ReadOptions, result: CsvFileResult, warnings: list[str], name: str, shown: str
) -> Iterator[tuple[str, pa.Table]]:
    encoding = options.encoding or "utf-8-sig"
    keys: list[str] = []
    for k, (_, obj) in enumerate(_json_records(path, encoding)):
        if k >= _JSON_SAMPLE:
            break
        for key in obj or {}:
            if key not in keys:
                keys.append(key)
    if not keys:
        raise InputFileError(shown, "no JSON objects in the file")
    layout = _layout_of(keys, name, shown, options)
    cols = layout.columns_needed
    date_col = layout.series[0].columns["date"]
    bad_lines: list[int] = []

    def batches() -> Iterator[Chunk]:
        values: list[list[str | None]] = [[] for _ in cols]
        lines: list[int] = []
        bad: list[bool] = []

        def flush() -> Chunk:
            arrays = {i: pa.array(v, pa.string()) for i, v in zip(cols, values, strict=True)}
            out = Chunk(
                arrays, np.asarray(lines, dtype=np.int64), np.asarray(bad, dtype=bool) if any(bad) else None
            )
            for v in values:
                v.clear()
            lines.clear()
            bad.clear()
            return out

        for lineno, obj in _json_records(path, encoding):
            if obj is None:
                bad_lines.append(lineno)
            for v, i in zip(values, cols, strict=True):
                value = None if obj is None else obj.get(keys[i])
                v.append(_json_date(value) if i == date_col else _json_text(value))
            lines.append(lineno)
            bad.append(obj is None)
            if len(lines) >= _BATCH_ROWS:
                yield flush()
        if lines:
            yield flush()

    yield from _read_columnar(layout, batches, options, result, warnings, name, shown, keys)
    if bad_lines:
        result.malformed_rows = len(set(bad_lines))
        shown_lines = ", ".join(str(n) for n in sorted(set(bad_lines))[:5])
        warnings.append(f"{shown}: {result.malformed_rows} line(s) not a JSON object (lines {shown_lines}…)")


def read_sources(
    inputs: Iterable[Input],
    report: CsvReport,
    on_file: Callable[[str, CsvFileResult | InputFileError], None] | None = None,
    block_size: int | None = None,
) -> Iterator[tuple[str, pa.Table]]:
    """Read inputs into ``(dataset, table)`` batches; an unusable one is recorded and skipped.

    Args:
        inputs: From :func:`expand_inputs`.
        report: Receives per-input results, errors and warnings.
        on_file: Called once per input with its result or error (progress).
        block_size: Bytes per streamed CSV batch (default: the CSV reader's).
    """
    for inp in inputs:
        result = CsvFileResult(path=inp.shown, layout="")
        try:
            yield from read_input(inp, result, report.warnings, block_size)
        except InputFileError as e:
            err = e
        except (UnicodeError, OSError, LookupError, pa.ArrowException, _pycsv.Error) as e:
            err = InputFileError(
                inp.shown, f"unreadable file ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
            )
        else:
            report.files.append(result)
            if on_file is not None:
                on_file(inp.shown, result)
            continue
        if inp.optional and not result.rows:
            report.warnings.append(f"{inp.shown}: not a price file (skipped: {err.problem.split(' (')[0]})")
        else:
            report.errors.append(err)
        if on_file is not None:
            on_file(inp.shown, err)
