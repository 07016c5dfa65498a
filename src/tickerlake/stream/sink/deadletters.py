"""Dead letters: records the decoder rejected go to ``<topic>.dlq`` with the reason and where they came from.

At least once: a batch is never committed before its dead letters are acknowledged, and a
crash between the two publishes them again on restart with the same key
(``topic/partition/offset``), so a compacted dead-letter topic or any reader can deduplicate.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable, Sequence

from tickerlake.errors import TickerlakeError
from tickerlake.stream import _kafka
from tickerlake.stream.sink.batch import PartitionBatch

__all__ = ["DeadLetter", "DeadLetters", "dead_letter"]

#: Kafka record headers as the producer takes them (name, value).
Headers = list[tuple[str, str | bytes | None]]
#: ``(key, value, headers)`` of one dead-letter record.
DeadLetter = tuple[bytes, bytes, Headers]


def dead_letter(
    topic: str, part: PartitionBatch, pos: int, reason: str, sink_id: str, rejected_at: str
) -> DeadLetter:
    """The dead-letter record of the ``pos``-th record of a partition's batch.

    The body is JSON with the reason, the source position and the original value (UTF-8
    text, or base64 when it is not text); the headers repeat reason and position so that
    tools can filter without parsing the body.
    """
    m = part.messages[pos]
    value = part.values[pos]
    offset = int(part.offsets[pos])
    text: str | None = None
    encoding = "none"
    if value is not None:
        try:
            text, encoding = value.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(value).decode(), "base64"
    key = m.key()
    if isinstance(key, str):
        key = key.encode()
    ts_type, ts_ms = m.timestamp()
    body = {
        "reason": reason,
        "source_topic": topic,
        "source_partition": part.partition,
        "source_offset": offset,
        "source_timestamp_ms": ts_ms if ts_type else None,
        "key": key.decode("utf-8", "replace") if key is not None else None,
        "value": text,
        "value_encoding": encoding,
        "sink": sink_id,
        "rejected_at": rejected_at,
    }
    headers: Headers = [
        ("tickerlake.reason", reason.encode()),
        ("tickerlake.source.topic", topic.encode()),
        ("tickerlake.source.partition", str(part.partition).encode()),
        ("tickerlake.source.offset", str(offset).encode()),
    ]
    return f"{topic}/{part.partition}/{offset}".encode(), json.dumps(body).encode(), headers


class DeadLetters:
    """Publishes a batch's rejected records and waits until the broker has them all.

    Args:
        topic: Source topic.
        dlq_topic: Dead-letter topic.
        sink_id: The sink's name, recorded in each dead letter.
        new_producer: Makes the producer (idempotent, ``acks=all``) on first use, so a
            sink that never rejects anything never connects one.
    """

    def __init__(
        self, topic: str, dlq_topic: str, sink_id: str, new_producer: Callable[[], _kafka.Producer]
    ) -> None:
        self.topic = topic
        self.dlq_topic = dlq_topic
        self.sink_id = sink_id
        self._new_producer = new_producer
        self._producer: _kafka.Producer | None = None

    def publish(self, parts: Sequence[PartitionBatch]) -> int:
        """Publish every rejected record of the batch and flush.

        Returns:
            How many were published.

        Raises:
            TickerlakeError: If the broker did not acknowledge them all (nothing of the
                batch may be committed then).
        """
        rejected = [(part, pos, reason) for part in parts for pos, reason in part.decoded.rejected]
        if not rejected:
            return 0
        if self._producer is None:
            self._producer = self._new_producer()
        producer = self._producer
        failures: list[str] = []

        def on_delivery(err: object, _msg: object) -> None:
            if err is not None:
                failures.append(str(err))

        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        for part, pos, reason in rejected:
            key, value, headers = dead_letter(self.topic, part, pos, reason, self.sink_id, now)
            while True:
                try:
                    producer.produce(self.dlq_topic, value, key, headers=headers, on_delivery=on_delivery)
                    break
                except BufferError:
                    # The local queue is full: serve delivery reports until there is room.
                    producer.poll(0.1)
        left = producer.flush(60)
        if left or failures:
            why = failures[0] if failures else f"{left} not acknowledged"
            raise TickerlakeError(
                f"dead-letter topic {self.dlq_topic!r} did not take {len(failures) + left} record(s) ({why}); "
                "nothing was committed, restart to retry"
            )
        return len(rejected)

    def close(self, timeout_s: float = 10.0) -> None:
        """Deliver what is still queued (there is nothing after a successful publish)."""
        if self._producer is not None:
            self._producer.flush(timeout_s)
