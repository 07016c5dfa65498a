"""Events as existing producers send them: CSV rows as JSON, other tick spellings, topic mappings."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest

from tickerlake.stream.schema import Rules, decode_bars, decode_ticks

ANY = Rules()
# 2022-08-15T14:30:00Z in seconds since the epoch.
T = 1_660_573_800


def row(**kw: object) -> bytes:
    return json.dumps(kw).encode()


def test_the_original_projects_row_shaped_bar_is_a_bar() -> None:
    # What the original producer sends: a CSV row of its file, json.dumps of a dict.
    value = row(
        **{
            "stock symbol": "AMZN",
            "Date": "2022-08-15",
            "Open": 142.800003,
            "High": 143.550003,
            "Low": 141.580002,
            "Close": 143.179993,
            "Adj Close": 143.179993,
            "Volume": 39014600,
        }
    )
    d = decode_bars([value], ANY)
    assert d.rejected == []
    got = {k: v.to_pylist() for k, v in d.columns.items()}
    assert got == {
        "ticker": ["AMZN"],
        "date": [dt.date(2022, 8, 15)],
        "open": [142.800003],
        "high": [143.550003],
        "low": [141.580002],
        "close": [143.179993],
        "adj_close": [143.179993],
        "volume": [39014600],
    }


@pytest.mark.parametrize(
    ("value", "close", "volume", "day"),
    [
        # Numbers as strings, with a currency sign and thousands separators.
        (row(Symbol="AMZN", Date="2022-08-15", Close="$1,143.50", Volume="39,014,600"), 1143.5, 39014600, 15),
        # pandas' float volume and a timestamped date.
        (row(ticker="AMZN", date="2022-08-15 00:00:00", close=143.0, volume=3.9e7), 143.0, 39000000, 15),
        # pandas' to_json: the date as epoch milliseconds.
        (row(Ticker="AMZN", Date=1_660_608_000_000, Close=143), 143.0, None, 16),
        # Stooq's labels and compact dates, as text or as a number.
        (row(**{"<TICKER>": "AMZN", "<DATE>": "20220815", "<CLOSE>": 143.1, "<VOL>": 5}), 143.1, 5, 15),
        (row(**{"<TICKER>": "AMZN", "<DATE>": 20220815, "<CLOSE>": 143.1, "<VOL>": 5}), 143.1, 5, 15),
    ],
)
def test_row_shaped_bars_in_other_spellings(value: bytes, close: float, volume: int | None, day: int) -> None:
    d = decode_bars([value], ANY)
    assert d.rejected == []
    assert d.columns["close"].to_pylist() == [close]
    assert d.columns["volume"].to_pylist() == [volume]
    assert d.columns["date"].to_pylist() == [dt.date(2022, 8, day)]


def test_rows_that_cannot_be_read_are_rejected_with_the_reason() -> None:
    values = [
        row(symbol="AMZN", Date="2022-08-15"),  # no close under any spelling
        row(symbol="AMZN", Date="2022-08-15", Close="143,5"),  # a decimal comma: not guessed
        row(symbol="AMZN", Date="15/08/2022", Close=143.5),  # day-first date: not guessed
        row(symbol="AMZN", Close=143.5, close=143.6, Date="2022-08-15"),  # two closes
        row(symbol="AMZN", Date="2022-08-15", Close=-1),
        row(symbol="AMZN", Date=-9.9e10, Close=143.5),  # epoch seconds of the year -1167
    ]
    assert dict(decode_bars(values, ANY).rejected) == {
        0: "missing_field: close (keys: Date, symbol; name it with the topic's field mapping)",
        1: 'invalid_price: close is "143,5" (expected `float`, got `str`)',
        2: 'invalid_date: date is "15/08/2022" (invalid RFC3339 encoded date)',
        3: "invalid_event: two keys mean close (name one with the topic's field mapping)",
        4: "invalid_price: close is -1 (expected `float` > 0.0)",
        5: "invalid_date: date is -99000000000.0 (expected `date`, got `float`)",
    }


def test_a_topic_mapping_names_what_no_synonym_covers() -> None:
    value = row(sym="AMZN", d="2022-08-15", px_last=143.5, Close=1.0)
    rules = Rules(fields={"date": "d", "close": "px_last"})
    d = decode_bars([value], rules)
    assert d.rejected == []
    # The mapping wins over the synonym "Close".
    assert d.columns["close"].to_pylist() == [143.5]


@pytest.mark.parametrize(
    "ts",
    [T, T * 1000, T * 1_000_000, str(T * 1000), "2022-08-15T14:30:00Z", "2022-08-15T16:30:00+02:00"],
)
def test_tick_times_as_rfc3339_or_epoch_seconds_ms_us(ts: object) -> None:
    d = decode_ticks([row(symbol="AAPL", time=ts, price="171.52", qty=100)], ANY)
    assert d.rejected == []
    assert d.columns["ts"].cast(pa.int64()).to_pylist() == [T * 1_000_000]
    assert d.columns["price"].to_pylist() == [171.52]
    assert d.columns["size"].to_pylist() == [100]
    assert d.columns["seq"].to_pylist() == [0]  # no seq sent: 0


def test_row_shaped_ticks_keep_the_usual_rules() -> None:
    values = [
        row(symbol="AAPL", timestamp=T, price=171.5, size=1),
        row(symbol="AAPL", timestamp=T - 60, price=171.5, size=1),  # a minute late
        row(symbol="AAPL", timestamp=T, size=1),
        row(symbol="ZZZZ", timestamp=T, price=1.0, size=1),
    ]
    rejected = dict(decode_ticks(values, Rules(known_tickers=frozenset({"AAPL"}))).rejected)
    assert sorted(rejected) == [1, 2, 3]
    assert rejected[1].startswith("out_of_order: AAPL at 2022-08-15T14:29:00.000000Z")
    assert rejected[2].startswith("missing_field: price")
    assert rejected[3] == "unknown_ticker: 'ZZZZ' is not in the reference data"
