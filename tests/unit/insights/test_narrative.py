"""Sentence style: numbers, dates, lists, change phrases."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from tickerlake.insights.narrative import (
    change_phrase,
    fmt_date,
    fmt_num,
    fmt_pct,
    fmt_signed_pct,
    join_and,
    measure_label,
    period_label,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (8.3, "8.3"),
        (8.73, "8.73"),
        (1309.31, "1,309.31"),
        (1285.6, "1,285.6"),
        (-23.71, "-23.71"),
        (0.43, "0.43"),
        (1285.604, "1,285.6"),
        (2.0, "2"),
        (-0.001, "-0.001"),
        (0.0043, "0.0043"),
        (-0.0001, "-0.0001"),
        (0.0, "0"),
        (-0.001 / 1000, "-0.000001"),
        (151998000, "151,998,000"),
        (float("nan"), "n/a"),
        (None, "n/a"),
    ],
)
def test_fmt_num(value: float | None, text: str) -> None:
    assert fmt_num(value) == text


def test_dates_and_labels() -> None:
    assert fmt_date(dt.date(2009, 1, 28)) == "Jan 28, 2009"
    assert fmt_date(dt.date(2022, 6, 3)) == "Jun 3, 2022"
    assert period_label(dt.date(2022, 6, 27), "week") == "the week of Jun 27, 2022"
    assert period_label(dt.date(2022, 6, 1), "month") == "Jun 2022"
    assert period_label(dt.date(2022, 4, 1), "quarter") == "Q2 2022"
    assert period_label(dt.date(2022, 1, 1), "year") == "2022"
    assert measure_label("adj_close") == "total adj close"
    assert measure_label("volume", "") == "volume"


def test_lists_and_changes() -> None:
    assert join_and([]) == ""
    assert join_and(["MSFT at 3.19"]) == "MSFT at 3.19"
    assert join_and(["MSFT at 3.19", "GOOGL at 2.93"]) == "MSFT at 3.19, and GOOGL at 2.93"
    assert join_and(["A", "B", "C"]) == "A, B, and C"
    assert change_phrase(5.1807, 0.43) == "increased by 5.18% (0.43)"
    assert change_phrase(-1.8109, -23.71) == "decreased by 1.81% (-23.71)"
    assert change_phrase(0.0, 0.0) == "was unchanged"
    assert change_phrase(math.nan, 5.0) == "increased by 5 (5)"
    assert fmt_pct(-1.8109) == "1.81%"
    assert fmt_signed_pct(5.18) == "+5.18%"
    assert fmt_signed_pct(-0.001) == "-0.001%"
    assert fmt_signed_pct(0.0) == "0%"
