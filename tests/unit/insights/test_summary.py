"""Summary: candidates from every kind, ranked by importance."""

from __future__ import annotations

import pytest

from tickerlake.insights import summary
from tickerlake.insights._panel import build_panel
from tickerlake.insights.errors import WindowTooShort


def test_small_window_hand_checked(make_bars, good_friday_rows) -> None:
    res = summary(make_bars(good_friday_rows), "2008-03-19", "2008-03-25", n=10)
    by_kind = {i.kind: i for i in res.insights}
    assert set(by_kind) == {
        "window_change",
        "best_ticker",
        "worst_ticker",
        "drawdown",
        "biggest_day",
        "extreme",
    }
    assert by_kind["window_change"].narrative == (
        "Total close from Mar 19, 2008 to Mar 25, 2008 increased by 9.17% (5.5) from 60 to 65.5."
    )
    assert by_kind["best_ticker"].tickers == ("A",) and by_kind["worst_ticker"].tickers == ("C",)
    # Mar 25 over A, B, C and D (66 → 71.5) beats Mar 24 over A, B and C (57 → 61).
    assert by_kind["biggest_day"].value == pytest.approx((71.5 / 66 - 1) * 100)
    importance = [i.importance for i in res.insights]
    assert importance == sorted(importance, reverse=True)
    assert [i.rank for i in res.insights] == list(range(1, len(res.insights) + 1))
    assert res.narrative == " ".join(i.narrative for i in res.insights[:3])


def test_anomaly_leads_a_quiet_window(synth_market) -> None:
    bars = synth_market(shocks=[("BBB", 200, -0.25)])
    day = build_panel(bars).date(200)
    res = summary(bars, build_panel(bars).date(150), build_panel(bars).date(250), n=3)
    assert len(res.insights) == 3
    assert res.insights[0].kind == "anomaly" and res.insights[0].date == day
    assert res.insights[0].tickers == ("BBB",)


def test_too_short(make_bars, good_friday_rows) -> None:
    with pytest.raises(WindowTooShort, match="at least 2 trading days"):
        summary(make_bars(good_friday_rows), "2008-03-25", "2008-03-25")
