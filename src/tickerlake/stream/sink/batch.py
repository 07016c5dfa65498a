"""One partition's share of a micro-batch, and the table rows a batch becomes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from tickerlake.lake.contract import TABLES, arrow_schema
from tickerlake.stream.schema import Decoded

if TYPE_CHECKING:
    from tickerlake.stream._kafka import Message

__all__ = ["PartitionBatch", "batch_rows"]


@dataclass
class PartitionBatch:
    """The records of one partition in a micro-batch, decoded.

    Attributes:
        partition: Partition id.
        offsets: Kafka offset of each record, ascending (gaps possible).
        values: Record values, in offset order.
        decoded: The decoder's verdict: accepted rows as columns, rejections with reasons.
        start: The table's offset of this partition when the batch was read (None: nothing
            committed yet); the commit is fenced if the table has moved on from it.
        messages: The Kafka records (dead letters carry their key and timestamp).
        raw_uri: The raw file written for the accepted records, once written.
        fenced: Set when another sink had taken the partition over; never committed.
    """

    partition: int
    offsets: np.ndarray
    values: list[bytes | None]
    decoded: Decoded
    start: int | None
    messages: Sequence[Message] = ()
    raw_uri: str | None = None
    fenced: bool = False

    @property
    def first(self) -> int:
        """Offset of the first record."""
        return int(self.offsets[0])

    @property
    def last(self) -> int:
        """Offset of the last record."""
        return int(self.offsets[-1])

    @property
    def next_offset(self) -> int:
        """Where the partition continues once this batch is committed."""
        return self.last + 1

    @property
    def records(self) -> int:
        """Records read (accepted + rejected)."""
        return len(self.offsets)

    @property
    def accepted_offsets(self) -> np.ndarray:
        """Offsets of the accepted records."""
        d = self.decoded
        return self.offsets if len(d) == len(self.offsets) else self.offsets[d.accepted]


def batch_rows(parts: Sequence[PartitionBatch], topic: str, table: str, ingested_at: dt.datetime) -> pa.Table:
    """The accepted records of a batch as rows of ``table``, with their Kafka provenance."""
    schema = arrow_schema(TABLES[table])
    stamp = int(ingested_at.timestamp() * 1_000_000)
    tables = []
    for part in parts:
        n = len(part.decoded)
        if not n:
            continue
        cols = dict(part.decoded.columns)
        # Repeating one string by index is much faster than building it from n Python strings.
        cols["kafka_topic"] = pa.array([topic], pa.string()).take(pa.array(np.zeros(n, dtype=np.int64)))
        cols["kafka_partition"] = pa.array(np.full(n, part.partition, dtype=np.int32))
        cols["kafka_offset"] = pa.array(part.accepted_offsets, pa.int64())
        cols["ingested_at"] = pa.array(np.full(n, stamp, dtype=np.int64)).cast(pa.timestamp("us", tz="UTC"))
        tables.append(pa.table([cols[f.name].cast(f.type) for f in schema], schema=schema))
    return pa.concat_tables(tables) if tables else schema.empty_table()
