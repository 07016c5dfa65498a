"""Kafka plumbing shared by replay, sink and status: addresses, client settings, topics, watermarks."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tickerlake.config import Settings
from tickerlake.errors import TickerlakeError, TransientError

__all__ = [
    "admin_client",
    "base_config",
    "ensure_topic",
    "plain_consumer",
    "resolve_bootstrap",
    "topic_partitions",
    "watermarks",
]

# librdkafka logs warnings (e.g. "coordinator load in progress: retrying") that retries
# cure on their own; errors still show.
_LOG_LEVEL = 3
# Errors that mean "a partition's leader is being elected": right after creation or a restart.
_LEADER_MOVING = (
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
)


def resolve_bootstrap(settings: Settings, override: str | None = None) -> str:
    """The cluster to use: ``--bootstrap-servers``, else the settings, else the running dev broker.

    Raises:
        TickerlakeError: If there is none, with how to get one.
    """
    if override and override.strip():
        return override.strip()
    # Imported here: the launcher pulls in process helpers that only this path needs.
    from tickerlake.services import bootstrap_servers

    return bootstrap_servers(settings)


def base_config(settings: Settings, bootstrap: str) -> dict[str, Any]:
    """librdkafka settings every client gets: address, security (SASL/TLS), log level."""
    from tickerlake.services.kafka import client_config

    return {"bootstrap.servers": bootstrap, "log_level": _LOG_LEVEL, **client_config(settings)}


def admin_client(settings: Settings, bootstrap: str) -> AdminClient:
    """An admin client for topic management and metadata."""
    return AdminClient(base_config(settings, bootstrap))


def _unreachable(bootstrap: str, e: BaseException) -> TransientError:
    return TransientError(f"Kafka at {bootstrap} does not answer ({e}); is it running?")


def topic_partitions(
    admin: AdminClient, topic: str, bootstrap: str, timeout_s: float = 10.0
) -> list[int] | None:
    """Partition ids of a topic, or None when it does not exist.

    Raises:
        TransientError: If the cluster does not answer.
    """
    try:
        md = admin.list_topics(topic=topic, timeout=timeout_s)
    except KafkaException as e:
        raise _unreachable(bootstrap, e) from None
    info = md.topics.get(topic)
    if info is None or (info.error is not None and info.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART):
        return None
    if info.error is not None:
        raise TickerlakeError(f"topic {topic!r}: {info.error.str()}")
    return sorted(info.partitions)


def ensure_topic(
    admin: AdminClient,
    topic: str,
    partitions: int,
    bootstrap: str,
    config: dict[str, str] | None = None,
    timeout_s: float = 30.0,
) -> tuple[bool, int]:
    """Create a topic when missing (replication factor: the cluster's default).

    Returns:
        ``(created now, number of partitions)``.

    Raises:
        TickerlakeError: If it cannot be created (permissions, bad name, ...).
    """
    existing = topic_partitions(admin, topic, bootstrap)
    if existing is not None:
        return False, len(existing)
    if partitions < 1:
        raise TickerlakeError(f"partitions must be at least 1, got {partitions}")
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=-1, config=config or {})],
        operation_timeout=timeout_s,
    )
    created = True
    try:
        futures[topic].result(timeout=timeout_s)
    except KafkaException as e:
        err = e.args[0] if e.args else None
        if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            created = False  # another process won the race
        else:
            raise TickerlakeError(f"cannot create topic {topic!r}: {err.str() if err else e}") from None
    # Metadata reaches every broker a moment after creation; wait so the first produce or
    # assignment does not see a missing topic.
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            md = admin.list_topics(topic=topic, timeout=5.0)
        except KafkaException:
            md = None
        info = md.topics.get(topic) if md is not None else None
        if (
            info is not None
            and info.error is None
            and info.partitions
            and all(pm.leader >= 0 and pm.error is None for pm in info.partitions.values())
        ):
            return created, len(info.partitions)
        time.sleep(0.1)
    raise TickerlakeError(f"topic {topic!r} was created but its partitions have no leader yet")


def plain_consumer(settings: Settings, bootstrap: str, **extra: Any) -> Consumer:
    """A consumer outside any group, for watermark queries and reading topics by offset."""
    conf = base_config(settings, bootstrap)
    conf.update({"group.id": "tickerlake-inspect", "enable.auto.commit": False, **extra})
    return Consumer(conf)


def read_range(
    consumer: Consumer, topic: str, ranges: dict[int, tuple[int, int]], timeout_s: float = 30.0
) -> list[Any]:
    """The records of ``[start, end)`` per partition, read with an assigned (group-less) consumer.

    Raises:
        TickerlakeError: If they do not all arrive within the timeout.
    """
    wanted = {p: (s, e) for p, (s, e) in ranges.items() if e > s}
    if not wanted:
        return []
    consumer.assign([TopicPartition(topic, p, s) for p, (s, _) in wanted.items()])
    out: list[Any] = []
    left = sum(e - s for s, e in wanted.values())
    deadline = time.monotonic() + timeout_s
    try:
        while left > 0 and time.monotonic() < deadline:
            for m in consumer.consume(num_messages=10_000, timeout=0.5):
                if m.error() is not None:
                    continue
                start, end = wanted.get(m.partition(), (0, 0))
                if start <= m.offset() < end:
                    out.append(m)
                    left -= 1
    finally:
        consumer.unassign()
    if left > 0:
        raise TickerlakeError(f"{left} record(s) of {topic!r} did not arrive within {timeout_s:g} s")
    return out


def watermarks(
    consumer: Consumer, topic: str, partitions: list[int], bootstrap: str, timeout_s: float = 10.0
) -> dict[int, tuple[int, int]]:
    """Low and high watermark (first offset, next offset to be written) per partition."""
    out: dict[int, tuple[int, int]] = {}
    deadline = time.monotonic() + timeout_s
    for p in partitions:
        while True:
            try:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=max(deadline - time.monotonic(), 1.0), cached=False
                )
                out[p] = (low, high)
                break
            except KafkaException as e:
                err = e.args[0] if e.args else None
                retriable = isinstance(err, KafkaError) and err.code() in _LEADER_MOVING
                if not retriable or time.monotonic() > deadline:
                    raise _unreachable(bootstrap, e) from None
                time.sleep(0.1)
    return out
