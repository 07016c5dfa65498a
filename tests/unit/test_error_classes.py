"""Each area raises its failures in the right class of the error policy (one case per area).

The class decides the CLI's exit code and the web's HTTP status (:mod:`tickerlake.errors`),
so these tests pin the class, not only the message.
"""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.exceptions import CommitFailedException, NoSuchTableError, TableAlreadyExistsError

import tickerlake.retry
from tickerlake.config import Settings
from tickerlake.errors import NotFoundError, TickerlakeError, TransientError, UserError
from tickerlake.insights import (
    BadInput,
    DateOutsideData,
    EmptyWindow,
    NoData,
    NotATradingDay,
    UnknownPeriod,
    UnknownTicker,
    WindowTooShort,
)
from tickerlake.insights.errors import InsightError
from tickerlake.jsonable import jsonable
from tickerlake.lake import catalog as catalog_module
from tickerlake.lake import etl
from tickerlake.lake.contract import CATALOG_DB_FILE, STATE_DIR
from tickerlake.lake.crawler import scan_raw_zone
from tickerlake.lake.storage import duckdb_s3_statements
from tickerlake.query.engine import QueryEngine
from tickerlake.query.results import jsonable as query_jsonable
from tickerlake.services import jars
from tickerlake.services import kafka as kafka_svc
from tickerlake.stream.replay import replay
from tickerlake.stream.sink.loop import SinkOptions, StreamSink


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    # The retry helper looks its sleep up per call: the backoff costs no time here.
    monkeypatch.setattr(tickerlake.retry.time, "sleep", lambda _s: None)


# ---------------------------------------------------------------------------- insights


@pytest.mark.parametrize("cls", [UnknownTicker, UnknownPeriod, NoData])
def test_missing_things_in_insights_are_not_found(cls: type[InsightError]) -> None:
    assert issubclass(cls, NotFoundError) and not issubclass(cls, UserError)


@pytest.mark.parametrize("cls", [BadInput, DateOutsideData, NotATradingDay, EmptyWindow, WindowTooShort])
def test_other_insight_errors_are_user_errors(cls: type[InsightError]) -> None:
    assert issubclass(cls, UserError) and not issubclass(cls, NotFoundError)
    assert issubclass(cls, InsightError)  # still caught by the insight engine's own base


# ---------------------------------------------------------------------------- query and lake


def test_a_missing_lake_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no lake at"):
        QueryEngine(Settings(lake=str(tmp_path / "nowhere")))


def test_a_lake_without_a_raw_zone_is_not_found(tmp_path: Path) -> None:
    (tmp_path / "lake").mkdir()
    with pytest.raises(NotFoundError, match="no raw zone"):
        scan_raw_zone(Settings(lake=str(tmp_path / "lake")))


class _LosingTable:
    """A table whose every commit loses the race to another writer."""

    def __init__(self) -> None:
        self.properties: dict[str, str] = {}

    def schema(self) -> Any:
        return etl.TABLES["market.daily_bars"]  # up to date: only the properties commit is tried

    def transaction(self) -> Any:
        raise CommitFailedException("the table changed")


def test_etl_gives_up_on_too_many_writers_with_a_transient_error(monkeypatch: pytest.MonkeyPatch) -> None:
    tries: list[str] = []

    def ensure_table(_catalog: object, identifier: str) -> _LosingTable:
        tries.append(identifier)
        return _LosingTable()

    monkeypatch.setattr(etl, "ensure_table", ensure_table)
    with pytest.raises(TransientError, match=r"too many concurrent writers\?") as info:
        etl._prepared(object(), "market.daily_bars")  # type: ignore[arg-type]
    assert info.value.exhausted  # not retried again by an outer loop
    assert len(tries) == etl._QUARANTINE_ATTEMPTS


class _RacingCatalog:
    """A catalog in which another process creates the table first, and finishes late."""

    def __init__(self, unfinished: int) -> None:
        self.unfinished = unfinished
        self.loads = 0

    def create_namespace(self, _namespace: str) -> None:
        return None

    def create_table_if_not_exists(self, *_args: object, **_kw: object) -> Any:
        raise TableAlreadyExistsError("market.daily_bars")

    def load_table(self, identifier: str) -> str:
        self.loads += 1
        if self.loads <= self.unfinished:
            raise NoSuchTableError(identifier)
        return "the winner's table"


def test_ensure_table_loads_what_the_winner_of_a_race_created() -> None:
    catalog = _RacingCatalog(unfinished=2)
    assert catalog_module.ensure_table(catalog, "market.daily_bars") == "the winner's table"  # type: ignore[arg-type]
    assert catalog.loads == 3


def test_ensure_table_gives_up_on_a_race_that_never_settles() -> None:
    with pytest.raises(TransientError, match=r"creating market\.daily_bars: gave up after 5 attempts"):
        catalog_module.ensure_table(_RacingCatalog(unfinished=99), "market.daily_bars")  # type: ignore[arg-type]


def test_s3_secrets_are_quoted_as_sql_literals() -> None:
    settings = Settings(
        lake="s3://bucket/lake",
        s3_endpoint="http://127.0.0.1:9000",
        s3_access_key_id="it's",
        s3_secret_access_key="se'cret",
    )
    (statement,) = duckdb_s3_statements(settings)
    assert "KEY_ID 'it''s'" in statement and "SECRET 'se''cret'" in statement
    assert "ENDPOINT '127.0.0.1:9000'" in statement


def test_settings_take_the_layout_from_the_contract(tmp_path: Path) -> None:
    settings = Settings(lake=str(tmp_path))
    assert settings.local_state_dir == tmp_path / STATE_DIR
    assert settings.resolved_catalog_uri == f"sqlite:///{tmp_path}/{CATALOG_DB_FILE}"


# ---------------------------------------------------------------------------- stream


def test_bad_sink_options_are_user_errors() -> None:
    with pytest.raises(UserError, match="max records"):
        StreamSink(Settings(), SinkOptions(topic="t", max_records=0))


def test_bad_replay_arguments_are_user_errors() -> None:
    with pytest.raises(UserError, match="rate must be positive"):
        replay(Settings(), pa.table({}), mode="bars", rate=-1.0)


# ---------------------------------------------------------------------------- services


def test_missing_java_is_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(jars.shutil, "which", lambda _name: None)
    jars.java_executable.cache_clear()
    try:
        with pytest.raises(UserError, match="java not found"):
            jars.java_executable()
    finally:
        jars.java_executable.cache_clear()


def test_a_service_that_does_not_answer_in_time_is_transient(tmp_path: Path) -> None:
    with pytest.raises(TransientError, match="did not answer within"):
        kafka_svc.wait_until_healthy("127.0.0.1:1", lambda: True, tmp_path / "kafka.log", timeout_s=0.0)


# ---------------------------------------------------------------------------- JSON


def test_one_jsonable_for_results_and_query_rows() -> None:
    assert query_jsonable is jsonable
    values = [
        decimal.Decimal("12"),
        decimal.Decimal("1.5"),
        b"\x00\xff",
        dt.time(9, 30),
        dt.timedelta(minutes=1),
        pa.MonthDayNano([1, 2, 3_000_000_000]),
        float("nan"),
        (1, "a"),
    ]
    assert jsonable(values) == [12, 1.5, "AP8=", "09:30:00", 60.0, "P1M2DT3S", None, [1, "a"]]


def test_a_bare_tickerlake_error_is_still_caught_as_one() -> None:
    # The new classes stay TickerlakeErrors: existing `except TickerlakeError` keeps working.
    for cls in (NotFoundError, UserError, TransientError):
        assert issubclass(cls, TickerlakeError)


def test_object_store_lakes_get_a_catalog_file_each(tmp_path) -> None:
    a = Settings(lake="s3://bucket/a", state_dir=str(tmp_path))
    b = Settings(lake="s3://bucket/b", state_dir=str(tmp_path))
    again = Settings(lake="s3://bucket/a/", state_dir=str(tmp_path))
    assert a.resolved_catalog_uri != b.resolved_catalog_uri
    assert a.resolved_catalog_uri == again.resolved_catalog_uri
    assert a.resolved_catalog_uri.startswith(f"sqlite:///{tmp_path}/catalogs/")
