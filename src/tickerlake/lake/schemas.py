"""Canonical table schemas (curated zone) and raw-zone column layouts. No I/O.

Ticker identity travels in every row (long format) from the source onward.
"""

from __future__ import annotations

import pyarrow as pa
from pyiceberg.schema import Schema
from pyiceberg.types import (
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestamptzType,
)

__all__ = [
    "CORPORATE_ACTIONS",
    "DAILY_BARS",
    "QUARANTINE",
    "RAW_ACTION_COLUMNS",
    "RAW_BAR_COLUMNS",
    "STREAM_BARS",
    "STREAM_TICKS",
    "TABLES",
    "arrow_schema",
]

#: Columns of the ``daily_bars`` raw dataset, in file order. Values are kept as text in
#: the raw zone so that the ETL can quarantine unparseable ones with their original text.
RAW_BAR_COLUMNS: tuple[str, ...] = (
    "ticker",
    "date",
    "open",
    "high",
    "low",
    "close",
    "adj_close",
    "volume",
    "source",
    "source_file",
    "source_row",
)

#: Columns of the ``corporate_actions`` raw dataset. ``action`` is ``split`` or
#: ``dividend``; ``ratio`` is new shares per old share for splits (4.0 for 4:1);
#: ``amount`` is cash per share for dividends.
RAW_ACTION_COLUMNS: tuple[str, ...] = (
    "ticker",
    "date",
    "action",
    "ratio",
    "amount",
    "source",
    "source_file",
    "source_row",
)

DAILY_BARS = Schema(
    NestedField(1, "ticker", StringType(), required=True),
    NestedField(2, "date", DateType(), required=True),
    NestedField(3, "open", DoubleType(), required=False),
    NestedField(4, "high", DoubleType(), required=False),
    NestedField(5, "low", DoubleType(), required=False),
    NestedField(6, "close", DoubleType(), required=False),
    NestedField(7, "adj_close", DoubleType(), required=False),
    NestedField(8, "volume", LongType(), required=False),
    NestedField(9, "source", StringType(), required=False),
    NestedField(10, "ingested_at", TimestamptzType(), required=False),
    identifier_field_ids=[1, 2],
)

CORPORATE_ACTIONS = Schema(
    NestedField(1, "ticker", StringType(), required=True),
    NestedField(2, "date", DateType(), required=True),
    NestedField(3, "action", StringType(), required=True),
    NestedField(4, "ratio", DoubleType(), required=False),
    NestedField(5, "amount", DoubleType(), required=False),
    NestedField(6, "source", StringType(), required=False),
    NestedField(7, "ingested_at", TimestamptzType(), required=False),
    identifier_field_ids=[1, 2, 3],
)

QUARANTINE = Schema(
    NestedField(1, "dataset", StringType(), required=True),
    NestedField(2, "source_file", StringType(), required=False),
    NestedField(3, "source_row", LongType(), required=False),
    NestedField(4, "reason", StringType(), required=True),
    NestedField(5, "record", StringType(), required=False),
    NestedField(6, "ingested_at", TimestamptzType(), required=False),
)

STREAM_TICKS = Schema(
    NestedField(1, "ticker", StringType(), required=True),
    NestedField(2, "ts", TimestamptzType(), required=True),
    NestedField(3, "price", DoubleType(), required=True),
    NestedField(4, "size", LongType(), required=True),
    NestedField(5, "seq", LongType(), required=True),
    NestedField(6, "kafka_topic", StringType(), required=True),
    NestedField(7, "kafka_partition", IntegerType(), required=True),
    NestedField(8, "kafka_offset", LongType(), required=True),
    NestedField(9, "ingested_at", TimestamptzType(), required=True),
    identifier_field_ids=[6, 7, 8],
)

STREAM_BARS = Schema(
    NestedField(1, "ticker", StringType(), required=True),
    NestedField(2, "date", DateType(), required=True),
    NestedField(3, "open", DoubleType(), required=False),
    NestedField(4, "high", DoubleType(), required=False),
    NestedField(5, "low", DoubleType(), required=False),
    NestedField(6, "close", DoubleType(), required=True),
    NestedField(7, "adj_close", DoubleType(), required=False),
    NestedField(8, "volume", LongType(), required=False),
    NestedField(9, "kafka_topic", StringType(), required=True),
    NestedField(10, "kafka_partition", IntegerType(), required=True),
    NestedField(11, "kafka_offset", LongType(), required=True),
    NestedField(12, "ingested_at", TimestamptzType(), required=True),
    identifier_field_ids=[9, 10, 11],
)

#: Curated tables by catalog identifier.
TABLES: dict[str, Schema] = {
    "market.daily_bars": DAILY_BARS,
    "market.corporate_actions": CORPORATE_ACTIONS,
    "market.quarantine": QUARANTINE,
    "stream.ticks": STREAM_TICKS,
    "stream.bars": STREAM_BARS,
}


def arrow_schema(schema: Schema) -> pa.Schema:
    """The Arrow schema of an Iceberg schema, without field-id metadata.

    Parquet files written with it can be registered with ``add_files`` (which refuses
    files carrying field ids and maps columns by name instead).
    """
    return pa.schema([f.remove_metadata() for f in schema.as_arrow()])
