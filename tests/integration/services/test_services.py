"""The dev services for real: a Kafka broker and S3Proxy started by the launcher, used by clients."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from typer.testing import CliRunner

from tickerlake.cli import app
from tickerlake.config import Settings
from tickerlake.errors import TickerlakeError
from tickerlake.lake.storage import LakeStorage
from tickerlake.services import S3Endpoint, bootstrap_servers, status, up
from tickerlake.services._proc import free_port, process_start_ticks

pytestmark = pytest.mark.integration

__all__: list[str] = []


def _create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
    ).values():
        fut.result(timeout=30)


def test_broker_creates_topic_and_round_trips_messages(kafka_bootstrap: str) -> None:
    topic = f"it-services-{uuid.uuid4().hex[:8]}"
    _create_topic(kafka_bootstrap, topic, partitions=3)
    md = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(topic, timeout=10)
    assert len(md.topics[topic].partitions) == 3

    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True, "acks": "all"})
    sent = [(f"T{i % 3}", f"msg-{i}") for i in range(30)]
    for key, value in sent:
        producer.produce(topic, key=key.encode(), value=value.encode())
    assert producer.flush(30) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"it-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    got: list[tuple[str, str]] = []
    deadline = time.monotonic() + 60
    try:
        while len(got) < len(sent) and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            got.append((msg.key().decode(), msg.value().decode()))
    finally:
        consumer.close()

    assert sorted(got) == sorted(sent)
    # Same key, same partition: each key's messages come back in the order they were sent.
    for key in ("T0", "T1", "T2"):
        assert [v for k, v in got if k == key] == [v for k, v in sent if k == key]


def _fs(s3: S3Endpoint) -> pafs.S3FileSystem:
    return pafs.S3FileSystem(
        access_key=s3.access_key_id,
        secret_key=s3.secret_access_key,
        region=s3.region,
        endpoint_override=s3.endpoint_url.removeprefix("http://"),
        scheme="http",
    )


def test_s3proxy_put_get_list(s3_endpoint: S3Endpoint) -> None:
    fs = _fs(s3_endpoint)
    prefix = f"{s3_endpoint.bucket}/it-{uuid.uuid4().hex[:8]}"
    with fs.open_output_stream(f"{prefix}/a/one.txt") as f:
        f.write(b"first")
    with fs.open_output_stream(f"{prefix}/b.txt") as f:
        f.write(b"second object")

    with fs.open_input_stream(f"{prefix}/a/one.txt") as f:
        assert f.read() == b"first"
    files = sorted(
        (i.path, i.size)
        for i in fs.get_file_info(pafs.FileSelector(prefix, recursive=True))
        if i.type == pafs.FileType.File
    )
    assert files == [(f"{prefix}/a/one.txt", 5), (f"{prefix}/b.txt", 13)]


def test_s3proxy_takes_multipart_uploads(s3_endpoint: S3Endpoint) -> None:
    # Arrow uploads in 10 MiB parts, so 12 MiB goes up as a two-part multipart upload.
    fs = _fs(s3_endpoint)
    path = f"{s3_endpoint.bucket}/it-{uuid.uuid4().hex[:8]}/big.bin"
    payload = bytes(range(256)) * (12 * 4096)
    with fs.open_output_stream(path) as f:
        f.write(payload)

    assert fs.get_file_info(path).size == 12 * 2**20
    with fs.open_input_stream(path) as f:
        assert f.read() == payload


def test_s3proxy_rejects_wrong_secret(s3_endpoint: S3Endpoint) -> None:
    fs = pafs.S3FileSystem(
        access_key=s3_endpoint.access_key_id,
        secret_key="not-the-secret",
        region=s3_endpoint.region,
        endpoint_override=s3_endpoint.endpoint_url.removeprefix("http://"),
        scheme="http",
    )
    with pytest.raises(OSError):
        fs.get_file_info(pafs.FileSelector(s3_endpoint.bucket))


def test_lake_storage_round_trip_on_s3(s3_endpoint: S3Endpoint) -> None:
    lake = f"s3://{s3_endpoint.bucket}/lake-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        lake=lake,
        s3_endpoint=s3_endpoint.endpoint_url,
        s3_access_key_id=s3_endpoint.access_key_id,
        s3_secret_access_key=s3_endpoint.secret_access_key,
    )
    storage = LakeStorage(settings)
    raw = storage.uri("raw", "daily_bars", "source=csv", "part-1.csv")
    nested = storage.uri("raw", "daily_bars", "source=csv", "date=2024-01-02", "part-2.csv")
    hidden = storage.uri("raw", "daily_bars", "_tmp", "ignored.csv")
    storage.write_bytes(raw, b"ticker,date\nAAPL,2024-01-02\n")
    storage.write_bytes(nested, b"x")
    storage.write_bytes(hidden, b"y")

    assert storage.read_bytes(raw) == b"ticker,date\nAAPL,2024-01-02\n"
    assert storage.exists(raw)
    listed = [(e.uri, e.size) for e in storage.list_files(storage.uri("raw"))]
    assert listed == [(nested, 1), (raw, 28)]
    storage.delete(raw)
    assert not storage.exists(raw)
    assert [e.uri for e in storage.list_files(storage.uri("raw"))] == [nested]


def _cli(runner: CliRunner, lake: Path, *args: str) -> tuple[int, dict]:
    env = {"TICKERLAKE_STATE_DIR": None, "TICKERLAKE_BOOTSTRAP_SERVERS": None, "TICKERLAKE_S3_ENDPOINT": None}
    result = runner.invoke(app, ["--lake", str(lake), "services", *args, "--json"], env=env)
    assert result.stdout.strip(), result.output
    return result.exit_code, json.loads(result.stdout)


def test_cli_up_is_idempotent_and_down_stops_the_pids(tmp_path: Path) -> None:
    runner = CliRunner()
    lake = tmp_path / "lake"
    try:
        code, first = _cli(runner, lake, "up")
        assert code == 0
        started = {s["name"]: s for s in first["services"]}
        assert {n: s["action"] for n, s in started.items()} == {"kafka": "started", "s3": "started"}
        assert first["bootstrap_servers"] == started["kafka"]["endpoint"]
        assert first["s3_endpoint"] == started["s3"]["endpoint"]
        pids = {n: s["pid"] for n, s in started.items()}
        assert all(process_start_ticks(p) is not None for p in pids.values())
        _create_topic(first["bootstrap_servers"], "kept-across-restarts", partitions=2)

        code, again = _cli(runner, lake, "up")
        assert code == 0
        assert {s["name"]: (s["action"], s["pid"]) for s in again["services"]} == {
            "kafka": ("reused", pids["kafka"]),
            "s3": ("reused", pids["s3"]),
        }

        code, st = _cli(runner, lake, "status")
        assert code == 0
        assert [s["state"] for s in st["services"]] == ["running", "running"]

        code, stopped = _cli(runner, lake, "down")
        assert code == 0
        assert {s["name"]: s["action"] for s in stopped["services"]} == {"kafka": "stopped", "s3": "stopped"}
        assert all(process_start_ticks(p) is None for p in pids.values())

        code, st = _cli(runner, lake, "status")
        assert code == 1
        assert [s["state"] for s in st["services"]] == ["stopped", "stopped"]

        # A restart keeps the broker's address and its topics.
        code, restarted = _cli(runner, lake, "up", "--only", "kafka")
        assert code == 0
        assert restarted["bootstrap_servers"] == first["bootstrap_servers"]
        md = AdminClient({"bootstrap.servers": restarted["bootstrap_servers"]}).list_topics(timeout=10)
        assert len(md.topics["kept-across-restarts"].partitions) == 2
    finally:
        _cli(runner, lake, "down")


def test_own_cluster_is_used_and_nothing_is_started(tmp_path: Path) -> None:
    own = f"127.0.0.1:{free_port()}"
    settings = Settings(lake=str(tmp_path / "lake"), bootstrap_servers=own)

    (kafka,) = up(settings, only="kafka")

    assert (kafka.state, kafka.action, kafka.endpoint, kafka.pid) == ("unreachable", "none", own, None)
    assert bootstrap_servers(settings) == own
    assert not (settings.local_state_dir / "services" / "kafka").exists()
    assert [s.state for s in status(settings, only="kafka")] == ["unreachable"]


def test_bootstrap_servers_without_any_kafka_says_what_to_do(tmp_path: Path) -> None:
    settings = Settings(lake=str(tmp_path / "lake"), bootstrap_servers="")
    with pytest.raises(TickerlakeError, match="tickerlake services up"):
        bootstrap_servers(settings)
