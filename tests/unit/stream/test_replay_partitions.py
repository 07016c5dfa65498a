"""Where ``stream replay`` puts each default ticker: evenly, one partition per ticker."""

from collections import Counter

import pytest

from tickerlake.config import DEFAULT_TICKERS
from tickerlake.stream.replay import ticker_partition


def test_eight_partitions_give_each_ticker_its_own() -> None:
    assert sorted(ticker_partition(t, 8) for t in DEFAULT_TICKERS) == list(range(8))


def test_twelve_partitions_spread_the_tickers_out() -> None:
    assert [ticker_partition(t, 12) for t in DEFAULT_TICKERS] == [0, 1, 3, 4, 6, 7, 9, 10]


@pytest.mark.parametrize(
    ("partitions", "loads"), [(1, [8]), (3, [3, 3, 2]), (4, [2, 2, 2, 2]), (6, [2, 2, 1, 1, 1, 1])]
)
def test_fewer_partitions_than_tickers_take_turns(partitions: int, loads: list[int]) -> None:
    counts = Counter(ticker_partition(t, partitions) for t in DEFAULT_TICKERS)
    assert sorted(counts) == list(range(partitions))
    assert sorted(counts.values(), reverse=True) == loads


def test_other_tickers_and_bad_counts_are_refused() -> None:
    with pytest.raises(ValueError):
        ticker_partition("IBM", 8)
    with pytest.raises(ValueError):
        ticker_partition("AAPL", 0)
