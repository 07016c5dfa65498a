"""The market matrix and the chart series of the service layer on hand-written bars, with
hand-computed expected values (and the web's JSON encoders)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math

import pyarrow as pa
import pytest

from tickerlake.insights import BadInput, DateOutsideData, EmptyWindow, NoData, UnknownPeriod, UnknownTicker
from tickerlake.jsonable import jsonable
from tickerlake.service.charts import line_series, ohlc_series
from tickerlake.service.market import Market, build_market
from tickerlake.service.selection import order_tickers, parse_tickers, resolve_span
from tickerlake.web.data import dumps, dumps_plain

D = dt.date.fromisoformat

# (ticker, date, open, high, low, close, adj_close, volume). Jan 9-13, 2023 is Mon-Fri;
# nobody trades on the 12th, MSFT lists on the 10th and has no bar on the 13th.
ROWS = [
    ("MSFT", "2023-01-11", 50.0, 56.0, 49.0, 55.0, 55.0, 1100),
    ("AAPL", "2023-01-09", 9.5, 10.5, 9.0, 10.0, 5.0, 100),
    ("AAPL", "2023-01-10", 10.0, 12.5, 9.8, 12.0, 6.0, 200),
    ("MSFT", "2023-01-10", 49.0, 51.0, 48.0, 50.0, 50.0, 1000),
    ("AAPL", "2023-01-11", 12.0, 12.0, 8.5, 9.0, 4.5, 150),
    ("AAPL", "2023-01-13", 9.0, 10.0, 9.0, 9.9, 4.95, 120),
]


def bars_of(rows: list[tuple]) -> pa.Table:
    names = ["ticker", "date", "open", "high", "low", "close", "adj_close", "volume"]
    columns = list(zip(*rows, strict=True))
    arrays = [
        pa.array(columns[0]),
        pa.array([D(d) for d in columns[1]], pa.date32()),
        *[pa.array(c, pa.float64()) for c in columns[2:7]],
        pa.array(columns[7], pa.int64()),
    ]
    return pa.table(dict(zip(names, arrays, strict=True)))


@pytest.fixture
def market() -> Market:
    return build_market(bars_of(ROWS))


def test_build_market_orders_tickers_and_dates(market: Market) -> None:
    assert market.tickers == ("AAPL", "MSFT")
    assert market.iso == ["2023-01-09", "2023-01-10", "2023-01-11", "2023-01-13"]
    assert market.first_date == D("2023-01-09") and market.last_date == D("2023-01-13")
    # Values are placed by each row's ticker, whatever the row order.
    close = market.matrix("close", ["AAPL", "MSFT"], 0, 4)
    assert close[2].tolist() == [9.0, 55.0]
    assert math.isnan(close[0, 1])
    assert market.matrix("close", ["MSFT"], 2, 4)[0].tolist() == [55.0]  # days 2-3 only


def test_order_tickers_puts_fangmant_first() -> None:
    assert order_tickers(["ZZZ", "TSLA", "AAPL", "META", "AAA", "AAPL"]) == (
        "META",
        "AAPL",
        "TSLA",
        "AAA",
        "ZZZ",
    )


def test_parse_tickers() -> None:
    known = ("META", "AAPL", "MSFT")
    assert parse_tickers(None, known) == known
    assert parse_tickers(" , ", known) == known
    assert parse_tickers("msft, AAPL,aapl", known) == ("AAPL", "MSFT")
    with pytest.raises(UnknownTicker, match="unknown ticker GOOG, NFLX"):
        parse_tickers("AAPL,GOOG,NFLX", known)
    with pytest.raises(BadInput, match="bad ticker"):
        parse_tickers("AA PL", known)


def test_resolve_span() -> None:
    span = resolve_span("study-2022", None, None)
    assert (span.start, span.end, span.window) == (D("2022-04-01"), D("2022-06-30"), "study-2022")
    assert resolve_span("STUDY-2022", D("2022-05-02"), None).start == D("2022-05-02")
    assert resolve_span("all", None, None).start is None
    assert resolve_span(None, D("2020-01-01"), None).label == "Jan 1, 2020 to the end"
    with pytest.raises(BadInput, match="starts"):
        resolve_span(None, D("2020-02-01"), D("2020-01-01"))
    with pytest.raises(UnknownPeriod):
        resolve_span("dotcom", None, None)


def test_line_series_close(market: Market) -> None:
    out = line_series(market, ["AAPL", "MSFT"], None, None, "close", total=True)
    assert out["dates"] == ["2023-01-09", "2023-01-10", "2023-01-11", "2023-01-13"]
    aapl, msft = out["series"]
    assert aapl["values"] == [10.0, 12.0, 9.0, 9.9]
    assert msft["values"] == [None, 50.0, 55.0, None]
    assert (aapl["first"], aapl["last"], aapl["min"], aapl["max"]) == (10.0, 9.9, 9.0, 12.0)
    assert aapl["change_pct"] == pytest.approx(-1.0)
    assert (msft["first_date"], msft["last_date"]) == ("2023-01-10", "2023-01-11")
    assert msft["change_pct"] == pytest.approx(10.0)
    assert out["total"]["values"] == [10.0, 62.0, 64.0, 9.9]
    assert out["total"]["tickers"] == [1, 2, 2, 1]


def test_line_series_normalised_rebases_each_ticker_at_its_first_day(market: Market) -> None:
    out = line_series(market, ["AAPL", "MSFT"], None, None, "normalised")
    assert out["series"][0]["values"] == [100.0, 120.0, 90.0, 99.0]
    assert out["series"][1]["values"] == [None, 100.0, 110.0, None]
    later = line_series(market, ["AAPL"], D("2023-01-10"), None, "normalised")
    assert later["series"][0]["values"] == [100.0, 75.0, 82.5]


def test_line_series_volume_is_integral(market: Market) -> None:
    out = line_series(market, ["MSFT", "AAPL"], None, D("2023-01-11"), "volume", total=True)
    assert [s["ticker"] for s in out["series"]] == ["MSFT", "AAPL"]
    assert out["series"][0]["values"] == [None, 1000, 1100]
    assert out["total"]["values"] == [100, 1200, 1250]


def test_line_series_rejects(market: Market) -> None:
    with pytest.raises(BadInput, match="unknown measure"):
        line_series(market, ["AAPL"], None, None, "price")
    with pytest.raises(BadInput, match="total of rebased"):
        line_series(market, ["AAPL"], None, None, "normalised", total=True)
    with pytest.raises(UnknownTicker):
        line_series(market, ["GOOG"], None, None)
    with pytest.raises(EmptyWindow, match="no trading day between Jan 12, 2023 and Jan 12, 2023"):
        line_series(market, ["AAPL"], D("2023-01-12"), D("2023-01-12"))
    with pytest.raises(DateOutsideData, match="outside the data"):
        line_series(market, ["AAPL"], D("2023-02-01"), None)


def test_ohlc_scales_prices(market: Market) -> None:
    plain = ohlc_series(market, "AAPL", None, D("2023-01-11"))
    assert plain["close"] == [10.0, 12.0, 9.0] and plain["volume"] == [100, 200, 150]
    adjusted = ohlc_series(market, "AAPL", None, D("2023-01-11"), "adj_close")
    assert adjusted["close"] == [5.0, 6.0, 4.5] and adjusted["open"] == [4.75, 5.0, 6.0]
    rebased = ohlc_series(market, "AAPL", None, None, "normalised")
    assert rebased["close"] == [100.0, 120.0, 90.0, 99.0] and rebased["high"] == [105.0, 125.0, 120.0, 100.0]
    # Days without a bar of the ticker are left out of its candles.
    msft = ohlc_series(market, "MSFT", None, None)
    assert msft["dates"] == ["2023-01-10", "2023-01-11"]
    with pytest.raises(BadInput, match="candles"):
        ohlc_series(market, "AAPL", None, None, "volume")


def test_empty_market_says_how_to_fill_it() -> None:
    empty = build_market(bars_of(ROWS).slice(0, 0))
    assert empty.empty and empty.first_date is None
    with pytest.raises(NoData, match="tickerlake ingest sim"):
        empty.rows(None, None)


def test_bars_for_filters_and_reuses(market: Market) -> None:
    assert market.bars_for(["MSFT", "AAPL"]).num_rows == market.bar_count
    msft = market.bars_for(["MSFT"])
    assert set(msft.column("ticker").to_pylist()) == {"MSFT"} and msft.num_rows == 2
    assert market.bars_for(["MSFT"]) is msft  # the slice cache
    one_day = market.bars_for(["AAPL", "MSFT"], D("2023-01-11"), D("2023-01-11"))
    assert one_day.column("ticker").to_pylist() == ["AAPL", "MSFT"]


@dataclasses.dataclass(frozen=True)
class _Result:
    day: dt.date
    value: float
    rows: tuple[float, ...]


def test_jsonable_and_dumps() -> None:
    res = _Result(D("2022-06-30"), math.nan, (1.5, math.inf))
    assert jsonable(res) == {"day": "2022-06-30", "value": None, "rows": [1.5, None]}
    assert json.loads(dumps(res)) == {"day": "2022-06-30", "value": None, "rows": [1.5, None]}
    assert dumps_plain({"a": [1, None, 2.5]}) == b'{"a":[1,null,2.5]}'
    assert dumps_plain({"a": math.nan}) == b'{"a":null}'
