"""Kafka plumbing shared by replay, sink and status: addresses, client settings, topics, watermarks.

This is where ``confluent_kafka`` is imported, and where the client configuration for the
user's own cluster (security settings) lives. The sink and ``status`` build their clients,
positions and error checks through the functions here and name its classes
(``_kafka.Consumer``, ``_kafka.Message``, ...) in their type hints.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from tickerlake.config import Settings
from tickerlake.errors import InternalError, TickerlakeError, TransientError, UserError
from tickerlake.retry import retry

__all__ = [
    "AdminClient",
    "Consumer",
    "Message",
    "Producer",
    "TopicPartition",
    "admin_client",
    "assign_from",
    "base_config",
    "client_config",
    "commit_offsets",
    "committed_offsets",
    "ensure_topic",
    "fatal_consumer_error",
    "is_partition_eof",
    "log_start",
    "new_consumer",
    "new_producer",
    "offset_of",
    "plain_consumer",
    "positions",
    "read_range",
    "resolve_bootstrap",
    "seek",
    "start_position",
    "topic_partitions",
    "watermarks",
]

# librdkafka logs warnings (e.g. "coordinator load in progress: retrying") that retries
# cure on their own; errors still show.
_LOG_LEVEL = 3
_T = TypeVar("_T")
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


def client_config(settings: Settings) -> dict[str, str]:
    """librdkafka security settings for the user's own cluster (empty for PLAINTEXT).

    Bootstrap servers are not included: callers add the address they resolved.
    """
    conf: dict[str, str] = {}
    protocol = settings.kafka_security_protocol.strip().upper()
    if protocol and protocol != "PLAINTEXT":
        conf["security.protocol"] = protocol
    if settings.kafka_sasl_mechanism:
        conf["sasl.mechanism"] = settings.kafka_sasl_mechanism
    if settings.kafka_sasl_username:
        conf["sasl.username"] = settings.kafka_sasl_username
        conf["sasl.password"] = settings.kafka_sasl_password.get_secret_value()
    if settings.kafka_ssl_ca_location:
        conf["ssl.ca.location"] = settings.kafka_ssl_ca_location
    return conf


def base_config(settings: Settings, bootstrap: str) -> dict[str, Any]:
    """librdkafka settings every client gets: address, security (SASL/TLS), log level."""
    return {"bootstrap.servers": bootstrap, "log_level": _LOG_LEVEL, **client_config(settings)}


def new_consumer(settings: Settings, bootstrap: str, config: Mapping[str, Any]) -> Consumer:
    """A consumer with the base settings plus ``config`` (group, tuning)."""
    return Consumer({**base_config(settings, bootstrap), **config})


def new_producer(settings: Settings, bootstrap: str, config: Mapping[str, Any]) -> Producer:
    """A producer with the base settings plus ``config`` (acks, idempotence, batching)."""
    return Producer({**base_config(settings, bootstrap), **config})


def admin_client(settings: Settings, bootstrap: str) -> AdminClient:
    """An admin client for topic management and metadata.

    It never asks the broker to auto-create a topic: on a cluster with
    ``auto.create.topics.enable`` (the dev broker, Kafka's default), librdkafka's admin
    handle would otherwise create every topic whose metadata it asks for, so checking
    whether a topic exists would create it.
    """
    return AdminClient({**base_config(settings, bootstrap), "allow.auto.create.topics": False})


def _unreachable(bootstrap: str, e: BaseException) -> TransientError:
    return TransientError(f"Kafka at {bootstrap} does not answer ({e}); is it running?")


def _any_kafka_error(e: BaseException) -> bool:
    return isinstance(e, KafkaException)


def _leader_moving(e: BaseException) -> bool:
    err = e.args[0] if isinstance(e, KafkaException) and e.args else None
    return isinstance(err, KafkaError) and err.code() in _LEADER_MOVING


def _ask(
    fn: Callable[[], _T],
    bootstrap: str,
    within_s: float,
    again: Callable[[BaseException], bool],
    base_delay_s: float = 0.25,
) -> _T:
    """A cluster request, retried (:func:`tickerlake.retry.retry`) while ``again`` says so, for ``within_s`` at most.

    Raises:
        TransientError: The cluster did not answer (one line, with its error).
    """
    try:
        return retry(
            fn,
            what=f"Kafka at {bootstrap}",
            on=again,
            deadline_s=within_s,
            base_delay_s=base_delay_s,
            max_delay_s=1.0,
            gave_up="does not answer; is it running?",
        )
    except KafkaException as e:
        raise _unreachable(bootstrap, e) from None


def topic_partitions(
    admin: AdminClient, topic: str, bootstrap: str, timeout_s: float = 10.0
) -> list[int] | None:
    """Partition ids of a topic, or None when it does not exist.

    Raises:
        TransientError: If the cluster does not answer.
    """
    # Within the same bound: a broker that refuses at once is asked again (it may be restarting).
    md = _ask(
        lambda: admin.list_topics(topic=topic, timeout=timeout_s), bootstrap, timeout_s, _any_kafka_error
    )
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
        raise UserError(f"partitions must be at least 1, got {partitions}")
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
    return new_consumer(
        settings, bootstrap, {"group.id": "tickerlake-inspect", "enable.auto.commit": False, **extra}
    )


def assign_from(
    consumer: Consumer,
    topic: str,
    partitions: Iterable[int],
    start: str | int,
    resume: Mapping[int, int] | None = None,
    timeout_s: float = 10.0,
) -> None:
    """Assign partitions directly (no group membership, no rebalance) from ``start``.

    Args:
        start: ``earliest``, ``latest``, or a time in ms since the epoch (each partition
            from its first record at or after it, else from its end).
        resume: Next offsets of partitions that carry on from a known position instead.
    """
    parts = list(partitions)
    if start == "earliest" or start == "latest":
        at = OFFSET_BEGINNING if start == "earliest" else OFFSET_END
        wanted = [TopicPartition(topic, p, at) for p in parts]
    else:
        found = consumer.offsets_for_times(
            [TopicPartition(topic, p, int(start)) for p in parts], timeout=timeout_s
        )
        wanted = [
            TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_END) for tp in found
        ]
    known = resume or {}
    consumer.assign(
        [
            TopicPartition(topic, tp.partition, known[tp.partition]) if tp.partition in known else tp
            for tp in wanted
        ]
    )


def positions(
    consumer: Consumer, topic: str, partitions: Iterable[int]
) -> dict[int, tuple[int | None, int | None]]:
    """Per assigned partition: the consumer's next offset and the log end it last saw (None: not known yet).

    Both come from the client's own state (no request to the cluster), so this is cheap.
    """
    out: dict[int, tuple[int | None, int | None]] = {}
    for tp in consumer.position([TopicPartition(topic, p) for p in partitions]):
        try:
            _, high = consumer.get_watermark_offsets(tp, cached=True)
        except KafkaException:
            high = -1
        out[tp.partition] = (tp.offset if tp.offset >= 0 else None, high if high >= 0 else None)
    return out


def start_position(offset: int | None) -> int:
    """The offset to start a partition at: ``offset``, or the beginning of the log for None."""
    return offset if offset is not None else OFFSET_BEGINNING


def seek(consumer: Consumer, topic: str, partition: int, offset: int | None) -> None:
    """Move an assigned partition to ``offset`` (None: the beginning of the log)."""
    consumer.seek(TopicPartition(topic, partition, start_position(offset)))


def log_start(consumer: Consumer, topic: str, partition: int, timeout_s: float = 10.0) -> int:
    """The first offset Kafka still holds of a partition (its low watermark)."""
    low, _ = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s, cached=False)
    return int(low)


def commit_offsets(consumer: Consumer, topic: str, offsets: Mapping[int, int]) -> None:
    """Commit next offsets per partition to the group, asynchronously."""
    consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=True)


def committed_offsets(
    consumer: Consumer, topic: str, partitions: Iterable[int], timeout_s: float = 10.0
) -> dict[int, int | None]:
    """The group's committed next offset per partition (None where it has none)."""
    found = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=timeout_s)
    return {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in found}


def offset_of(message: Message) -> int:
    """The offset of a consumed record (only error events have none).

    Raises:
        InternalError: ``message`` is an error event, which callers handle before.
    """
    offset = message.offset()
    if offset is None:
        raise InternalError(f"a Kafka record without an offset (error: {message.error()})")
    return offset


def is_partition_eof(err: KafkaError) -> bool:
    """Whether a consumer error only says that a partition has been read to its end."""
    return err.code() == KafkaError._PARTITION_EOF


def fatal_consumer_error(err: KafkaError) -> bool:
    """Whether a consumer error will not cure itself (librdkafka retries the others)."""
    return err.fatal() or err.code() in (
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
    )


def read_range(
    consumer: Consumer, topic: str, ranges: dict[int, tuple[int, int]], timeout_s: float = 30.0
) -> list[Message]:
    """The records of ``[start, end)`` per partition, read with an assigned (group-less) consumer.

    Raises:
        TickerlakeError: If they do not all arrive within the timeout.
    """
    wanted = {p: (s, e) for p, (s, e) in ranges.items() if e > s}
    if not wanted:
        return []
    consumer.assign([TopicPartition(topic, p, s) for p, (s, _) in wanted.items()])
    out: list[Message] = []
    left = sum(e - s for s, e in wanted.values())
    deadline = time.monotonic() + timeout_s
    try:
        while left > 0 and time.monotonic() < deadline:
            for m in consumer.consume(num_messages=10_000, timeout=0.5):
                if m.error() is not None:
                    continue
                p, offset = m.partition(), m.offset()
                if p is None or offset is None:
                    continue
                start, end = wanted.get(p, (0, 0))
                if start <= offset < end:
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

    def ask(tp: TopicPartition) -> tuple[int, int]:
        return consumer.get_watermark_offsets(tp, timeout=max(deadline - time.monotonic(), 1.0), cached=False)

    for p in partitions:
        # Right after a topic's creation or a broker restart its leaders are still being elected.
        out[p] = _ask(
            functools.partial(ask, TopicPartition(topic, p)),
            bootstrap,
            max(deadline - time.monotonic(), 0.0),
            _leader_moving,
            base_delay_s=0.1,
        )
    return out
