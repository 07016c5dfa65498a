"""The lake's datasets: raw columns, curated schema, key and checks, one record each. No I/O.

Ticker identity travels in every row (long format) from the source onward. A raw dataset
(``raw/<name>/``) holds text as received; its :class:`Dataset` record says which columns
a raw file has and their types, which curated Iceberg table it becomes, the table's key
(the schema's identifier fields) and the semantic checks every row must pass before it is
loaded. The ETL, the validation SQL, the sources and the readers all take these facts
from here.
"""

from __future__ import annotations

from dataclasses import dataclass

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

from tickerlake.lake.contract.sql import sql_ident, sql_literal
from tickerlake.lake.contract.tickers import TICKER_PATTERN

__all__ = [
    "ACTIONS",
    "BARS",
    "BAR_COLUMNS",
    "CORPORATE_ACTIONS",
    "DAILY_BARS",
    "DATASETS",
    "QUARANTINE",
    "RAW_ACTION_COLUMNS",
    "RAW_BAR_COLUMNS",
    "STREAM_BARS",
    "STREAM_TICKS",
    "TABLES",
    "Check",
    "Dataset",
    "arrow_schema",
]

#: ``(condition meaning invalid, SQL of the reason)`` over a row's typed columns.
Check = tuple[str, str]

# --------------------------------------------------------------------------- curated schemas

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
    # Added after the first release: tables created before it gain it (nullable) on the
    # ETL's next run, so it comes last.
    NestedField(11, "raw_close", DoubleType(), required=False),
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
    NestedField(8, "old_ticker", StringType(), required=False),
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

# Written by the loader, not read from raw files.
_LOAD_COLUMNS = ("ingested_at",)


def arrow_schema(schema: Schema) -> pa.Schema:
    """The Arrow schema of an Iceberg schema, without field-id metadata.

    Parquet files written with it can be registered with ``add_files`` (which refuses
    files carrying field ids and maps columns by name instead).
    """
    return pa.schema([f.remove_metadata() for f in schema.as_arrow()])


# --------------------------------------------------------------------------- the records


@dataclass(frozen=True)
class Dataset:
    """How one raw dataset becomes one curated table.

    Attributes:
        name: Raw dataset name, the folder ``raw/<name>/`` and the SQL table ``raw.<name>``.
        table: Curated table identifier.
        types: Every raw column → DuckDB type, in file order (the raw files' header).
        schema: The curated Iceberg schema; its identifier fields are the key.
        checks: ``(condition meaning invalid, reason SQL)`` over typed columns.
        prices: Price columns cleaned of single-precision artefacts.
        derived: Curated columns the raw files do not carry → the SQL expression (over the
            typed raw columns) they are loaded with; the ETL's corporate-actions pass
            (:mod:`tickerlake.lake.adjust`) corrects them.
    """

    name: str
    table: str
    types: dict[str, str]
    schema: Schema
    checks: tuple[Check, ...]
    prices: tuple[str, ...] = ()
    derived: tuple[tuple[str, str], ...] = ()

    @property
    def raw_columns(self) -> tuple[str, ...]:
        """Raw column names in file order (values are kept as text in the raw zone)."""
        return tuple(self.types)

    @property
    def key(self) -> tuple[str, ...]:
        """Key columns (deduplicated, last write wins)."""
        return tuple(self.schema.find_column_name(i) or "" for i in self.schema.identifier_field_ids)

    @property
    def output(self) -> tuple[str, ...]:
        """Typed columns written to the curated table (before ``ingested_at``)."""
        return tuple(f.name for f in self.schema.fields if f.name not in _LOAD_COLUMNS)

    @property
    def value_columns(self) -> tuple[str, ...]:
        """Output columns that are not part of the key."""
        return tuple(c for c in self.output if c not in self.key)

    @property
    def reader_types(self) -> dict[str, str]:
        """Types for the CSV reader: BIGINT columns are read as DOUBLE.

        DuckDB's reader rounds ``1.5`` into a BIGINT column; reading a double and
        checking that it is integral turns that into a quarantine reason instead.
        """
        return {c: "DOUBLE" if t == "BIGINT" else t for c, t in self.types.items()}


# Relative slack for OHLC ordering checks: prices arrive as decimal text, some with
# single-precision artefacts (relative error up to 6e-8) that are cleaned only later.
_TOL = 1e-6


def _positive(col: str, required: bool = False) -> list[Check]:
    c = sql_ident(col)
    out = [(f"{c} IS NULL", sql_literal(f"missing {col}"))] if required else []
    out += [
        (f"isnan({c}) OR isinf({c})", sql_literal(f"{col} is not finite")),
        (f"{c} <= 0", f"{sql_literal(f'{col} <= 0: ')} || {c}"),
    ]
    return out


_ORDER: tuple[Check, ...] = (
    ('"high" < "low"', "'high < low'"),
    (f'"open" > "high" * (1 + {_TOL}) OR "open" < "low" * (1 - {_TOL})', "'open outside low..high'"),
    (f'"close" > "high" * (1 + {_TOL}) OR "close" < "low" * (1 - {_TOL})', "'close outside low..high'"),
)

_TICKER_DATE: tuple[Check, ...] = (
    ('"ticker" IS NULL', "'missing ticker'"),
    # The one ticker rule: what the table holds, every later stage accepts.
    (
        f'NOT regexp_full_match("ticker", {sql_literal(TICKER_PATTERN)})',
        "'invalid ticker: ' || \"ticker\"",
    ),
    ('"date" IS NULL', "'missing date'"),
    ('"date" < DATE \'1900-01-01\' OR "date" > current_date + 1', "'date out of range: ' || \"date\""),
)

_PRICES = ("open", "high", "low", "close", "adj_close")

#: ``daily_bars`` → ``market.daily_bars``. ``close`` (and open, high, low) is split-adjusted,
#: as Yahoo reports it, and ``volume`` is in today's shares; ``adj_close`` is split- and
#: dividend-adjusted; ``raw_close`` is the close as traded that day. A source that sends
#: the close as traded has it adjusted by the ETL with the known or inferred splits.
BARS = Dataset(
    name="daily_bars",
    table="market.daily_bars",
    types={
        "ticker": "VARCHAR",
        "date": "DATE",
        **dict.fromkeys(_PRICES, "DOUBLE"),
        "volume": "BIGINT",
        "source": "VARCHAR",
        "source_file": "VARCHAR",
        "source_row": "BIGINT",
    },
    schema=DAILY_BARS,
    prices=(*_PRICES, "raw_close"),
    # As received until the corporate-actions pass finds a later split.
    derived=(("raw_close", '"close"'),),
    checks=(
        *_TICKER_DATE,
        *_positive("open"),
        *_positive("high"),
        *_positive("low"),
        *_positive("close", required=True),
        *_positive("adj_close"),
        ('"volume" < 0', "'negative volume: ' || \"volume\""),
        (
            '"volume__read" IS NOT NULL AND "volume" IS NULL',
            "'volume is not an integer: ' || \"volume__read\"",
        ),
        *_ORDER,
    ),
)

#: ``corporate_actions`` → ``market.corporate_actions``. ``action`` is ``split``,
#: ``dividend`` or ``rename``; ``ratio`` is new shares per old share for splits (4.0 for
#: 4:1); ``amount`` is cash per share for dividends; ``old_ticker`` the symbol a ``rename``
#: replaced (renames come from :data:`~tickerlake.lake.contract.renames.RENAMES`, never
#: from raw files). ``source`` says where a row comes from: the raw file's own value
#: (known), ``inferred`` (read from the prices' adjustment factor), ``suspected`` (a
#: raw price jump matching a split ratio: reported, never applied) or ``tickerlake``
#: (a rename of the built-in list).
ACTIONS = Dataset(
    name="corporate_actions",
    table="market.corporate_actions",
    types={
        "ticker": "VARCHAR",
        "date": "DATE",
        "action": "VARCHAR",
        "ratio": "DOUBLE",
        "amount": "DOUBLE",
        "source": "VARCHAR",
        "source_file": "VARCHAR",
        "source_row": "BIGINT",
    },
    schema=CORPORATE_ACTIONS,
    derived=(("old_ticker", "NULL::VARCHAR"),),
    checks=(
        *_TICKER_DATE,
        (
            "\"action\" IS NULL OR \"action\" NOT IN ('split', 'dividend', 'rename')",
            "'unknown action: ' || COALESCE(\"action\", '')",
        ),
        (
            '"action" = \'split\' AND ("ratio" IS NULL OR "ratio" <= 0 OR isinf("ratio") OR isnan("ratio"))',
            "'split without a positive ratio'",
        ),
        (
            '"action" = \'dividend\' AND ("amount" IS NULL OR "amount" < 0 OR isnan("amount"))',
            "'dividend without an amount'",
        ),
        # Renames are tickerlake's facts (the built-in list), recorded by the ETL itself.
        ('"action" = \'rename\' AND "old_ticker" IS NULL', "'rename without an old ticker'"),
    ),
)

#: Datasets the ETL loads, by raw dataset name, in load order.
DATASETS: dict[str, Dataset] = {d.name: d for d in (BARS, ACTIONS)}

#: Columns of the ``daily_bars`` raw dataset, in file order. Values are kept as text in
#: the raw zone so that the ETL can quarantine unparseable ones with their original text.
RAW_BAR_COLUMNS: tuple[str, ...] = BARS.raw_columns
#: Columns of the ``corporate_actions`` raw dataset, in file order.
RAW_ACTION_COLUMNS: tuple[str, ...] = ACTIONS.raw_columns
#: Columns of ``market.daily_bars`` that the insights, the dashboard and the replay read:
#: the key and the values, without provenance.
BAR_COLUMNS: tuple[str, ...] = tuple(c for c in BARS.output if c != "source")
