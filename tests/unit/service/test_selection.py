"""The service's parsing of what a user asks for: tickers, days, windows, measures and grains."""

from __future__ import annotations

import datetime as dt
from typing import get_args

import pytest

from tickerlake.config import Settings
from tickerlake.insights import BUILTIN_WINDOWS, BadInput, UnknownPeriod, UnknownTicker
from tickerlake.insights import GRAINS as INSIGHT_GRAINS
from tickerlake.insights._panel import MEASURES as INSIGHT_MEASURES
from tickerlake.insights._panel import PRICE_MEASURES as INSIGHT_PRICES
from tickerlake.service import selection as sel

D = dt.date.fromisoformat
KNOWN = ("META", "AAPL", "MSFT", "BRK/B")


def test_vocabulary_is_what_the_insights_accept() -> None:
    assert set(sel.MEASURES) == set(INSIGHT_MEASURES)
    assert set(sel.PRICE_MEASURES) <= set(INSIGHT_PRICES)
    assert set(sel.GRAINS) == set(INSIGHT_GRAINS)
    assert set(sel.TO_DATE_GRAINS) == set(sel.GRAINS) - {"day"}
    assert get_args(sel.Measure) == sel.MEASURES and sel.RANK_BY == ("pct_change", "change")
    assert set(sel.OHLC_MEASURES) < set(sel.LINE_MEASURES)


def test_parse_tickers_keeps_the_lake_order_and_normalises() -> None:
    assert sel.parse_tickers(None, KNOWN) == KNOWN
    assert sel.parse_tickers("", KNOWN) == KNOWN
    assert sel.parse_tickers("msft, brk/b ,MSFT", KNOWN) == ("MSFT", "BRK/B")
    with pytest.raises(UnknownTicker, match="unknown ticker ZZZ, QQQ"):
        sel.parse_tickers("zzz,AAPL,qqq", KNOWN)
    with pytest.raises(BadInput, match="bad ticker"):
        sel.parse_tickers("AAPL;DROP", KNOWN)
    with pytest.raises(UnknownTicker, match="the lake is empty"):
        sel.parse_tickers("AAPL", ())


def test_one_ticker() -> None:
    assert sel.one_ticker(" msft ", KNOWN, "a forecast") == "MSFT"
    with pytest.raises(BadInput, match="a forecast needs exactly one ticker"):
        sel.one_ticker("AAPL,MSFT", KNOWN, "a forecast")
    with pytest.raises(BadInput, match="exactly one"):
        sel.one_ticker("  ", KNOWN, "candles")
    # An unknown ticker is reported as unknown, even in a list.
    with pytest.raises(UnknownTicker):
        sel.one_ticker("AAPL,ZZZ", KNOWN, "candles")


def test_parse_date() -> None:
    assert sel.parse_date(None) is None and sel.parse_date(" ") is None
    assert sel.parse_date("2020-03-16") == D("2020-03-16")
    assert sel.parse_date(D("2020-03-16")) == D("2020-03-16")
    with pytest.raises(BadInput, match="bad start '2020-13-01': expected YYYY-MM-DD"):
        sel.parse_date("2020-13-01", "start")


def test_resolve_span_labels() -> None:
    assert sel.resolve_span("max", None, None) == sel.Span(None, None)
    span = sel.resolve_span("nber-2020", None, D("2020-03-31"))
    assert span.window == "nber-2020" and span.start == BUILTIN_WINDOWS["nber-2020"].start
    assert span.end == D("2020-03-31")
    assert sel.resolve_span(None, None, D("2020-01-31")).label == "the start to Jan 31, 2020"
    with pytest.raises(BadInput, match="starts"):
        sel.resolve_span(None, D("2020-02-01"), D("2020-01-01"))
    with pytest.raises(UnknownPeriod):
        sel.resolve_span("nope", None, None)


def test_windows_from_settings_and_definitions(tmp_path: object) -> None:
    settings = Settings(lake=str(tmp_path))
    windows = sel.all_windows(settings, ["dip=2020-02-19..2020-03-23:the dip"])
    assert set(BUILTIN_WINDOWS) < set(windows)
    assert windows["dip"].label == "the dip" and windows["dip"].start == D("2020-02-19")
    assert sel.user_windows(settings) == {}
    with pytest.raises(BadInput):
        sel.all_windows(settings, ["dip=yesterday"])
