"""Unit tests of the live view's pure core: sessions, VWAP, event-time windows, lateness, scoring."""

from __future__ import annotations

import dataclasses
import itertools
import math
import statistics

import pytest

from tickerlake.stream.live import LiveBook, LiveConfig, robust_z, window_start

S = 1_000_000
M = 60 * S
OPEN = 1_577_975_400_000_000  # 2020-01-02T14:30:00Z, a minute (and five-minute) boundary
DAY = 86_400 * S


def feed(book: LiveBook, *trades: tuple[str, int, float, int, int]) -> None:
    t, ts, p, s, q = zip(*trades, strict=True)
    book.apply(list(t), list(ts), list(p), list(s), list(q))


def ohlcv(bar) -> tuple[float, float, float, float, int, int]:
    return (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.trades)


def test_window_edges_belong_to_the_window_that_starts_there():
    assert window_start(OPEN, M) == OPEN
    assert window_start(OPEN + M - 1, M) == OPEN
    assert window_start(OPEN + M, M) == OPEN + M
    book = LiveBook(LiveConfig(allowed_lateness_us=0))
    feed(
        book,
        ("AAPL", OPEN, 10.0, 100, 1),
        ("AAPL", OPEN + M - 1, 11.0, 50, 2),
        ("AAPL", OPEN + M, 12.0, 10, 3),
    )
    first, second = book.bars("AAPL", 60)
    assert (first.start_us, ohlcv(first), first.final) == (OPEN, (10.0, 11.0, 10.0, 11.0, 150, 2), True)
    assert (second.start_us, ohlcv(second), second.final) == (
        OPEN + M,
        (12.0, 12.0, 12.0, 12.0, 10, 1),
        False,
    )
    # The five-minute window holds all three.
    (five,) = book.bars("AAPL", 300)
    assert ohlcv(five) == (10.0, 12.0, 10.0, 12.0, 160, 3) and not five.final


def test_out_of_order_trades_within_the_lateness_land_in_their_window_by_event_time():
    book = LiveBook(LiveConfig(allowed_lateness_us=5 * S))
    feed(
        book,
        ("AAPL", OPEN + 10 * S, 10.0, 1, 1),
        ("AAPL", OPEN + 40 * S, 13.0, 1, 3),
        ("AAPL", OPEN + 20 * S, 9.0, 1, 2),  # arrives after a later trade
        ("AAPL", OPEN + M + 3 * S, 14.0, 1, 5),  # next window; minute one stays open (3 s < 5 s)
        ("AAPL", OPEN + 5 * S, 8.0, 1, 0),  # earliest trade of minute one, arriving last
    )
    first = book.bars("AAPL", 60)[0]
    # open/close by (ts, seq), not by arrival: open is the 14:30:05 trade, close the 14:30:40 one.
    assert ohlcv(first) == (8.0, 13.0, 8.0, 13.0, 4, 4) and not first.final
    assert book.late == 0
    q = book.quote("AAPL")
    assert (q.open, q.last, q.high, q.low) == (8.0, 14.0, 14.0, 8.0)


def test_a_trade_after_its_window_closed_is_counted_late_and_changes_nothing():
    book = LiveBook(LiveConfig(allowed_lateness_us=2 * S))
    feed(book, ("AAPL", OPEN + 30 * S, 10.0, 100, 1), ("AAPL", OPEN + M + 2 * S, 11.0, 100, 2))
    first = book.bars("AAPL", 60)[0]
    assert first.final and ohlcv(first) == (10.0, 10.0, 10.0, 10.0, 100, 1)
    book.drain()
    feed(book, ("AAPL", OPEN + 59 * S, 99.0, 7, 3))
    changes = book.drain()
    # Late for the one-minute window; the five-minute window is still open and takes it.
    assert (changes.late, book.late) == (1, 1)
    assert ohlcv(book.bars("AAPL", 60)[0]) == (10.0, 10.0, 10.0, 10.0, 100, 1)
    assert book.bars("AAPL", 300)[0].volume == 207
    assert book.quote("AAPL").late == 1


def test_empty_windows_make_no_bars():
    book = LiveBook(LiveConfig(allowed_lateness_us=0))
    feed(book, ("AAPL", OPEN + S, 10.0, 1, 1), ("AAPL", OPEN + 3 * M + S, 12.0, 1, 2))
    starts = [b.start_us for b in book.bars("AAPL", 60)]
    assert starts == [OPEN, OPEN + 3 * M]
    (five,) = book.bars("AAPL", 300)
    assert (five.start_us, five.trades) == (OPEN, 2)


def test_a_quiet_ticker_keeps_its_last_window_open_and_is_flagged():
    book = LiveBook(LiveConfig(allowed_lateness_us=0, quiet_after_us=5 * M))
    feed(book, ("AAPL", OPEN + S, 10.0, 1, 1), ("MSFT", OPEN + S, 50.0, 1, 1))
    for k in range(1, 11):
        feed(book, ("MSFT", OPEN + k * M + S, 50.0 + k, 1, k + 1))
    aapl = book.bars("AAPL", 60)
    assert len(aapl) == 1 and not aapl[0].final  # nothing says its minute is complete
    assert book.quote("AAPL").quiet and not book.quote("MSFT").quiet
    assert len(book.bars("MSFT", 60)) == 11
    # It trades again: its old window closes, the gap stays empty.
    feed(book, ("AAPL", OPEN + 12 * M, 11.0, 1, 2))
    assert [b.start_us for b in book.bars("AAPL", 60)] == [OPEN, OPEN + 12 * M]
    assert book.bars("AAPL", 60)[0].final and not book.quote("AAPL").quiet
    # One ticker stamped far ahead does not make the others quiet: the clock is a median.
    feed(book, ("MSFT", OPEN + 12 * M, 50.0, 1, 99), ("ZZZ", OPEN + DAY, 1.0, 1, 1))
    assert book.clock_us == OPEN + 12 * M
    assert not book.quote("AAPL").quiet and not book.quote("MSFT").quiet


def test_session_vwap_and_change_against_the_previous_close():
    asked: list[tuple[str, int]] = []

    def previous(ticker: str, day: int) -> float | None:
        asked.append((ticker, day))
        return 20.0

    book = LiveBook(previous_close=previous)
    feed(
        book,
        ("AAPL", OPEN, 21.0, 100, 1),
        ("AAPL", OPEN + S, 23.0, 300, 2),
        ("AAPL", OPEN + 2 * S, 22.0, 100, 3),
    )
    q = book.quote("AAPL")
    assert asked == [("AAPL", OPEN // DAY)]
    # (21*100 + 23*300 + 22*100) / 500
    assert q.vwap == pytest.approx(22.4)
    assert (q.previous_close, q.change, q.volume, q.trades) == (20.0, 2.0, 500, 3)
    assert q.change_pct == pytest.approx(10.0)
    # The next session starts afresh; its previous close is this session's last price.
    feed(book, ("AAPL", OPEN + DAY, 24.2, 10, 4))
    q = book.quote("AAPL")
    assert (q.open, q.high, q.low, q.volume, q.previous_close) == (24.2, 24.2, 24.2, 10, 22.0)
    assert q.change_pct == pytest.approx(10.0)
    assert len(asked) == 1
    # A trade of the finished session is stale: counted, not mixed into today.
    feed(book, ("AAPL", OPEN + 3 * S, 1.0, 5, 9))
    assert (book.stale, book.late, book.quote("AAPL").volume) == (1, 1, 10)


def test_robust_z_by_hand():
    history = [0.01, -0.01, 0.02, -0.02, 0.0]
    # median 0; absolute deviations .01 .01 .02 .02 0 → MAD .01
    z, med, sigma = robust_z(0.05, history)
    assert med == 0.0 and sigma == pytest.approx(1.4826 * 0.01)
    assert z == pytest.approx(0.05 / (1.4826 * 0.01))
    # Most returns zero (a price that sits still): MAD 0, σ from the mean absolute deviation.
    # median 0; deviations 0 x7, .01, .02, .03 → mean .006
    z, med, sigma = robust_z(0.012, [0.0] * 7 + [0.01, -0.02, 0.03])
    assert med == 0.0 and sigma == pytest.approx(1.2533 * 0.006)
    assert z == pytest.approx(0.012 / (1.2533 * 0.006))
    # A flat history: σ is floored (one basis point of MAD), the score stays finite.
    z, _, sigma = robust_z(0.001, [0.0] * 10)
    assert sigma == pytest.approx(1.4826e-4) and z == pytest.approx(0.001 / 1.4826e-4)
    with pytest.raises(ValueError):
        robust_z(0.0, [])


def _wiggle(book: LiveBook, ticker: str, minutes: int, start_price: float = 100.0) -> float:
    """One trade per minute alternating ±0.1 % (then ±0.2 %), seconds into each minute."""
    price = start_price
    for k in range(minutes):
        price *= 1.001 if k % 2 == 0 else (0.999 if k % 4 == 1 else 0.998)
        feed(book, (ticker, OPEN + k * M + 5 * S, price, 10, k + 1))
    return price


def test_a_jump_raises_an_alert_quiet_wiggles_do_not():
    config = LiveConfig(allowed_lateness_us=2 * S, min_history=20, alert_z=6.0)
    book = LiveBook(config)
    price = _wiggle(book, "AAPL", 30)
    assert not book.alerts
    scored = [b.z for b in book.bars("AAPL", 60) if b.z is not None]
    assert scored and max(abs(z) for z in scored) < 6.0
    # +10 % in minute 30, then one more trade to close that minute.
    feed(book, ("AAPL", OPEN + 30 * M + 5 * S, price * 1.10, 10, 31))
    feed(book, ("AAPL", OPEN + 31 * M + 5 * S, price * 1.10, 10, 32))
    changes = book.drain()
    (alert,) = changes.alerts
    assert list(book.alerts) == [alert]
    assert (alert.ticker, alert.timeframe_s, alert.start_us) == ("AAPL", 60, OPEN + 30 * M)
    assert alert.ret_pct == pytest.approx(10.0)
    assert alert.z > 20 and book.quote("AAPL").z == alert.z


def test_a_tiny_move_of_a_still_price_is_not_an_alert():
    book = LiveBook(LiveConfig(allowed_lateness_us=0, min_history=20, alert_min_move_pct=0.25))
    for k in range(30):
        feed(book, ("AAPL", OPEN + k * M, 100.0, 1, k))
    # +0.1 %: hundreds of σ of a flat price, but below the smallest move worth an alert.
    feed(book, ("AAPL", OPEN + 30 * M, 100.1, 1, 30), ("AAPL", OPEN + 31 * M, 100.1, 1, 31))
    assert book.quote("AAPL").z > 6 and not book.alerts
    feed(book, ("AAPL", OPEN + 32 * M, 101.0, 1, 32), ("AAPL", OPEN + 33 * M, 101.0, 1, 33))
    (alert,) = book.alerts
    assert alert.ret_pct == pytest.approx(0.8991, abs=1e-4)


def test_no_alert_before_enough_history_and_no_return_over_the_night():
    book = LiveBook(LiveConfig(allowed_lateness_us=0, min_history=20))
    # Nineteen quiet minutes then a jump: too little history to call it.
    price = _wiggle(book, "AAPL", 19)
    feed(book, ("AAPL", OPEN + 19 * M + S, price * 1.5, 1, 100), ("AAPL", OPEN + 20 * M + S, price, 1, 101))
    assert not book.alerts
    # A gap at the next open is not a one-minute return: the session's first bar is not scored.
    book2 = LiveBook(LiveConfig(allowed_lateness_us=0, min_history=20))
    last = _wiggle(book2, "AAPL", 40)
    feed(book2, ("AAPL", OPEN + DAY, last * 1.3, 1, 500), ("AAPL", OPEN + DAY + M, last * 1.3, 1, 501))
    first_of_day = book2.bars("AAPL", 60)[-2]
    assert first_of_day.start_us == OPEN + DAY and first_of_day.final and first_of_day.z is None
    assert not book2.alerts


def test_memory_is_bounded():
    book = LiveBook(LiveConfig(allowed_lateness_us=0, bars_kept=3, max_tickers=1, history=20, min_history=2))
    for k in range(10):
        feed(book, ("AAPL", OPEN + k * M, 10.0 + k, 1, k))
    feed(book, ("MSFT", OPEN, 1.0, 1, 1))
    bars = book.bars("AAPL", 60)
    # Three closed bars kept plus the open one.
    assert [b.start_us for b in bars] == [OPEN + k * M for k in (6, 7, 8, 9)]
    assert (book.tickers(), book.dropped, book.events) == (["AAPL"], 1, 10)


def test_drain_reports_what_changed_once():
    book = LiveBook(LiveConfig(allowed_lateness_us=0))
    feed(book, ("MSFT", OPEN, 1.0, 1, 1), ("AAPL", OPEN, 2.0, 1, 1), ("AAPL", OPEN + M, 3.0, 1, 2))
    changes = book.drain()
    assert changes.tickers == ["AAPL", "MSFT"] and changes.events == 3
    assert [(t, tf, b.start_us) for t, tf, b in changes.closed] == [("AAPL", 60, OPEN)]
    again = book.drain()
    assert (again.tickers, again.closed, again.events) == ([], [], 0)
    assert math.isclose(book.quote("AAPL").last, 3.0)


def test_mismatched_columns_and_bad_configs_are_refused():
    with pytest.raises(ValueError):
        LiveBook().apply(["AAPL"], [OPEN, OPEN], [1.0], [1], [1])
    with pytest.raises(ValueError):
        LiveConfig(timeframes_s=())
    with pytest.raises(ValueError):
        LiveConfig(min_history=10, history=5)


def test_a_price_flipping_between_two_ticks_is_not_an_anomaly():
    # Returns flipping ±a (bid-ask bounce), a little noise on each: the median sits in one
    # cluster and the MAD measures that cluster's width only; σ comes from the median absolute
    # return instead, so the next flip is ordinary, not "hundreds of σ".
    a = math.log(1.001)
    history = [(a if k % 2 else -a) + k * 1e-7 for k in range(21)]  # eleven near -a, ten near +a
    z, med, sigma = robust_z(a, history)
    assert med == pytest.approx(-a + 20e-7)  # the largest of the eleven
    assert sigma == pytest.approx(1.4826 * statistics.median([abs(h) for h in history]))
    assert z == pytest.approx((a - med) / sigma) and 1.3 < z < 1.4


def _state(book: LiveBook) -> tuple:
    quotes = [book.quote(t) for t in book.tickers()]
    bars = [
        (t, tf, b.start_us, b.open, b.high, b.low, b.close, b.volume, b.trades, b.first, b.last, b.final, b.z)
        for t in book.tickers()
        for tf in book.config.timeframes_s
        for b in book.bars(t, tf)
    ]
    notional = {
        (t, tf, b.start_us): b.notional for t in book.tickers() for tf in (60, 300) for b in book.bars(t, tf)
    }
    counts = (book.events, book.late, book.stale, book.dropped, book.watermark_us)
    # Alerts of different tickers in one batch may come in either order.
    alerts = sorted(book.alerts, key=lambda a: (a.ticker, a.start_us))
    return quotes, bars, alerts, counts, notional


@pytest.mark.parametrize("seed", range(12))
def test_the_window_by_window_fold_equals_the_trade_by_trade_one(seed: int) -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    n = 4000
    names = np.array(["AAPL", "MSFT", "NVDA"])[rng.integers(0, 3, n)]
    # Two sessions, trades a few seconds apart, a few jumps; some runs shuffled (out of order,
    # some beyond the lateness), a few trades of the previous session after the next began.
    gaps = rng.exponential(4 * S, n).astype(np.int64)
    ts = OPEN + np.cumsum(gaps)
    ts[n // 2 :] += DAY
    price = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n) + (rng.random(n) < 0.003) * 0.05))
    size = rng.integers(0, 500, n)
    seq = np.arange(n)
    for a in rng.integers(0, n - 20, 15):
        perm = rng.permutation(20)
        for col in (names, ts, price, size, seq):
            col[a : a + 20] = col[a : a + 20][perm]
    stale = rng.integers(n // 2 + 10, n, 5)
    ts[stale] -= DAY
    config = LiveConfig(allowed_lateness_us=5 * S, min_history=5, alert_z=3.0, alert_min_move_pct=0.1)
    fast, slow = LiveBook(config, fast=True), LiveBook(config, fast=False)
    cuts = sorted({0, n, *rng.integers(0, n, 8).tolist()})
    for a, b in itertools.pairwise(cuts):
        cols = (names[a:b].tolist(), ts[a:b], price[a:b], size[a:b], seq[a:b])
        fast.apply(*cols)
        slow.apply(*cols)
    got, want = _state(fast), _state(slow)
    # Sums of price × size may differ in the last bit (another order of additions).
    for g, w in zip(got[0], want[0], strict=True):
        assert g.vwap == pytest.approx(w.vwap, rel=1e-12)
        assert dataclasses.replace(g, vwap=None) == dataclasses.replace(w, vwap=None)
    assert got[1:4] == want[1:4]
    assert got[4].keys() == want[4].keys()
    assert all(got[4][k] == pytest.approx(want[4][k], rel=1e-12) for k in got[4])
    assert want[3][1] > 0 and want[3][2] > 0 and want[2]  # late, stale and alerts were exercised
