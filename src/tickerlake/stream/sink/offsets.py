"""Where a topic stands in its stream table: the table each mode writes, and the Kafka
offsets and order-check watermarks that every sink commit records in its snapshot summary.

Shared by the sink (where to resume), ``stream status`` (lag) and the demo.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tickerlake.stream.schema import Decoded, decode_bars, decode_ticks

if TYPE_CHECKING:
    from pyiceberg.table import Table

__all__ = [
    "BATCH_PROP",
    "MODES",
    "OFFSETS_PROP",
    "RAW_FILES_PROP",
    "REJECTED_PROP",
    "SINK_PROP",
    "WATERMARKS_PROP",
    "Mode",
    "TableState",
    "state_from_summaries",
    "table_state",
]

#: ``{"topic/partition": next offset}`` of every partition ever committed (complete in each commit).
OFFSETS_PROP = "tickerlake.kafka.offsets"
#: ``{"topic/partition": {ticker: watermark}}`` of the out-of-order check.
WATERMARKS_PROP = "tickerlake.stream.watermarks"
#: ``{"topic/partition": [first, last, accepted, rejected]}`` of the batch a commit holds.
BATCH_PROP = "tickerlake.stream.batch"
#: Records of the batch that went to the dead-letter topic.
REJECTED_PROP = "tickerlake.stream.rejected"
#: The sink that made the commit.
SINK_PROP = "tickerlake.stream.sink"
#: Raw files of the batch, relative to the lake root.
RAW_FILES_PROP = "tickerlake.stream.raw-files"


@dataclass(frozen=True)
class Mode:
    """What a sink mode writes.

    Attributes:
        table: Iceberg table.
        dataset: Raw-zone dataset of its JSON-lines files.
        decode: Decoder and validator of the record values.
    """

    table: str
    dataset: str
    decode: Callable[..., Decoded]


#: What each mode writes: Iceberg table, raw dataset, decoder.
MODES: dict[str, Mode] = {
    "ticks": Mode("stream.ticks", "stream_ticks", decode_ticks),
    "bars": Mode("stream.bars", "stream_bars", decode_bars),
}


@dataclass(frozen=True)
class TableState:
    """The Kafka position recorded in a stream table.

    Attributes:
        offsets: ``"topic/partition"`` -> next offset, every partition ever committed.
        watermarks: ``"topic/partition"`` -> {ticker: watermark} of the order check.
        snapshot_id: The snapshot read (None for an empty table).
    """

    offsets: dict[str, int]
    watermarks: dict[str, dict[str, int]]
    snapshot_id: int | None

    def for_topic(self, topic: str) -> dict[int, int]:
        """Next offset per partition of one topic."""
        prefix = topic + "/"
        return {int(k[len(prefix) :]): v for k, v in self.offsets.items() if k.startswith(prefix)}

    def marks_of(self, topic: str, partition: int) -> dict[str, int]:
        """The order-check watermarks of one partition (a copy; empty when none)."""
        return dict(self.watermarks.get(f"{topic}/{partition}", {}))


def state_from_summaries(
    summaries: Iterable[Mapping[str, str] | None], snapshot_id: int | None
) -> TableState:
    """The position recorded in snapshot summaries, newest first.

    Every sink commit carries the complete merged map, so the newest summary that has one
    suffices; summaries without it (snapshots written by other tools) are skipped.
    """
    for summary in summaries:
        text = summary.get(OFFSETS_PROP) if summary is not None else None
        if summary is None or text is None:
            continue
        offsets = {key: int(value) for key, value in json.loads(text).items()}
        marks = {
            key: {str(t): int(v) for t, v in value.items()}
            for key, value in json.loads(summary.get(WATERMARKS_PROP) or "{}").items()
        }
        return TableState(offsets, marks, snapshot_id)
    return TableState({}, {}, snapshot_id)


def table_state(table: Table) -> TableState:
    """Read the committed offsets and watermarks from a table's snapshot summaries.

    Walks back from the current snapshot (see :func:`state_from_summaries`).
    """
    from pyiceberg.table.snapshots import ancestors_of

    current = table.current_snapshot()
    summaries = (snap.summary for snap in ancestors_of(current, table.metadata))
    return state_from_summaries(summaries, current.snapshot_id if current is not None else None)
