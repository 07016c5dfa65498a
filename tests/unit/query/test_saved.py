"""Saved queries and the query history on a local lake folder: names, parameters, the
guard at save time, bounded history newest first."""

from __future__ import annotations

from pathlib import Path

import pytest

from tickerlake.config import Settings
from tickerlake.errors import NotFoundError, QueryRefused
from tickerlake.query.history import HistoryEntry, QueryHistory, new_id
from tickerlake.query.saved import SavedQueryError, SavedQueryStore, check_name, parse_param_spec


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "lake").mkdir()
    return Settings(lake=str(tmp_path / "lake"))


def test_names() -> None:
    assert check_name("daily_top_3") == "daily_top_3"
    for bad in ("", "A", "3x", "a-b", "a/b", "..", "x" * 64, "é", "close_by_ticker"):
        with pytest.raises(SavedQueryError):
            check_name(bad)


def test_param_specs() -> None:
    p = parse_param_spec("start:date:first day, inclusive")
    assert (p.name, p.type, p.optional, p.doc) == ("start", "date", False, "first day, inclusive")
    p = parse_param_spec("tickers:tickers?")
    assert (p.name, p.type, p.optional, p.doc) == ("tickers", "tickers", True, "")
    for bad in ("start", "start:datetime", "1x:int", ":int"):
        with pytest.raises(SavedQueryError):
            parse_param_spec(bad)


def test_save_declares_parameters_and_keeps_creation_time(settings: Settings) -> None:
    store = SavedQueryStore(settings)
    q = store.save(
        "recent",
        "SELECT * FROM t WHERE d >= $since AND x = $x",
        "Recent rows",
        [parse_param_spec("since:date")],
    )
    assert [(p.name, p.type) for p in q.params] == [("since", "date"), ("x", "text")]
    assert store.get("recent") == q and store.list() == [q]
    with pytest.raises(SavedQueryError, match="exists"):
        store.save("recent", "SELECT 1")
    changed = store.save("recent", "SELECT 2", replace=True)
    assert changed.created_at == q.created_at and changed.sql == "SELECT 2" and changed.params == ()
    with pytest.raises(SavedQueryError, match="declared but the SQL has no"):
        store.save("other", "SELECT 1", params=[parse_param_spec("n:int")])
    with pytest.raises(SavedQueryError, match="cannot use '\\?'"):
        store.save("other", "SELECT ?")
    with pytest.raises(QueryRefused):
        store.save("other", "CREATE TABLE x AS SELECT 1")
    assert store.delete("recent").name == "recent"
    with pytest.raises(NotFoundError):
        store.get("recent")
    assert store.list() == []


def _entry(i: int, status: str = "ok") -> HistoryEntry:
    run_id, started = new_id()
    return HistoryEntry(run_id, started, "cli", "me", f"SELECT {i}", None, {}, status, 1.0, 1)


def test_history_is_bounded_and_newest_first(settings: Settings) -> None:
    history = QueryHistory(settings, keep=5)
    for i in range(12):
        assert history.record(_entry(i, "error" if i % 2 else "ok"))
    entries = history.entries(limit=50)
    assert [e.sql for e in entries] == [f"SELECT {i}" for i in (11, 10, 9, 8, 7)]
    assert [e.sql for e in history.entries(limit=2, status="error")] == ["SELECT 11", "SELECT 9"]
    assert history.clear() == 5 and history.entries() == []


def test_history_never_creates_a_missing_lake(tmp_path: Path) -> None:
    settings = Settings(lake=str(tmp_path / "typo"))
    assert not QueryHistory(settings).record(_entry(1))
    assert not (tmp_path / "typo").exists()


def test_a_large_history_is_pruned_every_twentieth_run(settings: Settings) -> None:
    history = QueryHistory(settings, keep=20)
    for i in range(45):
        history.record(_entry(i))
    # Pruned to 20 at the 1st, 21st and 41st run; the 4 runs after the last pruning are added.
    entries = history.entries(limit=100)
    assert len(entries) == 24 and entries[0].sql == "SELECT 44" and entries[-1].sql == "SELECT 21"
