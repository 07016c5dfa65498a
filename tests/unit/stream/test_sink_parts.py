"""The sink's smaller parts, pure: table position from summaries, raw lines, dead letters, slots, client config."""

from __future__ import annotations

import json
import os

import numpy as np

from tickerlake.config import Settings
from tickerlake.stream._kafka import client_config
from tickerlake.stream.schema import Rules, decode_ticks, encode_ticks
from tickerlake.stream.sink import claim_slot, raw_file_name
from tickerlake.stream.sink.batch import PartitionBatch
from tickerlake.stream.sink.deadletters import dead_letter
from tickerlake.stream.sink.offsets import OFFSETS_PROP, WATERMARKS_PROP, state_from_summaries
from tickerlake.stream.sink.rawfiles import raw_lines

T0 = 1_577_975_400_000_000


class FakeMessage:
    """The two things a dead letter reads from a Kafka record besides its value."""

    def __init__(self, key: bytes | None, ts_ms: int) -> None:
        self._key, self._ts = key, ts_ms

    def key(self) -> bytes | None:
        return self._key

    def timestamp(self) -> tuple[int, int]:
        return (1, self._ts)


def batch(values: list[bytes | None], first: int = 100) -> PartitionBatch:
    offsets = np.arange(first, first + len(values), dtype=np.int64)
    messages = [FakeMessage(b"AAPL", 1_000 + i) for i in range(len(values))]
    return PartitionBatch(
        3, offsets, values, decode_ticks(values, Rules(), {}), start=first, messages=messages
    )  # type: ignore[arg-type]


def ticks(n: int) -> list[bytes | None]:
    seq = np.arange(n)
    return list(
        encode_ticks(["AAPL"] * n, seq * 1_000_000 + T0, np.full(n, 1.5), np.ones(n, dtype=np.int64), seq)
    )


def test_the_newest_summary_with_offsets_is_the_position() -> None:
    summaries = [
        {"operation": "replace"},  # a snapshot written by another tool
        None,
        {OFFSETS_PROP: json.dumps({"t/0": 5, "u/1": 7}), WATERMARKS_PROP: json.dumps({"t/0": {"AAPL": 9}})},
        {OFFSETS_PROP: json.dumps({"t/0": 1})},
    ]
    state = state_from_summaries(summaries, 42)
    assert state.snapshot_id == 42
    assert state.for_topic("t") == {0: 5} and state.for_topic("u") == {1: 7}
    assert state.marks_of("t", 0) == {"AAPL": 9} and state.marks_of("t", 1) == {}
    assert state_from_summaries([], None).offsets == {}


def test_raw_lines_put_the_offset_first_and_leave_out_rejected_records() -> None:
    values = ticks(3)
    values[1] = b"garbage"
    lines = raw_lines(batch(values)).decode().splitlines()
    assert [json.loads(line)["kafka_offset"] for line in lines] == [100, 102]
    assert lines[0].startswith('{"kafka_offset":100,"ticker":"AAPL"')
    assert raw_file_name("t", 3, 100, 102) == "t-3-00000000000000000100-00000000000000000102.jsonl"


def test_a_dead_letter_carries_the_reason_and_the_source_position() -> None:
    values = [*ticks(1), b"\xff\xfe"]
    part = batch(values)
    [(pos, reason)] = part.decoded.rejected
    key, value, headers = dead_letter("t", part, pos, reason, "sink-a", "2020-01-01T00:00:00.000+00:00")
    body = json.loads(value)
    assert key == b"t/3/101"
    assert body["source_offset"] == 101 and body["source_partition"] == 3
    assert body["value_encoding"] == "base64" and body["key"] == "AAPL"
    assert body["source_timestamp_ms"] == 1_001 and body["sink"] == "sink-a"
    assert dict(headers)["tickerlake.source.offset"] == b"101"
    assert dict(headers)["tickerlake.reason"] == reason.encode()


def test_two_live_sinks_never_share_a_slot_and_a_freed_slot_is_reused(tmp_path) -> None:
    settings = Settings(lake=str(tmp_path / "lake"), state_dir=str(tmp_path / "state"))
    first, fd0 = claim_slot(settings, "g", "ticks")
    second, fd1 = claim_slot(settings, "g", "ticks")
    try:
        assert first.endswith("-0") and second.endswith("-1")
        os.close(fd0)
        again, fd0 = claim_slot(settings, "g", "ticks")
        assert again == first
    finally:
        os.close(fd0)
        os.close(fd1)


def test_a_slot_id_is_never_shared_by_sinks_of_other_topics_or_lakes(tmp_path) -> None:
    # The broker hands a returning static member its old assignment whatever it now
    # subscribes to: an id reused for another topic would read that topic into this lake.
    a = Settings(lake=str(tmp_path / "a"), state_dir=str(tmp_path / "state-a"))
    b = Settings(lake=str(tmp_path / "b"), state_dir=str(tmp_path / "state-b"))
    ids, fds = [], []
    for settings, topic in ((a, "ticks"), (a, "bars"), (b, "ticks")):
        instance, fd = claim_slot(settings, "g", topic)
        ids.append(instance)
        fds.append(fd)
    try:
        assert len(set(ids)) == 3 and all(i.endswith("-0") for i in ids)
        assert "ticks" in ids[0] and "bars" in ids[1]
    finally:
        for fd in fds:
            os.close(fd)


def test_client_config_is_empty_for_plaintext() -> None:
    assert client_config(Settings(kafka_security_protocol="PLAINTEXT")) == {}


def test_client_config_carries_sasl_and_tls() -> None:
    settings = Settings(
        kafka_security_protocol="sasl_ssl",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="svc",
        kafka_sasl_password="pw",
        kafka_ssl_ca_location="/etc/ca.pem",
    )
    assert client_config(settings) == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "svc",
        "sasl.password": "pw",
        "ssl.ca.location": "/etc/ca.pem",
    }
