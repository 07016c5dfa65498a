"""Pure parts of the dev Kafka broker: generated config, cluster ids, client security settings."""

from __future__ import annotations

import base64
from pathlib import Path

from tickerlake.services.kafka import KafkaPorts, new_cluster_id, render_server_properties

__all__: list[str] = []


def _props(text: str) -> dict[str, str]:
    pairs = (ln.split("=", 1) for ln in text.splitlines() if ln and not ln.startswith("#"))
    return dict(pairs)


def test_server_properties_bind_loopback_with_both_roles() -> None:
    props = _props(render_server_properties(KafkaPorts(broker=19092, controller=19093), Path("/x/data")))

    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:19093"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["log.dirs"] == "/x/data"


def test_server_properties_suit_a_single_node() -> None:
    props = _props(render_server_properties(KafkaPorts(1, 2), Path("/d")))

    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
        "default.replication.factor",
        "min.insync.replicas",
    ):
        assert props[key] == "1", key
    assert props["group.initial.rebalance.delay.ms"] == "0"
    # Like a default Kafka: producers' topics are created on first use (issue 14).
    assert props["auto.create.topics.enable"] == "true"
    assert props["num.partitions"] == "8"


def test_cluster_id_is_16_bytes_in_unpadded_urlsafe_base64() -> None:
    ids = {new_cluster_id() for _ in range(200)}

    assert len(ids) == 200
    for cid in ids:
        assert len(cid) == 22
        assert not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16
