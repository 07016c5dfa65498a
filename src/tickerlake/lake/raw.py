"""Writes source output into the raw zone as received, with content-addressed names.

Layout: ``raw/<dataset>/source=<source>/part-<sha256 prefix>.<fmt>``
(:class:`~tickerlake.lake.contract.LakeLayout`). The name is a hash of
the bytes, so writing the same data twice is a no-op and the same seed gives the same
files; the crawler sees ``source`` as a Hive-style partition.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.csv as pacsv

from tickerlake.config import Settings
from tickerlake.lake.contract import LakeLayout, part_name

__all__ = ["RawWrite", "write_raw"]


@dataclass(frozen=True, slots=True)
class RawWrite:
    """Result of one raw write.

    Attributes:
        uri: The file written (or found already present).
        rows: Data rows in the file.
        size: Bytes.
        created: False when identical content was already in the raw zone.
    """

    uri: str
    rows: int
    size: int
    created: bool


def write_raw(
    settings: Settings,
    dataset: str,
    source: str,
    table: pa.Table,
    columns: tuple[str, ...] | None = None,
) -> RawWrite:
    """Write one Arrow table as a CSV file into the raw zone.

    Args:
        settings: Runtime settings.
        dataset: Raw dataset name (``daily_bars``, ``corporate_actions``...).
        source: Source name, used as the ``source=`` partition.
        table: Rows to write; typed or text columns.
        columns: Column order to enforce (missing columns are written empty).

    Returns:
        What was written.
    """
    if columns is not None:
        n = table.num_rows
        arrays = [table.column(c) if c in table.column_names else pa.nulls(n, pa.string()) for c in columns]
        table = pa.Table.from_arrays(arrays, names=list(columns))
    buf = io.BytesIO()
    pacsv.write_csv(table, buf, pacsv.WriteOptions(quoting_style="needed"))
    data = buf.getvalue()
    layout = LakeLayout.of(settings)
    storage = layout.storage
    uri = layout.raw_file(dataset, source, part_name(data, "csv"))
    if storage.exists(uri):
        return RawWrite(uri, table.num_rows, len(data), created=False)
    storage.write_bytes(uri, data)
    return RawWrite(uri, table.num_rows, len(data), created=True)
