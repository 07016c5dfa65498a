"""Validation rules evaluated by DuckDB in memory on hand-written rows (no files)."""

import duckdb
import pytest

from tickerlake.lake.contract import ACTIONS, BARS
from tickerlake.lake.validation import lenient_select_sql, normalise_sql, reason_sql

BAR = {
    "ticker": "aapl ",
    "date": "2020-01-02",
    "open": 10.0,
    "high": 12.0,
    "low": 9.0,
    "close": 11.0,
    "adj_close": 11.0,
    "volume": 100,
    "source": "",
    "source_file": None,
    "source_row": None,
}


def _check(spec, row: dict) -> tuple:
    con = duckdb.connect()
    cols = ", ".join(f'?::{spec.reader_types[c]} AS "{c}"' for c in spec.types)
    con.execute(f"CREATE TABLE r AS SELECT {cols}", [row.get(c) for c in spec.types])
    return con.execute(
        f"WITH n AS (SELECT {normalise_sql(spec)} FROM r) SELECT ticker, source, {reason_sql(spec)} FROM n"
    ).fetchone()


def test_valid_bar_passes_and_is_normalised():
    assert _check(BARS, BAR) == ("AAPL", "unknown", None)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"close": None}, "missing close"),
        ({"close": -1.0, "low": -2.0}, "low <= 0: -2.0; close <= 0: -1.0"),
        ({"high": 8.0}, "high < low; open outside low..high; close outside low..high"),
        ({"close": 12.5}, "close outside low..high"),
        ({"volume": -5}, "negative volume: -5"),
        ({"ticker": "  "}, "missing ticker"),
        ({"date": None}, "missing date"),
        ({"date": "1850-01-01"}, "date out of range: 1850-01-01"),
        ({"open": float("nan")}, "open is not finite; open outside low..high"),
        ({"volume": 1.5}, "volume is not an integer: 1.5"),
    ],
)
def test_invalid_bars_get_every_reason(change, reason):
    _, _, got = _check(BARS, {**BAR, **change})
    assert got == reason


def test_close_may_equal_high_within_rounding():
    assert _check(BARS, {**BAR, "close": 12.0 * (1 + 1e-12)})[2] is None


def test_actions_rules():
    ok = {
        "ticker": "AAPL",
        "date": "2020-08-31",
        "action": "Split",
        "ratio": 4.0,
        "amount": None,
        "source": "sim",
    }
    assert _check(ACTIONS, ok)[2] is None
    assert _check(ACTIONS, {**ok, "ratio": None})[2] == "split without a positive ratio"
    assert _check(ACTIONS, {**ok, "action": "merger"})[2] == "unknown action: merger"
    div = {**ok, "action": "dividend", "ratio": None, "amount": 0.82}
    assert _check(ACTIONS, div)[2] is None


def test_lenient_parsers_accept_common_spellings_and_name_what_fails():
    typed, fails = lenient_select_sql(BARS)
    con = duckdb.connect()
    text = {c: None for c in BARS.types}
    rows = [
        {
            **text,
            "ticker": "MSFT",
            "date": "2010-01-04 00:00:00-05:00",
            "close": "1,234.5",
            "volume": "1000.0",
        },
        {**text, "ticker": "MSFT", "date": "01/05/2010", "close": "12", "volume": "7"},
        {**text, "ticker": "MSFT", "date": "yesterday", "close": "abc", "volume": "1.5"},
    ]
    cols = ", ".join(f'?::VARCHAR AS "{c}"' for c in BARS.types)
    con.execute(f"CREATE TABLE r AS SELECT {cols}", [rows[0][c] for c in BARS.types])
    for row in rows[1:]:
        con.execute(f"INSERT INTO r SELECT {cols}", [row[c] for c in BARS.types])
    got = con.execute(
        f"SELECT date::VARCHAR, close, volume, _f FROM (SELECT {typed}, {fails} AS _f FROM r)"
    ).fetchall()
    assert got[0] == ("2010-01-04", 1234.5, 1000.0, None)
    assert got[1] == ("2010-01-05", 12.0, 7.0, None)
    # A fractional volume parses here and is rejected by the integer check afterwards.
    assert got[2] == (None, None, 1.5, "unparseable date 'yesterday'; unparseable close 'abc'")


def test_price_artefacts_of_single_precision_are_cleaned_but_precise_values_kept():
    import pyarrow as pa

    from tickerlake.lake.validation import clean_price_artifacts

    got = clean_price_artifacts(
        pa.array([106.209999, 6.8125, 0.08152343, 543210.12, 3.1400001, None, 123.456789])
    )
    assert got.to_pylist() == [106.21, 6.8125, 0.08152343, 543210.12, 3.14, None, 123.456789]
