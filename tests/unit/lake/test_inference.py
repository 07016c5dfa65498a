from tickerlake.lake.catalog import RawColumn, RawTable
from tickerlake.lake.inference import (
    FileSchema,
    classify_format,
    diff_tables,
    merge_schemas,
    normalize_type,
    parse_partitions,
    widen,
)


def test_classify_format_by_suffix():
    assert classify_format("s3://b/raw/x/part-1.csv") == "csv"
    assert classify_format("/raw/x/a.CSV.gz") == "csv"
    assert classify_format("/raw/x/a.jsonl") == "jsonl"
    assert classify_format("/raw/x/a.ndjson") == "jsonl"
    assert classify_format("/raw/x/a.parquet") == "parquet"
    assert classify_format("/raw/x/notes.txt") is None


def test_normalize_type_collapses_families():
    assert normalize_type("INTEGER") == "BIGINT"
    assert normalize_type("DECIMAL(18,3)") == "DOUBLE"
    assert normalize_type("TIMESTAMP WITH TIME ZONE") == "TIMESTAMPTZ"
    assert normalize_type("TIMESTAMP_NS") == "TIMESTAMP"
    assert normalize_type("STRUCT(a INTEGER)") == "VARCHAR"


def test_widen_within_and_across_families():
    assert widen("BIGINT", "DOUBLE") == "DOUBLE"
    assert widen("DOUBLE", "BIGINT") == "DOUBLE"
    assert widen("DATE", "TIMESTAMP") == "TIMESTAMP"
    assert widen("BIGINT", "DATE") == "VARCHAR"
    assert widen("BOOLEAN", "BIGINT") == "VARCHAR"
    assert widen("VARCHAR", "BIGINT") == "VARCHAR"
    assert widen("DATE", "DATE") == "DATE"


def test_merge_schemas_widens_and_tracks_nullability():
    f1 = FileSchema("a", (("ticker", "VARCHAR", False), ("close", "BIGINT", False)))
    f2 = FileSchema(
        "b", (("ticker", "VARCHAR", False), ("close", "DOUBLE", False), ("volume", "BIGINT", False))
    )
    f3 = FileSchema(
        "c", (("ticker", "VARCHAR", True), ("close", "DOUBLE", False), ("volume", "BIGINT", False))
    )
    cols = merge_schemas([], [f1, f2, f3])
    assert [(c.name, c.type, c.nullable) for c in cols] == [
        ("ticker", "VARCHAR", True),
        ("close", "DOUBLE", False),
        ("volume", "BIGINT", True),  # absent from the first file
    ]


def test_merge_schemas_column_missing_from_a_later_file_becomes_nullable():
    base = [RawColumn("ticker", "VARCHAR", False), RawColumn("note", "VARCHAR", False)]
    cols = merge_schemas(base, [FileSchema("x", (("ticker", "VARCHAR", False),))])
    assert {c.name: c.nullable for c in cols} == {"ticker": False, "note": True}


def test_parse_partitions_reads_hive_folders_only():
    assert parse_partitions("source=sim/year=2008/part-1.csv") == {"source": "sim", "year": "2008"}
    assert parse_partitions("plain/part-1.csv") == {}
    assert parse_partitions("part=a=b/x.csv") == {"part": "a=b"}


def _table(columns, partitions=()):
    return RawTable(
        "t", "file:///lake/raw/t", "csv", [RawColumn(n, t) for n, t in columns], ["source"], list(partitions)
    )


def test_diff_tables_reports_new_columns_type_changes_and_partitions():
    old = _table([("ticker", "VARCHAR"), ("close", "BIGINT")], ["source=a"])
    new = _table([("ticker", "VARCHAR"), ("close", "DOUBLE"), ("volume", "BIGINT")], ["source=a", "source=b"])
    change = diff_tables(old, new, added=1, removed=0)
    assert change.status == "updated"
    assert change.new_columns == ["volume"]
    assert change.type_changes == [("close", "BIGINT", "DOUBLE")]
    assert change.new_partitions == ["source=b"]


def test_diff_tables_new_and_unchanged():
    t = _table([("ticker", "VARCHAR")])
    assert diff_tables(None, t, 2, 0).status == "new"
    assert diff_tables(t, t, 0, 0).status == "unchanged"
