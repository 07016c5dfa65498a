"""Unit tests of stream events: encoding, decoding and the rules that reject events (pure)."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickerlake.stream.schema import (
    REASON_CODES,
    Rules,
    decode_bars,
    decode_ticks,
    encode_bars,
    encode_ticks,
    format_ts,
    parse_ts,
)

AAPL_ONLY = Rules(known_tickers=frozenset({"AAPL", "MSFT"}))
T0 = 1_577_975_400_000_000  # 2020-01-02T14:30:00Z


def tick(
    ticker: str = "AAPL", ts: str = "2020-01-02T14:30:00Z", price: object = 74.06, **extra: object
) -> bytes:
    obj = {"ticker": ticker, "ts": ts, "price": price, "size": 100, "seq": 1, **extra}
    return json.dumps(obj).encode()


def reasons(
    values: list[bytes | None], rules: Rules = AAPL_ONLY, marks: dict | None = None
) -> dict[int, str]:
    return dict(decode_ticks(values, rules, marks).rejected)


def test_format_and_parse_timestamps_round_trip():
    us = np.array([T0, T0 + 1, 0, -1_000_000], dtype=np.int64)
    text = format_ts(us)
    assert text == [
        "2020-01-02T14:30:00.000000Z",
        "2020-01-02T14:30:00.000001Z",
        "1970-01-01T00:00:00.000000Z",
        "1969-12-31T23:59:59.000000Z",
    ]
    values, ok = parse_ts(text)
    assert ok.all() and values.tolist() == us.tolist()


def test_parse_timestamps_converts_offsets_and_refuses_the_rest():
    values, ok = parse_ts(
        [
            "2020-01-02T15:30:00+01:00",
            "2020-01-02T14:30:00.5Z",
            "2020-01-02T14:30:00",  # no offset
            "2020-01-02",
            "2020-13-02T14:30:00Z",
            "2020-01-02T14:30:00.1234567Z",  # finer than microseconds
            "garbage",
        ]
    )
    assert ok.tolist() == [True, True, False, False, False, False, False]
    assert values[:2].tolist() == [T0, T0 + 500_000]


def test_canonical_timestamps_read_by_position_agree_with_the_general_parser():
    # A batch in format_ts's own shape takes the positional fast path; mixed with other
    # shapes each entry is read by whichever path fits, and impossible dates are refused.
    canonical = [
        "2020-02-29T23:59:59.999999Z",  # leap day
        "1900-03-01T00:00:00.000000Z",  # 1900 is not a leap year
        "0001-01-01T00:00:00.000000Z",
        "9999-12-31T23:59:59.999999Z",
    ]
    expected = [
        1_583_020_799_999_999,
        -2_203_891_200_000_000,
        -62_135_596_800_000_000,
        253_402_300_799_999_999,
    ]
    values, ok = parse_ts(canonical)
    assert ok.all() and values.tolist() == expected
    impossible = ["2019-02-29T00:00:00.000000Z", "1900-02-29T00:00:00.000000Z", "2020-01-02T24:00:00.000000Z"]
    mixed = [*canonical, *impossible, "2020-01-02T15:30:00+01:00", "2020-01-02T14:30:00.000000z"]
    values, ok = parse_ts(mixed)
    assert ok.tolist() == [True] * 4 + [False] * 3 + [True, False]
    assert values[:4].tolist() == expected and values[7] == T0


def test_a_batch_read_in_bulk_equals_its_records_read_one_by_one():
    ts = T0 + np.arange(50, dtype=np.int64) * 1_000
    values = encode_ticks(["AAPL", "MSFT"] * 25, ts, np.linspace(1, 2, 50), np.arange(50), np.arange(50))
    bulk = decode_ticks(values, AAPL_ONLY)
    assert bulk.rejected == [] and len(bulk) == 50
    # An empty value sends the whole batch record by record; the 50 others come out alike.
    one_by_one = decode_ticks([*values, b""], AAPL_ONLY)
    assert one_by_one.rejected == [(50, "invalid_json: empty record value")]
    for name, column in bulk.columns.items():
        assert column.equals(one_by_one.columns[name]), name
    assert bulk.watermarks == one_by_one.watermarks == {"AAPL": int(ts[48]), "MSFT": int(ts[49])}


def test_records_the_bulk_reader_would_take_apart_or_let_through_are_judged_one_by_one():
    good = tick()
    two_lines = good + b"\n" + tick(ticker="MSFT")  # two objects in one record
    no_price = tick().replace(b'"price": 74.06, ', b"")
    got = reasons([good, two_lines, tick(price=float("nan")), no_price, tick(size=-1)])
    assert sorted(got) == [1, 2, 3, 4]
    assert got[1].startswith("invalid_json:")
    assert got[2] == "invalid_price: price is nan"
    assert got[3].startswith("missing_field: price")
    assert got[4].startswith("invalid_size:")


def test_values_that_are_not_objects_never_reach_the_bulk_reader():
    # A top-level null before the first object crashes Arrow's JSON reader natively
    # (apache/arrow#47409): this test would end the whole run, not fail.
    for batch in ([b"null"], [b" null"], [b"null", tick()], [b"\tnull", tick()], [b"[]", tick()]):
        got = reasons(batch)
        assert sorted(got) == [0], batch
        assert got[0].startswith("invalid_event: Expected `object`, got `"), got[0]


def test_bytes_that_are_not_utf8_inside_a_string_are_judged_one_by_one():
    # Arrow's JSON reader would let them into the ticker or ts column undecoded.
    bad_ts = tick().replace(b"14:30:00", b"14:30:\xff0")
    bad_ticker = tick().replace(b'"AAPL"', b'"AA\xffL"')
    got = reasons([tick(), bad_ts, bad_ticker])
    assert sorted(got) == [1, 2]
    assert all(r.startswith("invalid_json: not UTF-8 text") for r in got.values())


def test_encoded_ticks_decode_to_the_same_values():
    ts = np.array([T0, T0 + 1_000], dtype=np.int64)
    price = np.array([74.06, 0.1 + 0.2])
    values = encode_ticks(["AAPL", "MSFT"], ts, price, np.array([100, 0]), np.array([1, 7]))
    assert (
        values[0] == b'{"ticker":"AAPL","ts":"2020-01-02T14:30:00.000000Z","price":74.06,"size":100,"seq":1}'
    )
    d = decode_ticks(values, AAPL_ONLY)
    assert d.rejected == []
    assert d.accepted.tolist() == [0, 1]
    assert d.columns["ticker"].to_pylist() == ["AAPL", "MSFT"]
    assert d.columns["ts"].cast(pa.int64()).to_pylist() == ts.tolist()
    # Floats travel in their shortest round-trip form: exactly the same double comes back.
    assert d.columns["price"].to_pylist() == [74.06, 0.1 + 0.2]
    assert d.columns["size"].to_pylist() == [100, 0]
    assert d.columns["seq"].to_pylist() == [1, 7]
    assert d.watermarks == {"AAPL": T0, "MSFT": T0 + 1_000}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"@bad", "invalid_json: JSON is malformed: invalid character (byte 0)"),
        (b'{"ticker": "AAPL"', "invalid_json: Input data was truncated"),
        (b"", "invalid_json: empty record value"),
        (None, "invalid_json: empty record value"),
        (b"[1, 2]", "invalid_event: Expected `object`, got `array`"),
        (
            tick(price=None).replace(b', "price": null', b""),
            "missing_field: price (keys: seq, size, ticker, ts; name it with the topic's field mapping)",
        ),
        (tick(price=float("nan")), "invalid_price: price is nan"),
        (tick(price=float("inf")), "invalid_price: price is inf"),
        (tick(price=-1.5), "invalid_price: price is -1.5 (expected `float` > 0.0)"),
        (tick(price=0), "invalid_price: price is 0 (expected `float` > 0.0)"),
        (tick(price="74,06"), 'invalid_price: price is "74,06" (expected `float`, got `str`)'),
        (tick(size=-3), "invalid_size: size is -3 (expected `int` >= 0)"),
        (tick(seq=1.5), "invalid_seq: seq is 1.5 (expected `int`, got `float`)"),
        (tick(ticker="ZZZZ"), "unknown_ticker: 'ZZZZ' is not in the reference data"),
        (tick(ticker="aapl"), "invalid_ticker: 'aapl' is not a ticker symbol"),
        (
            tick(ts="2020-01-02T14:30:00"),
            "invalid_timestamp: '2020-01-02T14:30:00' is not RFC 3339 with a UTC offset",
        ),
        (
            tick(ts=1577975400 * 10**9),
            "invalid_timestamp: ts is 1577975400000000000 (expected `str`, got `int`)",
        ),
    ],
)
def test_each_rule_gives_its_reason(value: bytes | None, expected: str):
    assert reasons([value]) == {0: expected}
    assert expected.split(":")[0] in REASON_CODES


def test_any_ticker_shaped_symbol_passes_without_reference_data():
    assert reasons([tick(ticker="BRK.B"), tick(ticker="ZZZZ"), tick(ticker="a b")], Rules()) == {
        2: "invalid_ticker: 'a b' is not a ticker symbol"
    }


def test_out_of_order_beyond_the_tolerance_is_rejected_per_ticker():
    values = [
        tick(ts="2020-01-02T14:30:10Z"),
        tick(ts="2020-01-02T14:30:09.5Z"),  # 0.5 s late: within 1 s
        tick(ts="2020-01-02T14:30:08.5Z"),  # 1.5 s late
        tick("MSFT", ts="2020-01-02T14:30:00Z"),  # another ticker: its own clock
        tick(ts="2020-01-02T14:30:11Z", price=-1),  # rejected for its price: does not move the clock
        tick(ts="2020-01-02T14:30:09.2Z"),
    ]
    d = decode_ticks(values, AAPL_ONLY)
    assert dict(d.rejected) == {
        2: "out_of_order: AAPL at 2020-01-02T14:30:08.500000Z is 1.500 s before its latest event (tolerance 1 s)",
        4: "invalid_price: price is -1 (expected `float` > 0.0)",
    }
    assert d.accepted.tolist() == [0, 1, 3, 5]
    assert d.watermarks == {"AAPL": T0 + 10_000_000, "MSFT": T0}


def test_watermarks_carry_over_between_batches():
    marks = {"AAPL": T0 + 10_000_000}
    assert reasons([tick(ts="2020-01-02T14:30:08Z")], AAPL_ONLY, marks) == {
        0: "out_of_order: AAPL at 2020-01-02T14:30:08.000000Z is 2.000 s before its latest event (tolerance 1 s)"
    }
    strict = Rules(known_tickers=None, max_lateness_us=0)
    assert reasons([tick(ts="2020-01-02T14:30:10Z")], strict, marks) == {}
    assert 0 in reasons([tick(ts="2020-01-02T14:30:09.999999Z")], strict, marks)


def test_counts_reconcile_on_a_mixed_batch():
    values = [tick(), b"{", tick(price=-1), tick(ticker="X Y"), tick(seq=2), None]
    d = decode_ticks(values, AAPL_ONLY)
    assert len(d.accepted) + len(d.rejected) == len(values)
    assert d.accepted.tolist() == [0, 4]
    assert [i for i, _ in d.rejected] == [1, 2, 3, 5]
    assert all(len(c) == 2 for c in d.columns.values())


def test_empty_batch():
    d = decode_ticks([], AAPL_ONLY)
    assert len(d) == 0 and d.rejected == [] and d.columns["ts"].type == pa.timestamp("us", tz="UTC")


def _bar_table(*rows: tuple) -> pa.Table:
    names = ["ticker", "date", "open", "high", "low", "close", "adj_close", "volume"]
    cols = list(zip(*rows, strict=True))
    return pa.table({n: list(c) for n, c in zip(names, cols, strict=True)})


def test_bars_round_trip_and_rules():
    table = _bar_table(
        ("AAPL", dt.date(2020, 1, 2), 74.06, 75.15, 73.8, 75.09, 73.4, 135_480_400),
        ("AAPL", dt.date(2020, 1, 3), 74.3, 75.1, 74.1, 74.35, None, None),
    )
    values = encode_bars(table)
    assert json.loads(values[1]) == {
        "ticker": "AAPL",
        "date": "2020-01-03",
        "open": 74.3,
        "high": 75.1,
        "low": 74.1,
        "close": 74.35,
        "adj_close": None,
        "volume": None,
    }
    bad = [
        b'{"ticker": "AAPL", "date": "2020-01-06", "close": 1, "high": 2, "low": 3}',
        b'{"ticker": "AAPL", "date": "2020-01-01", "close": 1}',
        b'{"ticker": "AAPL", "date": "2020-01-03", "close": 1}',
        b'{"ticker": "AAPL", "date": "2020-02-30", "close": 1}',
        b'{"ticker": "AAPL", "date": "2020-01-07", "close": 1, "volume": -1}',
    ]
    d = decode_bars([*values, *bad], AAPL_ONLY)
    assert d.accepted.tolist() == [0, 1, 4]
    got = dict(d.rejected)
    assert got[2].startswith("invalid_price: inconsistent bar")
    assert got[3] == "out_of_order: AAPL bar of 2020-01-01 arrived after a later bar"
    assert got[5].startswith('invalid_date: date is "2020-02-30"')
    assert got[6] == "invalid_volume: volume is -1 (expected `int` >= 0)"
    assert d.columns["close"].to_pylist() == [75.09, 74.35, 1.0]
    assert d.columns["date"].to_pylist() == [dt.date(2020, 1, 2), dt.date(2020, 1, 3), dt.date(2020, 1, 3)]
    assert d.watermarks == {"AAPL": (dt.date(2020, 1, 3) - dt.date(1970, 1, 1)).days}


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["AAPL", "MSFT"]),
            st.integers(0, 10**12),
            st.floats(0.0001, 1e6, allow_nan=False, allow_infinity=False),
            st.integers(0, 10**12),
            st.integers(0, 10**9),
        ),
        max_size=30,
    )
)
def test_property_valid_ticks_in_order_are_all_accepted(rows: list[tuple]):
    rows.sort(key=lambda r: r[1])
    ts = np.array([T0 + r[1] for r in rows], dtype=np.int64)
    values = encode_ticks(
        [r[0] for r in rows],
        ts,
        np.array([r[2] for r in rows], dtype=np.float64),
        np.array([r[3] for r in rows], dtype=np.int64),
        np.array([r[4] for r in rows], dtype=np.int64),
    )
    d = decode_ticks(values, AAPL_ONLY)
    assert d.rejected == []
    assert d.columns["price"].to_pylist() == [r[2] for r in rows]
    assert d.columns["ts"].cast(pa.int64()).to_pylist() == ts.tolist()
