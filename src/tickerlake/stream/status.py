"""``stream status`` and ``stream topics``: where each partition stands in Kafka, in the table, in the group."""

from __future__ import annotations

from dataclasses import dataclass, field

from tickerlake.config import Settings
from tickerlake.errors import NotFoundError, TransientError, UserError
from tickerlake.stream import _kafka

__all__ = ["PartitionStatus", "StreamStatus", "TopicInfo", "list_topics", "stream_status"]


@dataclass
class PartitionStatus:
    """One partition.

    Attributes:
        partition: Partition id.
        low: First offset Kafka still holds.
        high: Next offset Kafka will write (log end).
        table_offset: Next offset recorded in the stream table (None: never committed).
        group_offset: Next offset committed by the consumer group (None: none).
        lag: Records in Kafka not yet in the table.
    """

    partition: int
    low: int
    high: int
    table_offset: int | None
    group_offset: int | None
    lag: int


@dataclass
class StreamStatus:
    """A topic against its stream table.

    Attributes:
        topic: Topic.
        table: Stream table.
        group: Consumer group whose offsets are shown.
        bootstrap_servers: Cluster address.
        partitions: Per-partition positions.
        lag: Total records not yet in the table.
        dead_letters: Records in the dead-letter topic (None when it does not exist).
        table_snapshot: Current snapshot id of the table.
    """

    topic: str
    table: str
    group: str
    bootstrap_servers: str
    partitions: list[PartitionStatus] = field(default_factory=list)
    lag: int = 0
    dead_letters: int | None = None
    table_snapshot: int | None = None


@dataclass
class TopicInfo:
    """A topic on the cluster.

    Attributes:
        topic: Name.
        partitions: Partition count.
        messages: Records held (sum of high - low watermarks).
    """

    topic: str
    partitions: int
    messages: int


def stream_status(
    settings: Settings,
    topic: str,
    mode: str = "ticks",
    group: str = "tickerlake-sink",
    bootstrap: str | None = None,
) -> StreamStatus:
    """Lag per partition: Kafka log end vs the offsets committed in the stream table.

    Raises:
        UserError: Unknown mode.
        NotFoundError: The topic does not exist.
        TransientError: Kafka does not answer.
    """
    from tickerlake.lake.catalog import load_table_or_none, open_catalog
    from tickerlake.stream.sink.offsets import MODES, table_state

    if mode not in MODES:
        raise UserError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    address = _kafka.resolve_bootstrap(settings, bootstrap)
    admin = _kafka.admin_client(settings, address)
    parts = _kafka.topic_partitions(admin, topic, address)
    if parts is None:
        raise NotFoundError(f"topic {topic!r} does not exist on {address}")
    table = load_table_or_none(open_catalog(settings), MODES[mode].table)
    state = table_state(table) if table is not None else None
    offsets = state.for_topic(topic) if state is not None else {}
    out = StreamStatus(
        topic=topic,
        table=MODES[mode].table,
        group=group,
        bootstrap_servers=address,
        table_snapshot=state.snapshot_id if state is not None else None,
    )
    consumer = _kafka.plain_consumer(settings, address, **{"group.id": group})
    try:
        marks = _kafka.watermarks(consumer, topic, parts, address)
        committed = _kafka.committed_offsets(consumer, topic, parts)
        for p in parts:
            low, high = marks[p]
            done = offsets.get(p)
            lag = high - max(done if done is not None else low, low)
            out.partitions.append(PartitionStatus(p, low, high, done, committed.get(p), max(lag, 0)))
        out.lag = sum(ps.lag for ps in out.partitions)
        dlq = f"{topic}.dlq"
        dlq_parts = _kafka.topic_partitions(admin, dlq, address)
        if dlq_parts is not None:
            dlq_marks = _kafka.watermarks(consumer, dlq, dlq_parts, address)
            out.dead_letters = sum(high - low for low, high in dlq_marks.values())
    finally:
        consumer.close()
    return out


def list_topics(settings: Settings, bootstrap: str | None = None) -> list[TopicInfo]:
    """Topics on the cluster (internal ones left out) with their sizes."""
    address = _kafka.resolve_bootstrap(settings, bootstrap)
    admin = _kafka.admin_client(settings, address)
    try:
        md = admin.list_topics(timeout=10)
    except Exception as e:  # confluent-kafka raises KafkaException and plain errors on timeouts
        raise TransientError(f"Kafka at {address} does not answer ({e}); is it running?") from None
    consumer = _kafka.plain_consumer(settings, address)
    out = []
    try:
        for name in sorted(md.topics):
            if name.startswith("__"):
                continue
            parts = sorted(md.topics[name].partitions)
            marks = _kafka.watermarks(consumer, name, parts, address)
            out.append(TopicInfo(name, len(parts), sum(high - low for low, high in marks.values())))
    finally:
        consumer.close()
    return out
