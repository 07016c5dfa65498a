"""Property tests of the stream decoders on hostile record values.

Contract (see :mod:`tickerlake.stream.schema`): every value in a batch is either accepted
or rejected with a one-line ``"<code>: <detail>"`` reason whose code is in
:data:`REASON_CODES`; positions reconcile (accepted + rejected = input, no position twice);
accepted columns line up with the accepted positions; watermarks only move forward; nothing
raises. Valid events encoded by the encoders decode back to the same values.
"""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickerlake.stream.schema import (
    INT64_MAX,
    REASON_CODES,
    Decoded,
    Rules,
    decode_bars,
    decode_ticks,
    encode_bars,
    encode_ticks,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TICK_FIELDS = ("ticker", "ts", "price", "size", "seq")
BAR_FIELDS = ("ticker", "date", "open", "high", "low", "close", "adj_close", "volume")


def check_contract(values: list[bytes | None], got: Decoded, marks_before: dict[str, int]) -> None:
    """Every position accepted or rejected with a reason, once; columns aligned; marks monotone."""
    n = len(values)
    accepted = got.accepted.tolist()
    rejected = [i for i, _ in got.rejected]
    assert accepted == sorted(accepted) and rejected == sorted(rejected)
    assert sorted(accepted + rejected) == list(range(n)), "a record is neither accepted nor rejected"
    for _, reason in got.rejected:
        code, sep, detail = reason.partition(": ")
        assert sep and detail.strip(), f"reason without detail: {reason!r}"
        assert code in REASON_CODES, reason
        assert "\n" not in reason and "\r" not in reason, reason
    for name, col in got.columns.items():
        assert len(col) == len(accepted), name
    for ticker, mark in marks_before.items():
        assert got.watermarks.get(ticker, mark) >= mark


# --------------------------------------------------------------------------- strategies

_SPECIAL_FLOATS = st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 1.7976931348623157e308])
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    _SPECIAL_FLOATS,
    st.text(max_size=20),
    st.sampled_from(
        [
            "AAPL",
            "aapl",
            "BRK.B",
            "A" * 17,
            "AAPL\n",
            "2020-01-02",
            "0001-01-01",
            "9999-12-31",
            "99999-01-01",
            "2020-02-30",
            "2020-01-02T14:30:00Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999Z",
            "99999-01-01T00:00:00Z",
            "2020-01-02T14:30:00",
            "2020-01-02T25:00:00Z",
            "2020-01-02T14:30:00.1234567Z",
            "2020-01-02T14:30:00+99:99",
        ]
    ),
)


@st.composite
def events(draw: st.DrawFn, fields: tuple[str, ...]) -> object:
    """A JSON object with some of ``fields`` (and maybe extras), each holding any scalar."""
    obj = {f: draw(json_scalars) for f in fields if draw(st.integers(0, 5))}
    if draw(st.booleans()):
        obj[draw(st.text(max_size=5))] = draw(json_scalars)
    return obj


def to_bytes(obj: object) -> bytes:
    # Python's json writes NaN/Infinity bare, as a careless producer would.
    return json.dumps(obj).encode()


hostile_values = st.one_of(
    st.none(),
    st.binary(max_size=64),
    st.sampled_from(
        [
            b"",
            b"   ",
            b"null",
            b"[]",
            b"{}",
            b'"x"',
            b"NaN",
            b"[" * 5000 + b"NaN",
            b'{"a":' * 5000 + b"NaN",
            b"[" * 100_000,
            b"\xef\xbb\xbf{}",
            '{"ticker":"AAPL"}'.encode("utf-16"),
            b'{"ticker":"\xff"}',
        ]
    ),
)


def tick_values() -> st.SearchStrategy[list[bytes | None]]:
    return st.lists(st.one_of(hostile_values, events(TICK_FIELDS).map(to_bytes)), max_size=20)


def bar_values() -> st.SearchStrategy[list[bytes | None]]:
    return st.lists(st.one_of(hostile_values, events(BAR_FIELDS).map(to_bytes)), max_size=20)


rules = st.builds(
    Rules,
    known_tickers=st.one_of(st.none(), st.just(frozenset({"AAPL", "MSFT", "BRK.B"}))),
    max_lateness_us=st.sampled_from([0, 1_000_000, INT64_MAX]),
    max_lateness_days=st.sampled_from([0, 3, 10**9]),
)
watermarks = st.dictionaries(
    st.sampled_from(["AAPL", "MSFT", "BRK.B"]), st.integers(min_value=-(2**62), max_value=2**62), max_size=3
)


# --------------------------------------------------------------------------- properties


@SETTINGS
@given(values=tick_values(), rules=rules, marks=watermarks)
def test_decode_ticks_accepts_or_rejects_every_value(
    values: list[bytes | None], rules: Rules, marks: dict[str, int]
) -> None:
    check_contract(values, decode_ticks(values, rules, marks), marks)


@SETTINGS
@given(values=bar_values(), rules=rules, marks=watermarks)
def test_decode_bars_accepts_or_rejects_every_value(
    values: list[bytes | None], rules: Rules, marks: dict[str, int]
) -> None:
    check_contract(values, decode_bars(values, rules, marks), marks)


tickers = st.from_regex(r"\A[A-Z0-9][A-Z0-9.\-/^=]{0,15}\Z")
prices = st.floats(min_value=5e-324, max_value=1.7976931348623157e308)
counts = st.integers(min_value=0, max_value=INT64_MAX)
# Year 1 to 9999 at microsecond precision, all representable in int64 µs.
ts_us = st.integers(min_value=-62_135_596_800_000_000, max_value=253_402_300_799_999_999)


@SETTINGS
@given(rows=st.lists(st.tuples(tickers, ts_us, prices, counts, counts), max_size=30))
def test_valid_ticks_round_trip(rows: list[tuple[str, int, float, int, int]]) -> None:
    rows.sort(key=lambda r: r[1])  # in time order, so none is out of order
    t, ts, p, z, q = (list(c) for c in zip(*rows, strict=True)) if rows else ([], [], [], [], [])
    values = encode_ticks(
        t, np.array(ts, np.int64), np.array(p, np.float64), np.array(z, np.int64), np.array(q, np.int64)
    )
    got = decode_ticks(values, Rules(max_lateness_us=0))
    assert got.rejected == []
    assert got.columns["ticker"].to_pylist() == t
    assert got.columns["ts"].cast(pa.int64()).to_pylist() == ts
    assert got.columns["price"].to_pylist() == p
    assert got.columns["size"].to_pylist() == z
    assert got.columns["seq"].to_pylist() == q


optional_prices = st.one_of(st.none(), prices)


@st.composite
def valid_bar(draw: st.DrawFn) -> dict[str, object]:
    """A consistent bar: low <= open, close <= high, any of the optional fields missing."""
    close = draw(prices)
    low = draw(st.one_of(st.none(), st.floats(min_value=5e-324, max_value=close)))
    high = draw(st.one_of(st.none(), st.floats(min_value=close, max_value=1.7976931348623157e308)))
    lo, hi = low if low is not None else 5e-324, high if high is not None else 1.7976931348623157e308
    return {
        "ticker": draw(tickers),
        "date": draw(st.dates()),
        "open": draw(st.one_of(st.none(), st.floats(min_value=lo, max_value=hi))),
        "high": high,
        "low": low,
        "close": close,
        "adj_close": draw(optional_prices),
        "volume": draw(st.one_of(st.none(), counts)),
    }


@SETTINGS
@given(bars=st.lists(valid_bar(), max_size=30))
def test_valid_bars_round_trip(bars: list[dict[str, object]]) -> None:
    bars.sort(key=lambda b: b["date"])  # type: ignore[arg-type, return-value]
    table = pa.Table.from_pylist(
        bars,
        schema=pa.schema(
            [("ticker", pa.string()), ("date", pa.date32())]
            + [(f, pa.float64()) for f in ("open", "high", "low", "close", "adj_close")]
            + [("volume", pa.int64())]
        ),
    )
    got = decode_bars(encode_bars(table), Rules())
    assert got.rejected == []
    for f in BAR_FIELDS:
        assert got.columns[f].to_pylist() == [b[f] for b in bars], f


# --------------------------------------------------------------------------- regressions


@pytest.mark.parametrize("decode", [decode_ticks, decode_bars])
@pytest.mark.parametrize("value", [b'{"ticker":"\xff"}', b'{"ticker":"AA\xc3"}'])
def test_regression_string_that_is_not_utf8_is_rejected_not_a_crash(decode, value: bytes) -> None:
    # Was UnicodeDecodeError out of msgspec, which is not a msgspec.DecodeError.
    got = decode([value], Rules())
    assert got.accepted.tolist() == []
    ((pos, reason),) = got.rejected
    assert pos == 0 and reason.startswith("invalid_json: not UTF-8 text (")


@pytest.mark.parametrize("decode", [decode_ticks, decode_bars])
@pytest.mark.parametrize("value", [b"[" * 100_000, b"[" * 5000 + b"NaN", b'{"a":' * 5000 + b"NaN"])
def test_regression_deeply_nested_value_is_rejected_not_a_crash(decode, value: bytes) -> None:
    # Was RecursionError out of msgspec ("maximum recursion depth exceeded while deserializing").
    got = decode([b'{"x": 1}', value], Rules())
    assert got.accepted.tolist() == []
    assert [i for i, _ in got.rejected] == [0, 1]
    # An array is refused at its first byte; an object is walked field by field into the depths.
    expected = (
        "invalid_event: Expected `object`, got `array`"
        if value[:1] == b"["
        else "invalid_json: nested too deeply"
    )
    assert got.rejected[1][1] == expected


def test_far_dates_and_timestamps_are_judged_not_crashed() -> None:
    def tick(ts: str) -> bytes:
        return to_bytes({"ticker": "AAPL", "ts": ts, "price": 1.0, "size": 1, "seq": 1})

    got = decode_ticks(
        [tick("0001-01-01T00:00:00Z"), tick("9999-12-31T23:59:59Z"), tick("99999-01-01T00:00:00Z")],
        Rules(max_lateness_us=0),
    )
    assert got.accepted.tolist() == [0, 1]
    assert got.columns["ts"].cast(pa.int64()).to_pylist() == [
        -62_135_596_800_000_000,
        253_402_300_799_000_000,
    ]
    assert [(i, r.split(":")[0]) for i, r in got.rejected] == [(2, "invalid_timestamp")]

    def bar(date: str) -> bytes:
        return to_bytes({"ticker": "AAPL", "date": date, "close": 1.0})

    got = decode_bars([bar("0001-01-01"), bar("9999-12-31"), bar("99999-01-01")], Rules())
    assert got.columns["date"].to_pylist() == [dt.date(1, 1, 1), dt.date(9999, 12, 31)]
    assert [(i, r.split(":")[0]) for i, r in got.rejected] == [(2, "invalid_date")]


@pytest.mark.parametrize(
    ("price", "reason"),
    [
        (math.nan, "invalid_price: price is nan"),
        (math.inf, "invalid_price: price is inf"),
        (-math.inf, "invalid_price: price is -inf"),
    ],
)
def test_non_finite_prices_name_the_field(price: float, reason: str) -> None:
    value = to_bytes({"ticker": "AAPL", "ts": "2020-01-02T14:30:00Z", "price": price, "size": 1, "seq": 1})
    assert decode_ticks([value], Rules()).rejected == [(0, reason)]


def test_negative_zero_price_is_rejected_as_not_positive() -> None:
    value = to_bytes({"ticker": "AAPL", "ts": "2020-01-02T14:30:00Z", "price": -0.0, "size": 1, "seq": 1})
    ((pos, reason),) = decode_ticks([value], Rules()).rejected
    assert pos == 0 and reason.startswith("invalid_price: price is -0.0")
