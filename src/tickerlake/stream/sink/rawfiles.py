"""The sink's raw zone: one JSON-lines file per partition and batch, named by its offsets.

``raw/<dataset>/topic=<topic>/partition=<p>/<topic>-<p>-<first>-<last>.jsonl`` (offsets
zero-padded to 20 digits), each line the record's JSON object with its ``kafka_offset``
added in front. The name is deterministic, so a batch rewritten after a crash writes the
same file with the same bytes; files of batches that never reached the table are deleted
when their partition is assigned again.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from typing import cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tickerlake.lake.contract import LakeLayout
from tickerlake.lake.storage import LakeStorage
from tickerlake.stream.sink.batch import PartitionBatch

__all__ = ["RawZone", "raw_file_name", "raw_lines"]

_RAW_NAME = re.compile(r"^(?P<topic>.+)-(?P<p>\d+)-(?P<first>\d{20})-(?P<last>\d{20})\.jsonl$")


def raw_file_name(topic: str, partition: int, first: int, last: int) -> str:
    """The deterministic raw file name of a batch of one partition."""
    return f"{topic}-{partition}-{first:020d}-{last:020d}.jsonl"


def raw_lines(part: PartitionBatch) -> bytes:
    """Accepted values as JSON lines, each with its offset spliced in as the first member."""
    accepted = part.decoded.accepted
    # Accepted records always have a value: the decoder rejects a missing or empty one.
    every = cast("list[bytes]", part.values)
    values = every if len(accepted) == len(every) else [every[i] for i in accepted.tolist()]
    offsets = part.accepted_offsets
    joined = _joined_in_bulk(values, offsets)
    if joined is not None:
        return joined
    # One string join makes every line's prefix; a decoded event is a JSON object, so
    # after optional whitespace its first byte is "{", which the prefix replaces.
    prefixes = ('{"kafka_offset":' + ',\n{"kafka_offset":'.join(map(str, offsets.tolist())) + ",").encode()
    lines = [
        p + (v[1:] if v[:1] == b"{" else v.strip()[1:])
        for p, v in zip(prefixes.split(b"\n"), values, strict=True)
    ]
    lines.append(b"")
    return b"\n".join(lines)


def _joined_in_bulk(values: list[bytes], offsets: np.ndarray) -> bytes | None:
    """:func:`raw_lines` in Arrow kernels, for values that all start with ``{`` and are UTF-8 (else None)."""
    if not values:
        return None
    text = pa.large_string()
    try:
        arr = pa.array(values, pa.large_binary()).cast(text)
    except pa.ArrowInvalid:
        return None  # not UTF-8 text: the per-line path copies the bytes as they are
    if not pc.all(pc.starts_with(arr, "{")).as_py():
        return None
    n = len(arr)
    zeros = pa.array(np.zeros(n, dtype=np.int64))

    def repeated(s: str) -> pa.Array:
        return pa.array([s], text).take(zeros)

    lines = pc.binary_join_element_wise(
        repeated('{"kafka_offset":'),
        pa.array(offsets, pa.int64()).cast(text),
        repeated(","),
        pc.utf8_slice_codeunits(arr, 1),
        repeated("\n"),
        repeated(""),  # the separator between the pieces above
    )
    buffers = lines.buffers()
    ends = np.frombuffer(buffers[1], dtype=np.int64)
    return buffers[2][ends[0] : ends[n]].to_pybytes()


class RawZone:
    """The raw files of one topic in the lake.

    Args:
        storage: The lake.
        dataset: Raw dataset (``stream_ticks`` or ``stream_bars``).
        topic: Topic whose batches are written.
    """

    def __init__(self, storage: LakeStorage, dataset: str, topic: str) -> None:
        self.storage = storage
        self.dataset = dataset
        self.topic = topic

    def partition_dir(self, partition: int) -> str:
        """Folder of one partition's files."""
        return LakeLayout(self.storage).stream_partition(self.dataset, self.topic, partition)

    def write(self, part: PartitionBatch) -> None:
        """Write the accepted records of a partition's batch (none: no file) and note the file in it."""
        if not len(part.decoded):
            return
        name = raw_file_name(self.topic, part.partition, part.first, part.last)
        uri = posixpath.join(self.partition_dir(part.partition), name)
        self.storage.write_bytes(uri, raw_lines(part))
        part.raw_uri = uri

    def discard(self, part: PartitionBatch) -> None:
        """Delete the raw file of a batch that will not be committed (fenced)."""
        if part.raw_uri is not None:
            self.storage.delete(part.raw_uri)
            part.raw_uri = None

    def relative(self, uri: str) -> str:
        """A raw file's path relative to the lake root (as recorded in snapshot summaries)."""
        return uri[len(self.storage.root) + 1 :]

    def remove_uncommitted(self, partition: int, committed: int | None, log_start: Callable[[], int]) -> int:
        """Delete the files of batches that never reached the table.

        Args:
            partition: Partition id.
            committed: The table's next offset of the partition (None: nothing committed).
            log_start: The first offset Kafka still holds; asked only when nothing was
                committed and files exist (what Kafka holds will be written again).

        Returns:
            How many files were deleted.
        """
        files = self.storage.list_files(self.partition_dir(partition))
        if not files:
            return 0
        start = committed if committed is not None else log_start()
        removed = 0
        for entry in files:
            m = _RAW_NAME.match(posixpath.basename(entry.uri))
            if m and m.group("topic") == self.topic and int(m.group("first")) >= start:
                self.storage.delete(entry.uri)
                removed += 1
        return removed
