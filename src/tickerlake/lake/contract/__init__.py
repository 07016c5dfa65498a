"""The contract of a lake: every fact about a lake, written once.

* :mod:`~tickerlake.lake.contract.layout` — where things live: the raw zone, the
  warehouse, the ``catalog/`` files, content-addressed raw file names;
* :mod:`~tickerlake.lake.contract.datasets` — one :class:`Dataset` record per raw
  dataset (raw columns, curated schema, key, checks) and the curated schemas;
* :mod:`~tickerlake.lake.contract.tickers` — the one ticker rule;
* :mod:`~tickerlake.lake.contract.renames` — ticker renames (FB → META);
* :mod:`~tickerlake.lake.contract.reading` — :func:`read_bars`, the one way bars are read;
* :mod:`~tickerlake.lake.contract.sql` — quoting of generated SQL.

Sources, crawler, ETL, query engine, web, CLI and stream import these facts from here
instead of spelling them again, so what one stage writes the next one accepts.
"""

from __future__ import annotations

from tickerlake.lake.contract.datasets import (
    ACTIONS,
    BAR_COLUMNS,
    BARS,
    CORPORATE_ACTIONS,
    DAILY_BARS,
    DATASETS,
    QUARANTINE,
    RAW_ACTION_COLUMNS,
    RAW_BAR_COLUMNS,
    STREAM_BARS,
    STREAM_TICKS,
    TABLES,
    Check,
    Dataset,
    arrow_schema,
)
from tickerlake.lake.contract.layout import (
    ACCESS_TOKENS_FILE,
    CATALOG_DB_FILE,
    CATALOG_DIR,
    CRAWL_STATE_FILE,
    LAST_CRAWL_FILE,
    RAW_TABLES_FILE,
    RAW_ZONE,
    STATE_DIR,
    WAREHOUSE,
    LakeLayout,
    content_hash,
    duck_path,
    file_key,
    hash_from_part_name,
    part_name,
    raw_file_hash,
)
from tickerlake.lake.contract.reading import read_actions, read_bars, read_table, read_tickers
from tickerlake.lake.contract.renames import RENAMES, Rename, rename_sql
from tickerlake.lake.contract.sql import sql_ident, sql_list, sql_literal, sql_map
from tickerlake.lake.contract.tickers import TICKER_MAX_LENGTH, TICKER_PATTERN, is_ticker, normalize_ticker

__all__ = [
    "ACCESS_TOKENS_FILE",
    "ACTIONS",
    "BARS",
    "BAR_COLUMNS",
    "CATALOG_DB_FILE",
    "CATALOG_DIR",
    "CORPORATE_ACTIONS",
    "CRAWL_STATE_FILE",
    "DAILY_BARS",
    "DATASETS",
    "LAST_CRAWL_FILE",
    "QUARANTINE",
    "RAW_ACTION_COLUMNS",
    "RAW_BAR_COLUMNS",
    "RAW_TABLES_FILE",
    "RAW_ZONE",
    "RENAMES",
    "STATE_DIR",
    "STREAM_BARS",
    "STREAM_TICKS",
    "TABLES",
    "TICKER_MAX_LENGTH",
    "TICKER_PATTERN",
    "WAREHOUSE",
    "Check",
    "Dataset",
    "LakeLayout",
    "Rename",
    "arrow_schema",
    "content_hash",
    "duck_path",
    "file_key",
    "hash_from_part_name",
    "is_ticker",
    "normalize_ticker",
    "part_name",
    "raw_file_hash",
    "read_actions",
    "read_bars",
    "read_table",
    "read_tickers",
    "rename_sql",
    "sql_ident",
    "sql_list",
    "sql_literal",
    "sql_map",
]
