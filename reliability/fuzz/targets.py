"""Atheris fuzz targets: one per input surface, each checking the accept-or-reject contract.

Every target takes the fuzzer's bytes, feeds them to one public function and sorts the
outcome into *accepted* or *rejected with a reason*. Anything else raises, which the
fuzzer records as a crash with its input:

* an exception other than the surface's user-facing error (a crash);
* a refusal whose message is not one line;
* a record neither accepted nor rejected (``LostInput``: counts do not reconcile).

Run as ``python -m reliability.fuzz.targets NAME STATS_FILE [libFuzzer flags...]``; the
runner (:mod:`reliability.fuzz.runner`) does that in a subprocess. ``STATS_FILE``
receives the running counts as JSON (a consistent snapshot every fraction of a second and
just before a crash propagates), since libFuzzer ends the process without running Python's
exit handlers.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

__all__ = ["SEEDS", "TARGETS", "LostInput", "Stats", "main"]


class LostInput(AssertionError):
    """An input (or a record in it) that was neither accepted nor rejected with a reason."""


@dataclass
class Stats:
    """Running counts of one fuzz process.

    Attributes:
        tried: Inputs the target was called with.
        accepted: Inputs fully accepted.
        rejected: Inputs refused, or with at least one record rejected, with a reason.
        records: Records (rows, events) seen inside the inputs.
        records_rejected: Of those, rejected with a reason.
    """

    tried: int = 0
    accepted: int = 0
    rejected: int = 0
    records: int = 0
    records_rejected: int = 0


STATS = Stats()


def _one_line(text: str, what: str) -> None:
    if not text.strip() or "\n" in text or "\r" in text:
        raise AssertionError(f"{what} is not one non-empty line: {text[:200]!r}")


# --------------------------------------------------------------------------- CSV

_CSV_NAMES = ("AAPL.csv", "prices.csv", "MSFT.csv.gz", "data.csv")
_TMP: str | None = None


def csv_target(data: bytes) -> bool:
    """Read ``data`` as a CSV file; True when accepted, False when refused with a reason.

    The first byte picks the file name (per-ticker, long, gzip-named, unnamed).
    """
    global _TMP
    from tickerlake.errors import InputFileError
    from tickerlake.sources.csv import CsvFileResult, read_csv_file

    if _TMP is None:
        _TMP = tempfile.mkdtemp(prefix="fuzz-csv-")
    name = _CSV_NAMES[data[0] % len(_CSV_NAMES)] if data else _CSV_NAMES[0]
    path = os.path.join(_TMP, name)
    with open(path, "wb") as f:
        f.write(data[1:])
    result = CsvFileResult(path=path, layout="")
    rows = 0
    try:
        for _, table in read_csv_file(path, block_size=4096, result=result, warnings=[]):
            rows += table.num_rows
            lines = table.column("source_row").to_pylist()
            # Each CR or LF byte ends at most one line, whatever the encoding.
            last = data.count(b"\r") + data.count(b"\n") + 1
            if any(not (1 <= int(n) <= last) for n in lines):
                raise LostInput(f"row attributed to a line outside the file: {lines[:5]}")
    except InputFileError as e:
        _one_line(str(e), "InputFileError")
        return False
    STATS.records += rows + result.empty_rows
    STATS.records_rejected += result.malformed_rows
    if rows == 0 and result.malformed_rows == 0:
        raise LostInput("accepted a file that produced no rows and no refusal")
    return True


# --------------------------------------------------------------------------- stream events


def _values(data: bytes) -> list[bytes | None]:
    """Record values from fuzz bytes: split at newlines; a lone 0x00 stands for a null value."""
    return [None if part == b"\x00" else part for part in data.split(b"\n")]


def _decoded(values: list[bytes | None], got: object) -> bool:
    from tickerlake.stream.schema import REASON_CODES

    accepted = got.accepted.tolist()  # type: ignore[attr-defined]
    rejected = [i for i, _ in got.rejected]  # type: ignore[attr-defined]
    if sorted(accepted + rejected) != list(range(len(values))):
        raise LostInput(f"positions do not reconcile: accepted {accepted}, rejected {rejected}")
    for _, reason in got.rejected:  # type: ignore[attr-defined]
        _one_line(reason, "reason")
        if reason.split(":", 1)[0] not in REASON_CODES:
            raise AssertionError(f"unknown reason code: {reason!r}")
    for name, col in got.columns.items():  # type: ignore[attr-defined]
        if len(col) != len(accepted):
            raise AssertionError(f"column {name} has {len(col)} values for {len(accepted)} accepted")
    STATS.records += len(values)
    STATS.records_rejected += len(rejected)
    return not rejected


def _rules_and_marks(data: bytes) -> tuple[object, dict[str, int], bytes]:
    from tickerlake.stream.schema import Rules

    flags = data[0] if data else 0
    known = frozenset({"AAPL", "MSFT", "BRK.B"}) if flags & 1 else None
    rules = Rules(
        known_tickers=known, max_lateness_us=(flags >> 1 & 3) * 1_000_000, max_lateness_days=flags >> 3 & 3
    )
    marks = {"AAPL": 1_577_975_400_000_000} if flags & 0x40 else {}
    return rules, marks, data[1:]


def ticks_target(data: bytes) -> bool:
    """Decode ``data`` as tick record values (one per line); True when all are accepted."""
    from tickerlake.stream.schema import decode_ticks

    rules, marks, body = _rules_and_marks(data)
    values = _values(body)
    return _decoded(values, decode_ticks(values, rules, marks))  # type: ignore[arg-type]


def bars_target(data: bytes) -> bool:
    """Decode ``data`` as bar record values (one per line); True when all are accepted."""
    from tickerlake.stream.schema import decode_bars

    rules, marks, body = _rules_and_marks(data)
    marks = {k: v // 86_400_000_000 for k, v in marks.items()}
    values = _values(body)
    return _decoded(values, decode_bars(values, rules, marks))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- schema inference

_LATTICE = {"BOOLEAN", "BIGINT", "DOUBLE", "DATE", "TIMESTAMP", "TIMESTAMPTZ", "VARCHAR"}


def inference_target(data: bytes) -> bool:
    """Build file schemas from ``data`` and merge them; True when the merge checks hold.

    Lines are ``name<TAB>type<TAB>nullflag``; a blank line starts a new file; the last line
    is also read as a partition path.
    """
    from tickerlake.lake.inference import (
        FileSchema,
        classify_format,
        merge_schemas,
        normalize_type,
        parse_partitions,
    )

    text = data.decode("utf-8", errors="replace")
    files: list[FileSchema] = []
    cols: list[tuple[str, str, bool]] = []
    lines = text.split("\n")
    for line in lines:
        if not line.strip():
            files.append(FileSchema(f"f{len(files)}", tuple(cols)))
            cols = []
            continue
        name, _, rest = line.partition("\t")
        typ, _, flag = rest.partition("\t")
        t = normalize_type(typ)
        if t not in _LATTICE:
            raise AssertionError(f"normalize_type({typ!r}) = {t!r} is outside the lattice")
        cols.append((name, t, flag.startswith("1")))
    files.append(FileSchema(f"f{len(files)}", tuple(cols)))
    merged = merge_schemas([], files)
    folded = [
        c.name.translate(str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"))
        for c in merged
    ]
    wanted = {
        n.translate(str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"))
        for fs in files
        for n, _, _ in fs.columns
    }
    if len(folded) != len(set(folded)) or set(folded) != wanted:
        raise LostInput(f"merged columns {folded} are not the file columns {sorted(wanted)}")
    reversed_merge = {c.name.lower(): (c.type, c.nullable) for c in merge_schemas([], files[::-1])}
    if {c.name.lower(): (c.type, c.nullable) for c in merged} != reversed_merge:
        raise AssertionError("merged schema depends on file order")
    parse_partitions(lines[-1])
    classify_format(lines[-1])
    STATS.records += sum(len(fs.columns) for fs in files)
    return True


TARGETS: dict[str, Callable[[bytes], bool]] = {
    "csv": csv_target,
    "ticks": ticks_target,
    "bars": bars_target,
    "inference": inference_target,
}

#: Modules whose code is instrumented for coverage feedback, per target.
INSTRUMENT: dict[str, list[str]] = {
    "csv": ["tickerlake.sources.csv"],
    "ticks": ["tickerlake.stream.schema"],
    "bars": ["tickerlake.stream.schema"],
    "inference": ["tickerlake.lake.inference"],
}

_TICK = b'{"ticker":"AAPL","ts":"2020-01-02T14:30:00.000000Z","price":74.06,"size":100,"seq":1}'
_BAR = b'{"ticker":"AAPL","date":"2020-01-02","open":74.06,"high":75.15,"low":73.8,"close":75.09,"adj_close":73.0,"volume":135480400}'
#: Starting inputs: valid ones, so that mutations explore near the accepted shapes too.
SEEDS: dict[str, list[bytes]] = {
    "csv": [
        b"\x00Date,Open,High,Low,Close,Adj Close,Volume\n2020-01-02,74.06,75.15,73.8,75.09,73.0,135480400\n",
        b"\x01Ticker,Date,Close\r\nAAPL,2020-01-02,75.09\r\nMSFT,2020-01-02,160.6\r\n",
        b"\x01Price,Close,Close\nTicker,AAPL,MSFT\nDate,,\n2020-01-02,75.09,160.6\n",
        b"\x00Date,Dividends,Stock Splits\n2020-08-31,0,4:1\n",
        b'\x00Date;Close\r2020-01-02;"75,09"\r',
        b"\x00" + "Date,Close\n2020-01-02,75.09\n".encode("utf-16"),
    ],
    "ticks": [b"\x00" + _TICK + b"\n" + _TICK.replace(b"14:30:00", b"14:29:00"), b"\x01" + _TICK + b"\n\x00"],
    "bars": [b"\x00" + _BAR + b"\n" + _BAR.replace(b"01-02", b"01-01"), b"\x41" + _BAR],
    "inference": [b"Date\tDATE\t0\nClose\tDOUBLE\t1\n\nclose\tBIGINT\t0\nx\tVARCHAR\t0\nyear=2020/part.csv"],
}


def _flush(path: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(asdict(STATS), f)
    os.replace(tmp, path)


def main(argv: list[str]) -> None:
    """Fuzz one target: ``NAME STATS_FILE [libFuzzer flags and corpus folders...]``."""
    import atheris

    name, stats_path, fuzzer_args = argv[1], argv[2], argv[3:]
    with atheris.instrument_imports(include=INSTRUMENT[name]):
        for module in INSTRUMENT[name]:
            __import__(module)
    target = TARGETS[name]
    last = [time.monotonic()]

    def one_input(data: bytes) -> None:
        STATS.tried += 1
        try:
            accepted = target(data)
        except BaseException:
            # Counted as neither: the runner turns the saved input into a crash kind.
            _flush(stats_path)
            raise
        if accepted:
            STATS.accepted += 1
        else:
            STATS.rejected += 1
        now = time.monotonic()
        if now - last[0] > 0.2:
            last[0] = now
            _flush(stats_path)

    _flush(stats_path)
    atheris.Setup([argv[0], *fuzzer_args], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
