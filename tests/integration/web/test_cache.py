"""The dashboard's cache follows the lake: a commit to the catalog is seen by the next request."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from tickerlake.config import Settings
from tickerlake.insights import NoData
from tickerlake.lake.catalog import ensure_table, open_catalog
from tickerlake.lake.contract import DAILY_BARS, arrow_schema
from tickerlake.web.data import LakeCache

pytestmark = pytest.mark.integration

NOW = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)


def bars(rows: list[tuple[str, str, float]]) -> pa.Table:
    records = [
        {"ticker": t, "date": dt.date.fromisoformat(d), "open": c, "high": c, "low": c, "close": c,
         "adj_close": c, "volume": 10, "source": "test", "ingested_at": NOW}
        for t, d, c in rows
    ]  # fmt: skip
    return pa.Table.from_pylist(records, schema=arrow_schema(DAILY_BARS))


def test_a_commit_reloads_the_bars_and_drops_cached_answers(tmp_path: Path) -> None:
    settings = Settings(lake=str(tmp_path / "lake"))
    table = ensure_table(open_catalog(settings), "market.daily_bars")
    table.append(bars([("AAPL", "2023-01-09", 10.0), ("AAPL", "2023-01-10", 11.0)]))
    cache = LakeCache(settings)
    first = cache.market()
    assert first.tickers == ("AAPL",) and len(first.dates) == 2
    assert cache.market() is first  # nothing changed: the same data, no reload
    calls: list[int] = []

    def answer(market: object) -> dict[str, int]:
        calls.append(1)
        return {"days": len(market.dates)}  # type: ignore[attr-defined]

    assert cache.cached(("days",), answer) == b'{"days":2}'
    assert cache.cached(("days",), answer) == b'{"days":2}'
    assert len(calls) == 1
    table.append(bars([("MSFT", "2023-01-11", 50.0)]))
    second = cache.market()
    assert second is not first and second.tickers == ("AAPL", "MSFT") and len(second.dates) == 3
    assert cache.cached(("days",), answer) == b'{"days":3}'
    assert len(calls) == 2


def test_an_empty_lake_has_no_tickers(tmp_path: Path) -> None:
    settings = Settings(lake=str(tmp_path / "lake"))
    open_catalog(settings)
    assert LakeCache(settings).market().empty


def test_a_missing_lake_is_reported_without_creating_one(tmp_path: Path) -> None:
    settings = Settings(lake=str(tmp_path / "typo"))
    with pytest.raises(NoData, match="no lake at"):
        LakeCache(settings).market()
    assert not (tmp_path / "typo").exists()


def test_pages_explain_a_missing_lake_and_the_api_answers_404(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from tickerlake.web.app import create_app

    client = TestClient(create_app(Settings(lake=str(tmp_path / "typo"))), raise_server_exceptions=False)
    page = client.get("/")
    assert page.status_code == 200 and "no lake at" in page.text
    resp = client.get("/api/bars")
    assert resp.status_code == 404 and resp.json()["error"] == "NoData"
    assert not (tmp_path / "typo").exists()


def test_answers_are_kept_up_to_a_byte_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tickerlake.web.data as data

    settings = Settings(lake=str(tmp_path / "lake"))
    ensure_table(open_catalog(settings), "market.daily_bars").append(bars([("AAPL", "2023-01-09", 10.0)]))
    monkeypatch.setattr(data, "RESULT_CACHE_BYTES", 100)
    cache = LakeCache(settings)
    calls: list[str] = []

    def answer(key: str) -> Callable[[object], bytes]:
        def compute(market: object) -> bytes:
            calls.append(key)
            return b"x" * 40

        return compute

    for key in ("a", "b", "c"):  # 120 bytes: the oldest answer goes
        cache.cached((key,), answer(key))
    cache.cached(("c",), answer("c"))
    cache.cached(("a",), answer("a"))
    assert calls == ["a", "b", "c", "a"]
    cache.cached(("big",), lambda m: b"y" * 101)  # larger than the bound: sent, not kept
    cache.cached(("big",), lambda m: b"y" * 101)
    assert cache.misses == 6 and cache.hits == 1


def test_idle_time_is_zero_while_an_answer_is_computed(tmp_path: Path) -> None:
    # serve's warm-up waits on it before counting the raw tables (not during an answer).
    settings = Settings(lake=str(tmp_path / "lake"))
    ensure_table(open_catalog(settings), "market.daily_bars").append(bars([("AAPL", "2023-01-09", 10.0)]))
    cache = LakeCache(settings)
    assert cache.idle_s() == float("inf")  # nothing computed yet
    seen: list[float] = []

    def answer(market: object) -> dict[str, int]:
        seen.append(cache.idle_s())
        return {"n": 1}

    cache.cached(("n",), answer)
    assert seen == [0.0]
    assert 0.0 < cache.idle_s() < 60.0
    with pytest.raises(RuntimeError):
        cache.cached(("boom",), lambda m: (_ for _ in ()).throw(RuntimeError("x")))
    assert 0.0 < cache.idle_s() < 60.0  # a failed answer ends too
