"""Named queries: header parsing, parameter conversion and the shipped .sql files."""

from __future__ import annotations

import datetime as dt

import pytest

from tickerlake.query.guard import check_sql
from tickerlake.query.named import (
    NamedQuery,
    NamedQueryError,
    Param,
    bind_params,
    convert_param,
    get_named,
    list_named,
    parse_named,
)

SAMPLE = """\
-- Close of some tickers
-- over a window.
-- param tickers tickers: comma-separated tickers
-- param start date: first day
-- param n int optional: how many
SELECT 1
"""


def _sample() -> NamedQuery:
    return parse_named("sample", SAMPLE)


def test_header_is_parsed() -> None:
    q = _sample()
    assert q.name == "sample"
    assert q.description == "Close of some tickers over a window."
    assert q.params == (
        Param("tickers", "tickers", False, "comma-separated tickers"),
        Param("start", "date", False, "first day"),
        Param("n", "int", True, "how many"),
    )
    assert q.sql == SAMPLE


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("SELECT 1", "missing description"),
        ("-- x\n-- param a weird: y\nSELECT 1", "unknown type"),
        ("-- x\n-- param a int: y\n-- param a int: z\nSELECT 1", "duplicate parameter"),
    ],
)
def test_malformed_headers(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_named("bad", text)


@pytest.mark.parametrize(
    ("ptype", "raw", "expected"),
    [
        ("date", "2022-06-30", dt.date(2022, 6, 30)),
        ("date", " 2022-06-30 ", dt.date(2022, 6, 30)),
        ("date", dt.date(2020, 1, 2), dt.date(2020, 1, 2)),
        ("date", dt.datetime(2020, 1, 2, 15, 0), dt.date(2020, 1, 2)),
        ("int", "42", 42),
        ("int", 7, 7),
        ("float", "1.5", 1.5),
        ("float", 2, 2.0),
        ("text", "AAPL' OR '1'='1", "AAPL' OR '1'='1"),
        ("tickers", "aapl, msft,,GOOGL ", ["AAPL", "MSFT", "GOOGL"]),
        ("tickers", ["nvda"], ["NVDA"]),
        ("tickers", None, None),
    ],
)
def test_convert_param(ptype: str, raw: object, expected: object) -> None:
    assert convert_param(Param("p", ptype, True, ""), raw) == expected


@pytest.mark.parametrize(
    ("ptype", "raw", "message"),
    [
        ("date", "2022-13-01", "parameter p: '2022-13-01' is not a date (YYYY-MM-DD)"),
        ("date", "yesterday", "parameter p: 'yesterday' is not a date (YYYY-MM-DD)"),
        ("int", "1.5", "parameter p: '1.5' is not an integer"),
        ("int", True, "parameter p: True is not an integer"),
        ("float", "abc", "parameter p: 'abc' is not a number"),
        ("tickers", " , ", "parameter p: ' , ' is not one or more comma-separated tickers"),
    ],
)
def test_convert_param_errors(ptype: str, raw: object, message: str) -> None:
    with pytest.raises(NamedQueryError) as info:
        convert_param(Param("p", ptype, False, ""), raw)
    assert str(info.value) == message


def test_bind_params() -> None:
    q = _sample()
    assert bind_params(q, {"tickers": "aapl", "start": "2020-01-01"}) == {
        "tickers": ["AAPL"],
        "start": dt.date(2020, 1, 1),
        "n": None,
    }
    assert bind_params(q, {"tickers": "aapl", "start": "2020-01-01", "n": "3"})["n"] == 3
    # An empty value counts as omitted.
    assert bind_params(q, {"tickers": "aapl", "start": "2020-01-01", "n": ""})["n"] is None


def test_bind_params_errors() -> None:
    q = _sample()
    with pytest.raises(NamedQueryError) as info:
        bind_params(q, {"tickers": "aapl"})
    assert str(info.value) == "sample: missing parameter start (--param start=…)"
    with pytest.raises(NamedQueryError) as info:
        bind_params(q, {})
    assert str(info.value) == "sample: missing parameter tickers, start (--param tickers=… --param start=…)"
    with pytest.raises(NamedQueryError) as info:
        bind_params(q, {"tickers": "a", "start": "2020-01-01", "ticker": "b"})
    assert str(info.value) == "sample: unknown parameter 'ticker' (parameters: tickers, start, n)"


def test_shipped_queries() -> None:
    names = [q.name for q in list_named()]
    for expected in (
        "close_by_ticker",
        "daily_total_close",
        "normalised_performance",
        "monthly_returns",
        "drawdown",
        "volume_by_ticker",
    ):
        assert expected in names
    for q in list_named():
        assert q.description
        checked = check_sql(q.sql)  # every shipped query passes the read-only guard
        # Declared parameters and the $names in the SQL are the same set: nothing is
        # left unbound and nothing is bound that the SQL does not use.
        assert checked.parameters == {p.name for p in q.params}, q.name


def test_close_by_ticker_params() -> None:
    q = get_named("close_by_ticker")
    assert [(p.name, p.type, p.optional) for p in q.params] == [
        ("tickers", "tickers", False),
        ("start", "date", False),
        ("end", "date", False),
    ]


def test_unknown_named_query() -> None:
    with pytest.raises(NamedQueryError, match="unknown named query 'nope' \\(known: close_by_ticker, "):
        get_named("nope")
