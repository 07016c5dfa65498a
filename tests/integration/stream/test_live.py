"""The live view reads the real topic outside the sink's group and tracks each ticker's session."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from tickerlake.lake.contract import read_table
from tickerlake.stream.live import LiveStats
from tickerlake.stream.replay import load_bars, replay

pytestmark = pytest.mark.integration


def test_live_stats_follow_the_latest_session(kit):
    topic = kit.new_topic("live")
    day1, day2 = dt.date(2020, 3, 30), dt.date(2020, 3, 31)
    bars = load_bars(kit.settings, ["AAPL", "TSLA"], day1, day2)
    replay(kit.settings, bars, topic, "ticks", bootstrap=kit.bootstrap, ticks_per_bar=100)
    live = LiveStats(kit.settings, topic, kit.bootstrap, start="earliest").start()
    try:
        deadline = time.monotonic() + 30
        while live.events < 400 and time.monotonic() < deadline and live.error is None:
            time.sleep(0.1)
    finally:
        live.stop()
    assert live.error is None and (live.events, live.rejected) == (400, 0)
    got = {s.ticker: s for s in live.snapshot()}
    for bar in read_table(kit.settings, "market.daily_bars", ["AAPL", "TSLA"], day2, day2).to_pylist():
        s = got[bar["ticker"]]
        assert (s.day, s.trades, s.volume) == ("2020-03-31", 100, bar["volume"])
        assert (s.open, s.high, s.low, s.last) == (bar["open"], bar["high"], bar["low"], bar["close"])
