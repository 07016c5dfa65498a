"""The pure parts of ``maintain``: which files compaction groups, and the sort key."""

from tickerlake.lake.maintain import POSITION_KEYS, plan_bins, sort_columns
from tickerlake.stream.sink.offsets import OFFSETS_PROP, WATERMARKS_PROP

MB = 2**20


def test_small_files_are_grouped_into_bins_of_about_the_target() -> None:
    # 10 files of 30 MB with a 64 MB target: bins close once they reach 64 MB (3 files);
    # the last lone file joins the previous bin.
    assert plan_bins([30 * MB] * 10, 64 * MB) == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]


def test_large_files_are_left_alone_and_a_single_small_file_is_not_rewritten() -> None:
    # 48 MB is 3/4 of 64 MB: not small.
    assert plan_bins([48 * MB, 100 * MB, 1 * MB], 64 * MB) == []
    assert plan_bins([1 * MB, 70 * MB, 2 * MB], 64 * MB) == [[0, 2]]
    assert plan_bins([], 64 * MB) == []


def test_sort_key() -> None:
    assert sort_columns(["ticker", "ts", "price"]) == ["ticker", "ts"]
    assert sort_columns(["ticker", "date", "close"]) == ["ticker", "date"]
    assert sort_columns(["dataset", "reason"]) == []


def test_maintenance_commits_repeat_the_sinks_position() -> None:
    assert set(POSITION_KEYS) == {OFFSETS_PROP, WATERMARKS_PROP}
