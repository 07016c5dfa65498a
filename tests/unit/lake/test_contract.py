"""The lake's contract: one ticker rule, dataset records, layout and SQL quoting."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tickerlake.config import Settings
from tickerlake.lake.contract import (
    BAR_COLUMNS,
    BARS,
    DATASETS,
    RAW_BAR_COLUMNS,
    TABLES,
    TICKER_MAX_LENGTH,
    TICKER_PATTERN,
    LakeLayout,
    content_hash,
    duck_path,
    file_key,
    hash_from_part_name,
    is_ticker,
    normalize_ticker,
    part_name,
    raw_file_hash,
    sql_ident,
    sql_list,
    sql_literal,
    sql_map,
)
from tickerlake.lake.storage import FileEntry

GOOD = [
    "AAPL",
    "BRK.B",
    "BRK/B",
    "BF-B",
    "^GSPC",
    "EURUSD=X",
    "GC=F",
    "M&M.NS",
    "7203.T",
    "A" * TICKER_MAX_LENGTH,
]
BAD = ["", "aapl", " AAPL", "AA PL", "A" * (TICKER_MAX_LENGTH + 1), ".B", "-B", "/B", "A;B", "A'B", "AAPL\n"]


@pytest.mark.parametrize("text", GOOD)
def test_real_symbols_are_tickers(text: str) -> None:
    assert is_ticker(text)


@pytest.mark.parametrize("text", BAD)
def test_non_symbols_are_not(text: str) -> None:
    assert not is_ticker(text)


def test_normalize_upper_cases_and_trims() -> None:
    assert normalize_ticker(" brk/b ") == "BRK/B"
    assert normalize_ticker("aa pl") is None


def test_every_engine_reads_the_pattern_alike() -> None:
    """Python (web, csv), RE2 (stream decoder) and DuckDB (ETL check) give the same answers."""
    texts = GOOD + BAD
    python = [is_ticker(t) for t in texts]
    re2 = pc.match_substring_regex(pa.array(texts), TICKER_PATTERN).to_pylist()
    con = duckdb.connect()
    duck = [con.execute("SELECT regexp_full_match(?, ?)", [t, TICKER_PATTERN]).fetchone()[0] for t in texts]
    assert python == re2 == duck


def test_dataset_records_state_each_fact_once() -> None:
    assert BARS.key == ("ticker", "date")
    assert DATASETS["corporate_actions"].key == ("ticker", "date", "action")
    for ds in DATASETS.values():
        assert TABLES[ds.table] is ds.schema
        derived = {c for c, _ in ds.derived}
        assert set(ds.output) <= set(ds.raw_columns) | derived, ds.name
        assert not derived & set(ds.raw_columns), ds.name
        assert ds.output == tuple(f.name for f in ds.schema.fields if f.name != "ingested_at")
    assert RAW_BAR_COLUMNS[:2] == ("ticker", "date")
    assert BAR_COLUMNS == (
        "ticker",
        "date",
        "open",
        "high",
        "low",
        "close",
        "adj_close",
        "volume",
        "raw_close",
    )
    assert BARS.reader_types["volume"] == "DOUBLE"


def test_sql_quoting_survives_quotes() -> None:
    con = duckdb.connect()
    nasty = 'o\'brien "x".csv'
    assert con.execute(f"SELECT {sql_literal(nasty)}").fetchone()[0] == nasty
    assert con.execute(f"SELECT {sql_list(['a', nasty])}").fetchone()[0] == ["a", nasty]
    assert con.execute(f"SELECT 1 AS {sql_ident(nasty)}").description[0][0] == nasty
    assert con.execute(f"SELECT {sql_map({nasty: 'DATE'})}").fetchone()[0] == {nasty: "DATE"}


def test_layout(tmp_path: Path) -> None:
    settings = Settings(lake=str(tmp_path / "lake"))
    layout = LakeLayout.of(settings)
    root = settings.lake_uri
    assert layout.raw_tables == f"{root}/catalog/raw_tables.json"
    assert layout.crawl_state == f"{root}/catalog/crawl_state.json"
    assert layout.access_tokens == f"{root}/catalog/access_tokens.json"
    assert layout.warehouse == f"{root}/warehouse"
    uri = layout.raw_file("daily_bars", "csv", "x.csv")
    assert uri == f"{root}/raw/daily_bars/source=csv/x.csv"
    assert layout.dataset_of(uri) == "daily_bars"
    assert layout.dataset_of(f"{root}/raw/stray.csv") is None
    assert duck_path(settings, uri) == uri.removeprefix("file://")


def test_content_addressed_names() -> None:
    data = b"ticker,date\n"
    digest = content_hash([data[:7], data[7:]])  # chunking does not change the hash
    name = part_name(data, "csv")
    assert name == f"part-{digest}.csv"
    assert hash_from_part_name(f"file:///lake/raw/d/source=s/{name}") == digest
    assert hash_from_part_name("file:///lake/raw/d/source=s/o'brien.csv") is None
    assert file_key(FileEntry("file:///x", 3, 7)) == "3:7"


def test_a_raw_file_is_known_by_its_content_whatever_its_name(tmp_path: Path) -> None:
    from tickerlake.lake.storage import LakeStorage

    data = b"ticker,date\nAAPL,2020-01-02\n"
    storage = LakeStorage(Settings(lake=str(tmp_path)))
    named = tmp_path / part_name(data, "csv")
    by_hand = tmp_path / "copied by hand.csv"
    named.write_bytes(b"not what the name says")  # the name is trusted: it is how the lake writes
    by_hand.write_bytes(data)
    digest = content_hash([data])
    assert raw_file_hash(storage, FileEntry(f"file://{named}", 1, 1)) == digest
    assert raw_file_hash(storage, FileEntry(f"file://{by_hand}", len(data), 1)) == digest
