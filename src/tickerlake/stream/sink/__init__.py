"""``stream sink``: a consumer-group member that writes a topic into the lake exactly once.

Per micro-batch (``max_records`` records or ``max_interval`` seconds, whichever first):

1. every record is decoded and validated (:mod:`tickerlake.stream.schema`); rejected ones
   go to the dead-letter topic ``<topic>.dlq`` with the reason and their source
   topic/partition/offset, and the producer is flushed, so a batch is never committed
   before its dead letters are durable (:mod:`.deadletters`);
2. the accepted records of each partition are written to the raw zone as one JSON-lines
   file named after topic, partition and first and last offset (:mod:`.rawfiles`);
3. one atomic, fenced Iceberg commit appends the rows to ``stream.ticks`` (or
   ``stream.bars``); its snapshot summary carries the next offset of every partition ever
   committed, the watermarks of the out-of-order check, and what the batch held
   (:mod:`.committer`, :mod:`.offsets`).

Exactly once: the offsets live in the same atomic commit as the rows, and on start and on
every partition assignment the sink seeks to the offsets recorded in the table (not to the
group's committed offsets, which are only written afterwards, for monitoring). A crash at
any point therefore either lost the whole batch (it is read again) or committed it (it is
skipped). Raw files of uncommitted batches are deleted when a partition is assigned, and
data files a crashed predecessor in the same static-membership slot (:mod:`.slots`) wrote
but never committed when the sink starts, so the raw zone and the table's folder end up
holding every accepted record once too.

The parts:

* :mod:`.offsets` — the tables each mode writes and the Kafka position recorded in them
  (shared with ``stream status`` and the demo);
* :mod:`.batch` — one partition's share of a micro-batch, and the rows it becomes;
* :mod:`.deadletters` — the dead-letter producer;
* :mod:`.rawfiles` — the raw JSON-lines files;
* :mod:`.committer` — prepare → fenced commit → expire, against a small table protocol;
* :mod:`.iceberg` — that protocol on the lake's Iceberg catalog;
* :mod:`.slots` — static group-membership slots;
* :mod:`.loop` — the consumer loop, rebalancing, and :func:`run_sink`.
"""

from __future__ import annotations

from tickerlake.stream.sink.batch import PartitionBatch
from tickerlake.stream.sink.loop import SinkOptions, SinkReport, StreamSink, known_tickers_from_lake, run_sink
from tickerlake.stream.sink.offsets import (
    BATCH_PROP,
    MODES,
    OFFSETS_PROP,
    RAW_FILES_PROP,
    REJECTED_PROP,
    SINK_PROP,
    WATERMARKS_PROP,
    TableState,
    table_state,
)
from tickerlake.stream.sink.rawfiles import raw_file_name
from tickerlake.stream.sink.slots import claim_slot

__all__ = [
    "BATCH_PROP",
    "MODES",
    "OFFSETS_PROP",
    "RAW_FILES_PROP",
    "REJECTED_PROP",
    "SINK_PROP",
    "WATERMARKS_PROP",
    "PartitionBatch",
    "SinkOptions",
    "SinkReport",
    "StreamSink",
    "TableState",
    "claim_slot",
    "known_tickers_from_lake",
    "raw_file_name",
    "run_sink",
    "table_state",
]
