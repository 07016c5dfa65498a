"""Property tests of the crawler's schema inference on arbitrary names, types and paths.

Contract (see :mod:`tickerlake.lake.inference`): pure functions that never raise on any
string input; types always land in the crawler's lattice; widening is a join (commutative,
associative, idempotent), so a merged schema does not depend on the order files are
crawled in; no column is dropped or doubled (names compared as DuckDB compares
identifiers); a column missing from a file or null in one is nullable.
"""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LATTICE = {"BOOLEAN", "BIGINT", "DOUBLE", "DATE", "TIMESTAMP", "TIMESTAMPTZ", "VARCHAR"}
DUCKDB_TYPES = [
    "BOOLEAN",
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UBIGINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL(18,3)",
    "DATE",
    "TIME",
    "TIMESTAMP",
    "TIMESTAMP_NS",
    "TIMESTAMP WITH TIME ZONE",
    "VARCHAR",
    "BLOB",
    "INTEGER[]",
    "STRUCT(a INTEGER)",
    "",
    " bigint ",
]
raw_types = st.one_of(st.sampled_from(DUCKDB_TYPES), st.text(max_size=12))
lattice_types = st.sampled_from(sorted(LATTICE))
# Names that collide when DuckDB folds ASCII case, plus arbitrary text.
names = st.one_of(
    st.sampled_from(["Close", "close", "CLOSE", "date", "Date", "É", "é", "a", ""]), st.text(max_size=6)
)


def key(name: str) -> str:
    """How DuckDB compares identifiers (checked against DuckDB itself below)."""
    return "".join(ch.lower() if "A" <= ch <= "Z" else ch for ch in name)


file_schemas = st.builds(
    FileSchema,
    uri=st.text(max_size=10),
    columns=st.lists(st.tuples(names, lattice_types, st.booleans()), max_size=6).map(tuple),
)


@SETTINGS
@given(t=raw_types)
def test_normalize_type_lands_in_the_lattice(t: str) -> None:
    assert normalize_type(t) in LATTICE


@SETTINGS
@given(a=lattice_types, b=lattice_types, c=lattice_types)
def test_widen_is_a_join(a: str, b: str, c: str) -> None:
    assert widen(a, a) == a
    assert widen(a, b) == widen(b, a)
    assert widen(widen(a, b), c) == widen(a, widen(b, c))
    w = widen(a, b)
    assert w in LATTICE
    # An upper bound: widening again with either side changes nothing.
    assert widen(w, a) == w and widen(w, b) == w


def as_map(columns: list[RawColumn]) -> dict[str, tuple[str, bool]]:
    return {key(c.name): (c.type, c.nullable) for c in columns}


@SETTINGS
@given(files=st.lists(file_schemas, max_size=5), data=st.data())
def test_merge_schemas_is_order_independent_and_loses_nothing(
    files: list[FileSchema], data: st.DataObject
) -> None:
    merged = merge_schemas([], files)
    keys = [key(c.name) for c in merged]
    assert len(keys) == len(set(keys)), "a column appears twice"
    every = {key(n) for fs in files for n, _, _ in fs.columns}
    assert set(keys) == every, "a column was dropped or invented"
    for col in merged:
        k = key(col.name)
        present = [fs for fs in files if any(key(n) == k for n, _, _ in fs.columns)]
        had_nulls = any(h for fs in files for n, _, h in fs.columns if key(n) == k)
        assert col.nullable == (len(present) < len(files) or had_nulls)
        expected = None
        for fs in files:
            for n, t, _ in fs.columns:
                if key(n) == k:
                    expected = t if expected is None else widen(expected, t)
        assert col.type == expected
    shuffled = data.draw(st.permutations(files))
    assert as_map(merge_schemas([], shuffled)) == as_map(merged)


@SETTINGS
@given(
    base=st.lists(st.tuples(names, lattice_types, st.booleans()), max_size=5),
    files=st.lists(file_schemas, max_size=4),
)
def test_merge_onto_a_registered_schema_keeps_its_columns(
    base: list[tuple[str, str, bool]], files: list[FileSchema]
) -> None:
    cols = [RawColumn(n, t, nl) for n, t, nl in base]
    merged = merge_schemas(cols, files)
    got = {key(c.name) for c in merged}
    assert {key(n) for n, _, _ in base} <= got
    assert len(got) == len(merged)
    for c in cols:
        assert c.type in LATTICE  # the input is not modified in place
    for col in merged:
        # Base columns only ever widen.
        for n, t, _ in base:
            if key(n) == key(col.name):
                assert widen(col.type, t) == col.type


@SETTINGS
@given(path=st.text(max_size=40))
def test_parse_partitions_and_classify_never_raise(path: str) -> None:
    parts = parse_partitions(path)
    folders = path.split("/")[:-1]
    for k, v in parts.items():
        assert k and "/" not in k and "/" not in v
        assert any(p.startswith(f"{k}=") for p in folders)
    assert classify_format(path) in {None, "csv", "jsonl", "parquet"}


@SETTINGS
@given(
    old_cols=st.lists(st.tuples(st.text(max_size=3), lattice_types), max_size=4, unique_by=lambda c: c[0]),
    new_cols=st.lists(st.tuples(st.text(max_size=3), lattice_types), max_size=4, unique_by=lambda c: c[0]),
    parts=st.lists(st.text(max_size=3), max_size=3),
    added=st.integers(0, 3),
    removed=st.integers(0, 3),
)
def test_diff_tables_says_unchanged_only_when_nothing_changed(
    old_cols: list[tuple[str, str]],
    new_cols: list[tuple[str, str]],
    parts: list[str],
    added: int,
    removed: int,
) -> None:
    def table(cols: list[tuple[str, str]], partitions: list[str]) -> RawTable:
        return RawTable("t", "file:///t", "csv", [RawColumn(n, t) for n, t in cols], [], partitions)

    old, new = table(old_cols, []), table(new_cols, parts)
    change = diff_tables(old, new, added, removed)
    before = dict(old_cols)
    # A column that disappears is not a change the crawl reports: merging keeps old columns.
    same = all(before.get(n) == t for n, t in new_cols)
    assert (change.status == "unchanged") == (same and not parts and not added and not removed)
    assert change.new_columns == [n for n, _ in new_cols if n not in before]
    assert change.type_changes == [(n, before[n], t) for n, t in new_cols if n in before and before[n] != t]
    assert diff_tables(None, new, added, removed).status == "new"


# --------------------------------------------------------------------------- regressions


def test_regression_column_names_differing_in_case_are_one_column() -> None:
    # Was two columns, "Close" and "close", which DuckDB resolves to the same identifier.
    files = [
        FileSchema("a.csv", (("Close", "BIGINT", False),)),
        FileSchema("b.csv", (("close", "DOUBLE", False),)),
    ]
    assert merge_schemas([], files) == [RawColumn("Close", "DOUBLE", False)]
    base = [RawColumn("DATE", "DATE", False)]
    assert merge_schemas(base, [FileSchema("c.csv", (("date", "TIMESTAMP", True),))]) == [
        RawColumn("DATE", "TIMESTAMP", True)
    ]


@pytest.mark.parametrize(("a", "b"), [("Close", "close"), ("É", "é"), ("ß", "ss"), ("K", "\u212a")])
def test_name_key_matches_duckdb_identifier_rules(a: str, b: str) -> None:
    con = duckdb.connect()
    try:
        con.execute(f'SELECT "{a}" FROM (SELECT 1 AS "{b}")').fetchall()
        duck_same = True
    except duckdb.Error:
        duck_same = False
    assert duck_same == (key(a) == key(b))
    merged = merge_schemas([], [FileSchema("x", ((a, "BIGINT", False), (b, "BIGINT", False)))])
    assert len(merged) == (1 if duck_same else 2)
