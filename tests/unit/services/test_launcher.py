"""The launcher's state file format."""

from __future__ import annotations

import json

import pytest

from tickerlake.errors import TickerlakeError
from tickerlake.services.launcher import ServiceRecord, dump_state, parse_state

__all__: list[str] = []

_KAFKA = ServiceRecord(
    name="kafka",
    pid=4242,
    start_ticks=987654,
    ports={"broker": 19092, "controller": 19093},
    endpoint="127.0.0.1:19092",
    log_path="/s/services/kafka/kafka.log",
    service_dir="/s/services/kafka",
    started_at="2026-01-02T03:04:05+00:00",
    startup_s=4.5,
)


def test_state_round_trips() -> None:
    ports = {"kafka": {"broker": 19092, "controller": 19093}, "s3": {"http": 18080}}

    records, got_ports = parse_state(dump_state({"kafka": _KAFKA}, ports))

    assert records == {"kafka": _KAFKA}
    assert got_ports == ports


def test_state_json_layout() -> None:
    doc = json.loads(dump_state({"kafka": _KAFKA}, {"kafka": {"broker": 19092, "controller": 19093}}))

    assert doc["version"] == 1
    assert doc["running"]["kafka"]["pid"] == 4242
    assert doc["running"]["kafka"]["start_ticks"] == 987654
    assert doc["ports"] == {"kafka": {"broker": 19092, "controller": 19093}}


@pytest.mark.parametrize(
    "text", ["not json", '{"version": 99}', '{"version": 1, "running": {"kafka": {"pid": 1}}}']
)
def test_unreadable_state_is_a_one_line_error(text: str) -> None:
    with pytest.raises(TickerlakeError, match="unreadable services state file"):
        parse_state(text)
