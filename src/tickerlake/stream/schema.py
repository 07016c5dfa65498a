"""Stream events on the wire (JSON) and the rules that accept or reject them. Pure: no I/O.

Two event types travel through Kafka, one JSON object per record, keyed by ticker:

* :class:`TickEvent` — one trade: ``{"ticker": "AAPL", "ts": "2020-01-02T14:30:00.000000Z",
  "price": 74.06, "size": 100, "seq": 1}``; ``ts`` is RFC 3339 with a UTC offset,
  microsecond precision;
* :class:`BarEvent` — one daily bar: ``{"ticker": "AAPL", "date": "2020-01-02", "open": ...,
  "high": ..., "low": ..., "close": ..., "adj_close": ..., "volume": ...}``.

Producers that already exist send other shapes; those are accepted too when every field
can be found and read: keys under any spelling ``ingest`` accepts for a CSV column
(``"stock symbol"``, ``"Adj Close"``, ``"Date"``; ``symbol``, ``time``/``timestamp`` for
ticks) or named by the topic's mapping (:attr:`Rules.fields`), prices and volumes as
numbers or numeric strings (``"148.71"``, ``"$1,234.50"``), tick times as RFC 3339 or
epoch seconds, milliseconds or microseconds (told apart by magnitude), bar dates as ISO
dates (a time part is dropped), ``YYYYMMDD`` or epoch milliseconds (pandas' ``to_json``).
A tick without ``seq`` gets 0. The canonical shape is decoded first, at msgspec speed; the
row-shaped reading is the fallback for records it rejects.

:func:`decode_ticks` and :func:`decode_bars` turn a batch of raw record values into
accepted columns plus ``(position, reason)`` rejections. A reason is one line,
``"<code>: <detail>"``, with the codes in :data:`REASON_CODES`. Per-record decoding is
msgspec (typed, in C); the checks that need state or sets (unknown ticker, out of order,
timestamp parsing) run vectorised over the batch.

Out of order: per ``(partition, ticker)`` the sink keeps a watermark, the latest event
time accepted so far; an event more than the tolerance before it is rejected. A rejected
event is by definition below the watermark, so the watermark before record ``i`` is simply
the running maximum of the timestamps before it, which is what makes the check vectorisable.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# The lake's one ticker rule (BRK.B, BF-B, RDS/A, ^GSPC...), so that what the stream
# accepts the lake and the web accept too.
from tickerlake.lake.contract import TICKER_MAX_LENGTH, TICKER_PATTERN

# The label spellings and number formats of ``ingest``: an event keyed like a CSV header
# is read like that CSV.
from tickerlake.sources.labels import BAR_FIELDS, field_of, normalise_label
from tickerlake.sources.values import epoch_us, number_from_text

__all__ = [
    "INT64_MAX",
    "REASON_CODES",
    "TICKER_PATTERN",
    "BarEvent",
    "Decoded",
    "Rules",
    "TickEvent",
    "check_ticker",
    "decode_bars",
    "decode_ticks",
    "encode_bars",
    "encode_ticks",
    "format_ts",
    "parse_fields",
    "parse_ts",
]

INT64_MAX = 2**63 - 1


#: Reason codes of rejected events, the part before the colon.
REASON_CODES: tuple[str, ...] = (
    "invalid_json",
    "invalid_event",
    "missing_field",
    "invalid_ticker",
    "unknown_ticker",
    "invalid_timestamp",
    "invalid_date",
    "invalid_price",
    "invalid_size",
    "invalid_volume",
    "invalid_seq",
    "out_of_order",
)

_Price = Annotated[float, msgspec.Meta(gt=0)]
_Count = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
_Ticker = Annotated[str, msgspec.Meta(min_length=1, max_length=TICKER_MAX_LENGTH)]


class TickEvent(msgspec.Struct, frozen=True, gc=False):
    """One trade.

    Attributes:
        ticker: Symbol, upper case.
        ts: Trade time, RFC 3339 with a UTC offset (``...Z`` or ``...+01:00``), at most
            microsecond precision.
        price: Trade price, finite and > 0.
        size: Shares traded, >= 0 (0 only for bars whose volume is smaller than their tick count).
        seq: Per-ticker sequence number, >= 0.
    """

    ticker: _Ticker
    ts: str
    price: _Price
    size: _Count
    seq: _Count


class BarEvent(msgspec.Struct, frozen=True, gc=False):
    """One daily bar, as in ``market.daily_bars``.

    Attributes:
        ticker: Symbol, upper case.
        date: Trading day.
        open: Opening price (optional).
        high: High (optional).
        low: Low (optional).
        close: Close (split-adjusted), required.
        adj_close: Close adjusted for splits and dividends (optional).
        volume: Shares traded (optional).
    """

    ticker: _Ticker
    date: dt.date
    close: _Price
    open: _Price | None = None
    high: _Price | None = None
    low: _Price | None = None
    adj_close: _Price | None = None
    volume: _Count | None = None


@dataclass(frozen=True)
class Rules:
    """What the sink accepts.

    Attributes:
        known_tickers: Tickers that exist (reference data); None accepts any ticker that
            looks like one (:data:`TICKER_PATTERN`).
        max_lateness_us: Ticks more than this before their (partition, ticker) watermark
            are out of order.
        max_lateness_days: Bars more than this many days before their watermark are out of
            order (0: any earlier date; the same date again is allowed, as a correction).
        fields: Event field → the key a producer uses for it (``{"close": "Schluss"}``),
            over the built-in label synonyms (the topic's mapping, ``stream sink --fields``).
    """

    known_tickers: frozenset[str] | None = None
    max_lateness_us: int = 1_000_000
    max_lateness_days: int = 0
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Decoded:
    """The outcome of decoding one batch of record values.

    Attributes:
        accepted: Input positions of the accepted records, ascending.
        columns: Accepted rows' columns by name, in input order.
        rejected: ``(input position, reason)`` of every rejected record, ascending.
        watermarks: Updated watermarks (ticker -> µs since epoch for ticks, days since
            epoch for bars) after this batch.
    """

    accepted: np.ndarray
    columns: dict[str, pa.Array]
    rejected: list[tuple[int, str]]
    watermarks: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.accepted)


# --------------------------------------------------------------------------- timestamps


def format_ts(ts_us: np.ndarray) -> list[str]:
    """Microseconds since the epoch as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` strings."""
    text = np.datetime_as_string(np.asarray(ts_us, dtype=np.int64).astype("datetime64[us]"), unit="us")
    return [s + "Z" for s in text.tolist()]


_TS_RE = re.compile(r"^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d{1,6})?([Zz]|[+-]\d\d:?\d\d)$")
_UTC_US = pa.timestamp("us", tz="UTC")


def parse_ts(texts: Sequence[str] | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Parse RFC 3339 timestamps with a UTC offset, at most microsecond precision.

    Args:
        texts: Timestamp strings.

    Returns:
        ``(µs since epoch as int64, valid mask)``; invalid entries hold 0.
    """
    arr = texts if isinstance(texts, pa.Array) else pa.array(texts, pa.string())
    every = arr
    n = len(arr)
    values, valid = _parse_canonical_ts(arr)
    if valid.all():
        return values, valid
    rest = np.flatnonzero(~valid)
    if len(rest) < n:
        arr = arr.take(pa.array(rest))
    # The regex keeps Arrow's lenient parser from accepting what RFC 3339 does not (dates alone).
    shape_ok = pc.match_substring_regex(arr, _TS_RE.pattern).to_numpy(zero_copy_only=False)
    idx = rest[shape_ok]
    if not len(idx):
        return values, valid
    subset = arr if len(idx) == len(arr) else arr.take(pa.array(np.flatnonzero(shape_ok)))
    try:
        parsed = subset.cast(_UTC_US).cast(pa.int64()).to_numpy()
        values[idx] = parsed
        valid[idx] = True
    except pa.ArrowInvalid:
        # Rare: a well-shaped but impossible time (month 13, 25:00); find it one by one.
        for i in idx.tolist():
            try:
                values[i] = every[i : i + 1].cast(_UTC_US).cast(pa.int64())[0].as_py()
                valid[i] = True
            except pa.ArrowInvalid:
                pass
    return values, valid


# The shape format_ts writes, "YYYY-MM-DDTHH:MM:SS.ffffffZ": digits and separators by position.
_CANONICAL_LEN = 27
_CANONICAL_DIGITS = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, *range(20, 26)])
_CANONICAL_SEPS = {4: b"-", 7: b"-", 10: b"T", 13: b":", 16: b":", 19: b".", 26: b"Z"}


def _parse_canonical_ts(arr: pa.StringArray) -> tuple[np.ndarray, np.ndarray]:
    """The fast path of :func:`parse_ts`: timestamps in ``format_ts``'s own shape, read by position.

    Returns:
        ``(µs since epoch, valid mask)``; entries of another shape (or an impossible date or
        time) are left invalid for the general parser.
    """
    n = len(arr)
    values = np.zeros(n, dtype=np.int64)
    valid = np.zeros(n, dtype=bool)
    if not n or arr.null_count:
        return values, valid
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + n + 1]
    if not (np.diff(offsets) == _CANONICAL_LEN).all():
        return values, valid
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)
    chars = data[offsets[0] : offsets[0] + n * _CANONICAL_LEN].reshape(n, _CANONICAL_LEN)
    digits = chars[:, _CANONICAL_DIGITS].astype(np.int64) - ord("0")
    ok = ((digits >= 0) & (digits <= 9)).all(axis=1)
    for pos, sep in _CANONICAL_SEPS.items():
        ok &= chars[:, pos] == sep[0]

    def number(first: int, width: int) -> np.ndarray:
        out = np.zeros(n, dtype=np.int64)
        for k in range(first, first + width):
            out = out * 10 + digits[:, k]
        return out

    year, month, day = number(0, 4), number(4, 2), number(6, 2)
    hour, minute, second, micros = number(8, 2), number(10, 2), number(12, 2), number(14, 6)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(month, 0, 12)]
    month_days = month_days + (leap & (month == 2))
    ok &= (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59)
    # Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
    y = year - (month <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    us = ((days * 24 + hour) * 60 + minute) * 60 + second
    values[ok] = (us * 1_000_000 + micros)[ok]
    valid[ok] = True
    return values, valid


def _iso_us(us: int) -> str:
    return format_ts(np.array([us], dtype=np.int64))[0]


# --------------------------------------------------------------------------- encoding

_ENCODER = msgspec.json.Encoder()


def encode_ticks(
    tickers: Sequence[str], ts_us: np.ndarray, price: np.ndarray, size: np.ndarray, seq: np.ndarray
) -> list[bytes]:
    """JSON values of tick events (floats written in their shortest round-trip form)."""
    encode = _ENCODER.encode
    return [
        encode(TickEvent(t, s, p, z, q))
        for t, s, p, z, q in zip(
            tickers, format_ts(ts_us), price.tolist(), size.tolist(), seq.tolist(), strict=True
        )
    ]


def encode_bars(bars: pa.Table) -> list[bytes]:
    """JSON values of bar events from a table with ``market.daily_bars`` columns."""
    cols = {name: bars.column(name).to_pylist() for name in bars.column_names}
    n = bars.num_rows

    def col(name: str) -> list[Any]:
        return cols.get(name) or [None] * n

    out = []
    for t, d, o, h, lo, c, a, v in zip(
        col("ticker"),
        col("date"),
        col("open"),
        col("high"),
        col("low"),
        col("close"),
        col("adj_close"),
        col("volume"),
        strict=True,
    ):
        obj = {
            "ticker": t,
            "date": d,
            "open": o,
            "high": h,
            "low": lo,
            "close": c,
            "adj_close": a,
            "volume": v,
        }
        out.append(_ENCODER.encode(obj))
    return out


# --------------------------------------------------------------------------- decoding

_TICK_DECODER = msgspec.json.Decoder(TickEvent)
_BAR_DECODER = msgspec.json.Decoder(BarEvent)
_FIELD_CODES = {
    "ticker": "invalid_ticker",
    "ts": "invalid_timestamp",
    "date": "invalid_date",
    "price": "invalid_price",
    "open": "invalid_price",
    "high": "invalid_price",
    "low": "invalid_price",
    "close": "invalid_price",
    "adj_close": "invalid_price",
    "size": "invalid_size",
    "volume": "invalid_volume",
    "seq": "invalid_seq",
}
_MISSING_RE = re.compile(r"missing required field `([^`]+)`")
_PATH_RE = re.compile(r"- at `\$\.([A-Za-z_]+)")
_NONFINITE_RE = re.compile(rb"\b(NaN|-?Infinity)\b")


def _clip(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _reason_from_validation(message: str, obj: Any = None) -> str:
    missing = _MISSING_RE.search(message)
    if missing:
        return f"missing_field: {missing.group(1)}"
    path = _PATH_RE.search(message)
    if path:
        name = path.group(1)
        code = _FIELD_CODES.get(name, "invalid_event")
        if isinstance(obj, dict) and name in obj:
            value = obj[name]
            if isinstance(value, float) and not math.isfinite(value):
                return f"{code}: {name} is {value}"
            expected = message.split(" - at ", 1)[0]
            expected = expected[:1].lower() + expected[1:]
            return f"{code}: {name} is {_clip(json.dumps(value), 40)} ({expected})"
        return f"{code}: {_clip(message)}"
    return f"invalid_event: {_clip(message)}"


_TOO_DEEP = "invalid_json: nested too deeply"
#: What msgspec raises for a bad value: DecodeError, but also UnicodeDecodeError for
#: strings that are not UTF-8, RecursionError for deep nesting, TypeError for None.
_DECODE_ERRORS = (msgspec.DecodeError, UnicodeDecodeError, RecursionError, TypeError)


def _decode_one(decoder: msgspec.json.Decoder[Any], kind: type, value: bytes | None) -> Any:
    """Decode one value, or return the reason it is rejected (a str)."""
    if value is None or not value.strip():
        return "invalid_json: empty record value"
    try:
        return decoder.decode(value)
    except RecursionError:
        # msgspec raises this (not DecodeError) for arrays or objects nested thousands deep.
        return _TOO_DEEP
    except UnicodeDecodeError as e:
        # msgspec raises this (not DecodeError) for a string that is not UTF-8.
        return f"invalid_json: not UTF-8 text ({_clip(str(e), 80)})"
    except msgspec.ValidationError as e:
        try:
            obj = msgspec.json.decode(value)
        except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
            # The typed decoder stops at the first wrong field; the untyped one walks it all.
            obj = None
        return _reason_from_validation(str(e), obj)
    except msgspec.DecodeError as e:
        # Python's json writes NaN/Infinity by default: say which field, not just "bad JSON".
        if _NONFINITE_RE.search(value):
            try:
                obj = json.loads(value)
            except (ValueError, RecursionError):
                obj = None
            if isinstance(obj, dict):
                for name, v in obj.items():
                    if isinstance(v, float) and not math.isfinite(v):
                        return f"{_FIELD_CODES.get(name, 'invalid_event')}: {name} is {v}"
        return f"invalid_json: {_clip(str(e))}"


_TICK_FIELDS = ("ticker", "ts", "price", "size", "seq")
_DATE_RE = re.compile(r"^\s*(\d{4})-?(\d{2})-?(\d{2})(?:[ T].*)?\s*$")


def _keyed(obj: dict[str, Any], kind: str, fields: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Canonical field → value of a row-shaped event, plus the fields two keys claim."""
    out: dict[str, Any] = {}
    ranks: dict[str, int] = {}
    clash: list[str] = []
    # The topic's own mapping wins over every synonym (rank -1), by exact or normalised key.
    named = {v: k for k, v in fields.items()} | {normalise_label(v): k for k, v in fields.items()}
    for key, value in obj.items():
        norm = normalise_label(key)
        hit = (
            (named[key], -1) if key in named else (named[norm], -1) if norm in named else field_of(key, kind)
        )
        if hit is None:
            continue
        fld, rank = hit
        if fld in ranks and ranks[fld] == rank:
            clash.append(fld)
        if fld not in ranks or rank < ranks[fld]:
            out[fld], ranks[fld] = value, rank
    return out, clash


def _number(value: Any) -> Any:
    """A number from a number or a numeric string; anything else unchanged (msgspec says why)."""
    if isinstance(value, str):
        got = number_from_text(value)
        return value if got is None else got
    return value


def _count(value: Any) -> Any:
    value = _number(value)
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    return value


def _bar_date(value: Any) -> Any:
    if isinstance(value, int) and 10_000_000 <= value <= 99_999_999:
        value = str(value)  # 20220815: YYYYMMDD as a number, not seconds of 1970
    if isinstance(value, str):
        m = _DATE_RE.match(value)
        return f"{m.group(1)}-{m.group(2)}-{m.group(3)}" if m else value
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        us = epoch_us(float(value))
        if us is not None:
            try:
                return (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=us)).date().isoformat()
            except OverflowError:
                pass  # before year 1 or after 9999: left as it is, so it is rejected with a reason
    return value


def _tick_ts(value: Any) -> Any:
    number = _number(value)
    if isinstance(number, int | float) and not isinstance(number, bool) and math.isfinite(number):
        us = epoch_us(float(number))
        if us is not None:
            return _iso_us(us)
    return value


def _from_row(value: bytes | None, kind: str, fields: Mapping[str, str]) -> Any:
    """The event a row-shaped record stands for, or the reason it cannot be read (a str)."""
    try:
        obj = msgspec.json.decode(value or b"")
    except _DECODE_ERRORS:
        return None  # the typed decoder's reason stands
    if not isinstance(obj, dict):
        return None
    got, clash = _keyed(obj, kind, fields)
    if clash:
        return f"invalid_event: two keys mean {clash[0]} (name one with the topic's field mapping)"
    target: type
    if kind == "bar":
        event = {f: got[f] for f in BAR_FIELDS if f in got}
        for f in ("open", "high", "low", "close", "adj_close"):
            if f in event:
                event[f] = _number(event[f])
        if "volume" in event:
            event["volume"] = _count(event["volume"])
        if "date" in event:
            event["date"] = _bar_date(event["date"])
        target = BarEvent
    else:
        event = {f: got[f] for f in _TICK_FIELDS if f in got}
        event.setdefault("seq", 0)
        if "price" in event:
            event["price"] = _number(event["price"])
        for f in ("size", "seq"):
            event[f] = _count(event[f]) if f in event else event.get(f)
        if "ts" in event:
            event["ts"] = _tick_ts(event["ts"])
        target = TickEvent
    if isinstance(event.get("ticker"), str):
        event["ticker"] = event["ticker"].strip().upper()
    try:
        return msgspec.convert(event, target)
    except msgspec.ValidationError as e:
        reason = _reason_from_validation(str(e), event)
        missing = _MISSING_RE.search(str(e))
        if missing:
            spellings = ", ".join(sorted(obj)[:8])
            reason += f" (keys: {_clip(spellings, 80)}; name it with the topic's field mapping)"
        return reason


def _decode_any(
    decoder: msgspec.json.Decoder[Any], kind: type, value: bytes | None, fields: Mapping[str, str]
) -> Any:
    """:func:`_decode_one`, then the row-shaped reading for what the canonical shape rejects."""
    got = _decode_one(decoder, kind, value)
    if not isinstance(got, str) or got.startswith("invalid_json"):
        return got
    row = _from_row(value, "bar" if kind is BarEvent else "tick", fields)
    if row is None:
        return got
    if isinstance(row, str) and not got.startswith("missing_field"):
        return got  # canonical keys, a bad value: the canonical reason says it best
    return row


def parse_fields(spec: str, mode: str) -> dict[str, str]:
    """A topic's field mapping from ``'date=d,close=px_last'`` (``stream sink --fields``).

    Args:
        spec: ``field=key`` pairs, comma-separated.
        mode: ``bars`` or ``ticks``: which fields exist.

    Raises:
        ValueError: Not pairs, or a field the mode's events do not have.
    """
    known = BAR_FIELDS if mode == "bars" else _TICK_FIELDS
    out: dict[str, str] = {}
    for part in (p for p in spec.split(",") if p.strip()):
        name, sep, key = part.partition("=")
        name = name.strip().lower()
        if not sep or not key.strip():
            raise ValueError(f"{part.strip()!r} is not field=key")
        if name not in known:
            raise ValueError(f"{name!r} is not a field of {mode} events (fields: {', '.join(known)})")
        out[name] = key.strip()
    return out


def check_ticker(tickers: pa.Array, known: frozenset[str] | None) -> list[str | None]:
    """Reason per ticker (None when fine): unknown to the reference set, or not a symbol."""
    shape = pc.match_substring_regex(tickers, TICKER_PATTERN).to_numpy(zero_copy_only=False)
    if known is not None:
        member = pc.is_in(tickers, value_set=pa.array(sorted(known), pa.string())).to_numpy(
            zero_copy_only=False
        )
    else:
        member = shape
    if member.all():
        return [None] * len(tickers)
    out: list[str | None] = [None] * len(tickers)
    values = tickers.to_pylist()
    for i in np.flatnonzero(~member).tolist():
        if known is not None and shape[i]:
            out[i] = f"unknown_ticker: {values[i]!r} is not in the reference data"
        else:
            out[i] = f"invalid_ticker: {_clip(repr(values[i]), 40)} is not a ticker symbol"
    return out


def _order_check(
    tickers: pa.Array, times: np.ndarray, watermarks: Mapping[str, int], tolerance: int
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Which records are out of order.

    Returns:
        ``(late mask, watermark each record was compared with, updated watermarks)``,
        aligned with ``times``.
    """
    n = len(times)
    floor = np.iinfo(np.int64).min
    late = np.zeros(n, dtype=bool)
    marks = np.full(n, floor, dtype=np.int64)
    updated = dict(watermarks)
    if not n:
        return late, marks, updated
    encoded = tickers.dictionary_encode()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    names = encoded.dictionary.to_pylist()
    # Group positions by ticker, keeping arrival order inside each group.
    order = np.argsort(codes, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(codes, minlength=len(names)))]
    for k, name in enumerate(names):
        idx = order[bounds[k] : bounds[k + 1]]
        t = times[idx]
        prev = updated.get(name)
        running = np.maximum.accumulate(t)
        before = np.empty_like(t)
        before[0] = floor if prev is None else prev
        before[1:] = running[:-1] if prev is None else np.maximum(running[:-1], prev)
        marks[idx] = before
        # Compared in float: the floor sentinel minus a tolerance must not wrap around.
        late[idx] = (before != floor) & (t.astype(np.float64) < before.astype(np.float64) - tolerance)
        top = int(running[-1])
        updated[name] = top if prev is None else max(prev, top)
    return late, marks, updated


def _finish(
    n: int,
    good: list[int],
    reasons: dict[int, str],
) -> tuple[np.ndarray, list[tuple[int, str]]]:
    if not reasons:
        return np.arange(n, dtype=np.int64), []
    accepted = np.array([i for i in good if i not in reasons], dtype=np.int64)
    rejected = sorted(reasons.items())
    assert len(accepted) + len(rejected) == n
    return accepted, rejected


_TICK_COLUMNS = pa.schema(
    [
        ("ticker", pa.string()),
        ("ts", pa.string()),
        ("price", pa.float64()),
        ("size", pa.int64()),
        ("seq", pa.int64()),
    ]
)


def _ticks_in_bulk(
    values: Sequence[bytes | None],
) -> tuple[pa.Array, pa.Array, np.ndarray, np.ndarray, np.ndarray] | None:
    """The fast path of :func:`decode_ticks`: the whole batch read as JSON lines by Arrow.

    Only when every value is one canonical tick on one line that :class:`TickEvent` would
    accept as well (no field missing or null, numbers in range); otherwise None, and the
    batch is decoded record by record (with each rejection's reason).

    Returns:
        ``(ticker, ts text, price, size, seq)`` columns.
    """
    import pyarrow.json as pj

    n = len(values)
    try:
        data = b"\n".join(values)  # type: ignore[arg-type]
    except TypeError:
        return None  # a record without a value
    # One value per line, or a line's fields could come from two records. Every line must
    # also be an object: Arrow's JSON reader dereferences a null pointer on a top-level
    # `null` before the first object (a native crash, apache/arrow#47409), and a producer
    # can send exactly that.
    if (
        not n
        or data.count(b"\n") != n - 1
        or b"\r" in data
        or data[:1] != b"{"
        or data[-1:] != b"}"
        or data.count(b"}\n{") != n - 1
    ):
        return None
    try:
        table = pj.read_json(
            pa.py_buffer(data),
            parse_options=pj.ParseOptions(explicit_schema=_TICK_COLUMNS, unexpected_field_behavior="ignore"),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None
    if table.num_rows != n or any(col.null_count for col in table.columns):
        return None
    table = table.combine_chunks()
    ticker, ts = table.column("ticker").chunk(0), table.column("ts").chunk(0)
    try:
        # Arrow's JSON reader lets bytes that are not UTF-8 into strings; the record path
        # rejects such a record with its reason.
        ticker.validate(full=True)
        ts.validate(full=True)
    except pa.ArrowInvalid:
        return None
    price = table.column("price").to_numpy()
    size = table.column("size").to_numpy()
    seq = table.column("seq").to_numpy()
    length = pc.utf8_length(ticker).to_numpy()
    fine = (
        np.isfinite(price).all()
        and (price > 0).all()
        and (size >= 0).all()
        and (seq >= 0).all()
        and (length >= 1).all()
        and (length <= TICKER_MAX_LENGTH).all()
    )
    return (ticker, ts, price, size, seq) if fine else None


def _tick_events(values: Sequence[bytes | None], rules: Rules, reasons: dict[int, str]) -> list[TickEvent]:
    """Each value decoded on its own (canonical shape, then row-shaped); rejections into ``reasons``."""
    decode = _TICK_DECODER.decode
    try:
        # The common case: every record decodes.
        return [decode(v) for v in values]  # type: ignore[arg-type]
    except _DECODE_ERRORS:
        pass
    events = []
    for i, value in enumerate(values):
        try:
            events.append(decode(value))  # type: ignore[arg-type]
        except _DECODE_ERRORS:
            got = _decode_any(_TICK_DECODER, TickEvent, value, rules.fields)
            if isinstance(got, str):
                reasons[i] = got
            else:
                events.append(got)
    return events


def decode_ticks(
    values: Sequence[bytes | None], rules: Rules, watermarks: Mapping[str, int] | None = None
) -> Decoded:
    """Decode and validate tick event values.

    Args:
        values: Record values in offset order (all from one partition, so that the order
            check compares like with like).
        rules: What to accept.
        watermarks: Latest accepted event time per ticker (µs) before this batch.

    Returns:
        Accepted columns ``ticker``, ``ts`` (timestamp[us, UTC]), ``price``, ``size``,
        ``seq``; rejections with reasons; updated watermarks.
    """
    reasons: dict[int, str] = {}
    bulk = _ticks_in_bulk(values)
    if bulk is not None:
        ticker_arr, ts_arr, price, size, seq = bulk
        good = list(range(len(values)))
    else:
        events = _tick_events(values, rules, reasons)
        good = [i for i in range(len(values)) if i not in reasons]
        ticker_arr = pa.array([e.ticker for e in events], pa.string())
        ts_arr = pa.array([e.ts for e in events], pa.string())
        price = np.array([e.price for e in events], dtype=np.float64)
        size = np.array([e.size for e in events], dtype=np.int64)
        seq = np.array([e.seq for e in events], dtype=np.int64)
    ts, ts_ok = parse_ts(ts_arr)
    bad = np.zeros(len(ticker_arr), dtype=bool)
    for j, reason in enumerate(check_ticker(ticker_arr, rules.known_tickers)):
        if reason is not None:
            reasons[good[j]] = reason
            bad[j] = True
    for j in np.flatnonzero(~ts_ok & ~bad).tolist():
        reasons[good[j]] = (
            f"invalid_timestamp: {_clip(repr(ts_arr[j].as_py()), 60)} is not RFC 3339 with a UTC offset"
        )
        bad[j] = True
    ok = ~bad
    ok_idx = np.flatnonzero(ok)
    late, compared, marks = _order_check(
        ticker_arr.take(pa.array(ok_idx)), ts[ok_idx], watermarks or {}, rules.max_lateness_us
    )
    for j, mark in zip(ok_idx[late].tolist(), compared[late].tolist(), strict=True):
        lag = (mark - int(ts[j])) / 1e6
        reasons[good[j]] = (
            f"out_of_order: {ticker_arr[j].as_py()} at {_iso_us(int(ts[j]))} is {lag:.3f} s before its latest "
            f"event (tolerance {rules.max_lateness_us / 1e6:g} s)"
        )
        ok[j] = False
    accepted, rejected = _finish(len(values), good, reasons)
    keep = np.flatnonzero(ok)
    columns = {
        "ticker": ticker_arr.take(pa.array(keep)) if len(keep) < len(ticker_arr) else ticker_arr,
        "ts": pa.array(ts[keep], pa.int64()).cast(_UTC_US),
        "price": pa.array(price[keep], pa.float64()),
        "size": pa.array(size[keep], pa.int64()),
        "seq": pa.array(seq[keep], pa.int64()),
    }
    return Decoded(accepted, columns, rejected, marks)


_EPOCH = dt.date(1970, 1, 1)


def decode_bars(
    values: Sequence[bytes | None], rules: Rules, watermarks: Mapping[str, int] | None = None
) -> Decoded:
    """Decode and validate bar event values (see :func:`decode_ticks`).

    Besides the per-field rules, a bar's prices must be consistent: ``low <= open, close
    <= high`` where given. Watermarks are days since the epoch.

    Returns:
        Accepted columns ``ticker``, ``date``, ``open``, ``high``, ``low``, ``close``,
        ``adj_close``, ``volume``.
    """
    reasons: dict[int, str] = {}
    events: list[BarEvent] = []
    good: list[int] = []
    for i, value in enumerate(values):
        got = _decode_any(_BAR_DECODER, BarEvent, value, rules.fields)
        if isinstance(got, str):
            reasons[i] = got
            continue
        lo, hi = got.low, got.high
        inside = [p for p in (got.open, got.close) if p is not None]
        if (lo is not None and hi is not None and lo > hi) or any(
            (lo is not None and p < lo) or (hi is not None and p > hi) for p in inside
        ):
            reasons[i] = (
                f"invalid_price: inconsistent bar (open {got.open}, high {hi}, low {lo}, close {got.close})"
            )
            continue
        events.append(got)
        good.append(i)
    ticker_arr = pa.array([e.ticker for e in events], pa.string())
    ok = np.ones(len(events), dtype=bool)
    for j, reason in enumerate(check_ticker(ticker_arr, rules.known_tickers)):
        if reason is not None:
            reasons[good[j]] = reason
            ok[j] = False
    days = np.array([(e.date - _EPOCH).days for e in events], dtype=np.int64)
    ok_idx = np.flatnonzero(ok)
    tickers = [e.ticker for e in events]
    late, _, marks = _order_check(
        ticker_arr.take(pa.array(ok_idx)), days[ok_idx], watermarks or {}, rules.max_lateness_days
    )
    for j in ok_idx[late].tolist():
        reasons[good[j]] = f"out_of_order: {tickers[j]} bar of {events[j].date} arrived after a later bar"
        ok[j] = False
    accepted, rejected = _finish(len(values), good, reasons)
    keep = [events[j] for j in np.flatnonzero(ok).tolist()]
    columns = {
        "ticker": pa.array([e.ticker for e in keep], pa.string()),
        "date": pa.array([e.date for e in keep], pa.date32()),
        "open": pa.array([e.open for e in keep], pa.float64()),
        "high": pa.array([e.high for e in keep], pa.float64()),
        "low": pa.array([e.low for e in keep], pa.float64()),
        "close": pa.array([e.close for e in keep], pa.float64()),
        "adj_close": pa.array([e.adj_close for e in keep], pa.float64()),
        "volume": pa.array([e.volume for e in keep], pa.int64()),
    }
    return Decoded(accepted, columns, rejected, marks)
