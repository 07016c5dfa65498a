"""The read-only SQL guard: which statements and functions pass, and the refusal messages."""

from __future__ import annotations

import pytest

from tickerlake.errors import QueryRefused
from tickerlake.query.guard import DENIED_FUNCTIONS, QueryError, check_sql, one_line

READS = [
    "SELECT 1",
    "select close from market.daily_bars where ticker = 'AMZN' and date = '2022-06-30'",
    "WITH w AS (SELECT 1 AS x) SELECT x FROM w",
    "VALUES (1, 'a'), (2, 'b')",
    "FROM market.daily_bars LIMIT 5",
    "TABLE market.daily_bars",
    "(SELECT 1) UNION ALL (SELECT 2)",
    "SHOW TABLES",
    "SHOW ALL TABLES",
    "DESCRIBE market.daily_bars",
    "DESCRIBE SELECT 1",
    "SUMMARIZE market.daily_bars",
    "PRAGMA show_tables",
    "PIVOT market.daily_bars ON ticker IN ('AAPL', 'MSFT') USING sum(close) GROUP BY date",
    "SELECT first_value(close) OVER (PARTITION BY ticker ORDER BY date) FROM market.daily_bars",
    "SELECT * FROM read_csv('lake/raw/x.csv')",
    "-- a comment\nSELECT 1; -- trailing comment",
    "SELECT 1;",
    "SELECT 'a;b; DROP TABLE x'",
    "EXPLAIN SELECT 1",
    "EXPLAIN ANALYZE SELECT 1",
    "/* why */ EXPLAIN SELECT * FROM market.daily_bars",
]


@pytest.mark.parametrize("sql", READS)
def test_reads_pass(sql: str) -> None:
    checked = check_sql(sql)
    assert checked.sql == sql
    assert checked.kind == ("EXPLAIN" if "EXPLAIN" in sql else "SELECT")


# (statement, words expected in the refusal)
WRITES = [
    ("INSERT INTO market.daily_bars VALUES ('X')", "INSERT INTO statements are not allowed"),
    ("UPDATE market.daily_bars SET close = 0", "UPDATE statements are not allowed"),
    ("DELETE FROM market.daily_bars", "DELETE statements are not allowed"),
    ("TRUNCATE market.daily_bars", "TRUNCATE statements are not allowed"),
    ("MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE", "MERGE INTO statements are not allowed"),
    ("CREATE TABLE t (a INT)", "CREATE TABLE statements are not allowed"),
    ("CREATE VIEW v AS SELECT 1", "CREATE VIEW statements are not allowed"),
    ("CREATE MACRO m(a) AS a", "CREATE MACRO statements are not allowed"),
    ("CREATE SECRET s (TYPE s3)", "CREATE SECRET statements are not allowed"),
    ("DROP TABLE market.daily_bars", "DROP TABLE statements are not allowed"),
    ("DROP VIEW market.daily_bars", "DROP VIEW statements are not allowed"),
    ("ALTER TABLE t ADD COLUMN b INT", "ALTER TABLE statements are not allowed"),
    ("COMMENT ON TABLE t IS 'x'", "COMMENT statements are not allowed"),
    ("COPY market.daily_bars TO 'out.csv'", "COPY statements are not allowed"),
    ("COPY (SELECT 1) TO 'lake/raw/x.csv'", "COPY statements are not allowed"),
    ("COPY t FROM 'in.csv'", "COPY statements are not allowed"),
    ("EXPORT DATABASE 'dump'", "EXPORT DATABASE statements are not allowed"),
    ("ATTACH 'other.db' AS o", "ATTACH statements are not allowed"),
    ("ATTACH ':memory:' AS m", "ATTACH statements are not allowed"),
    ("DETACH o", "DETACH statements are not allowed"),
    ("INSTALL httpfs", "INSTALL statements are not allowed"),
    ("INSTALL '/tmp/evil.duckdb_extension'", "INSTALL statements are not allowed"),
    ("LOAD httpfs", "LOAD statements are not allowed"),
    ("FORCE INSTALL httpfs", "FORCE INSTALL statements are not allowed"),
    ("UPDATE EXTENSIONS", "UPDATE EXTENSIONS statements are not allowed"),
    ("SET enable_external_access = true", "SET statements are not allowed"),
    ("SET lock_configuration = false", "SET statements are not allowed"),
    ("RESET allowed_directories", "RESET statements are not allowed"),
    ("SET VARIABLE x = 1", "SET VARIABLE statements are not allowed"),
    ("USE memory", "USE statements are not allowed"),
    ("PRAGMA enable_profiling", "PRAGMA statements are not allowed"),
    ("PRAGMA threads = 1", "PRAGMA statements are not allowed"),
    ("CALL duckdb_tables()", "CALL statements are not allowed"),
    ("CHECKPOINT", "CHECKPOINT statements are not allowed"),
    ("VACUUM", "VACUUM statements are not allowed"),
    ("ANALYZE", "ANALYZE statements are not allowed"),
    ("BEGIN TRANSACTION", "BEGIN TRANSACTION statements are not allowed"),
    ("PREPARE p AS SELECT 1", "PREPARE statements are not allowed"),
    ("EXECUTE p", "EXECUTE statements are not allowed"),
    ("DEALLOCATE p", "DEALLOCATE statements are not allowed"),
    ("-- sneaky\n/* x */ DROP TABLE t", "DROP TABLE statements are not allowed"),
]


@pytest.mark.parametrize(("sql", "message"), WRITES)
def test_writes_and_side_effects_are_refused(sql: str, message: str) -> None:
    with pytest.raises(QueryRefused) as info:
        check_sql(sql)
    text = str(info.value)
    assert message in text
    assert "\n" not in text
    assert text.startswith("refused: ")


@pytest.mark.parametrize(
    "sql",
    [
        "EXPLAIN ANALYZE INSERT INTO t VALUES (1)",
        "EXPLAIN DELETE FROM t",
        "EXPLAIN (FORMAT json) COPY t TO 'x.csv'",
        "EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1",
    ],
)
def test_explain_of_a_write_is_refused(sql: str) -> None:
    with pytest.raises(QueryRefused, match=r"EXPLAIN of .* is not allowed"):
        check_sql(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; DROP TABLE t",
        "SELECT 1; SELECT 2",
        "SELECT 1; SET enable_external_access = true",
        "DELETE FROM t; SELECT 1",
    ],
)
def test_one_statement_per_query(sql: str) -> None:
    with pytest.raises(QueryRefused, match="one statement per query, got 2"):
        check_sql(sql)


@pytest.mark.parametrize(
    ("sql", "function"),
    [
        ("SELECT * FROM query('SELECT 1')", "query"),
        ("SELECT * FROM query_table('market.daily_bars')", "query_table"),
        ("SELECT * FROM json_execute_serialized_sql('{}')", "json_execute_serialized_sql"),
        ("SELECT * FROM arrow_scan(1, 2, 3)", "arrow_scan"),
        ("SELECT * FROM pandas_scan(1)", "pandas_scan"),
        ("SELECT * FROM checkpoint()", "checkpoint"),
        ("SELECT * FROM force_checkpoint()", "force_checkpoint"),
        ("SELECT * FROM duckdb_secrets()", "duckdb_secrets"),
        ("SELECT * FROM which_secret('s3://b/x', 's3')", "which_secret"),
        ("SELECT * FROM enable_logging()", "enable_logging"),
        ("SELECT * FROM iceberg_to_ducklake('a', 'b')", "iceberg_to_ducklake"),
        ("SELECT * FROM set_iceberg_table_properties('t', {'a': 'b'})", "set_iceberg_table_properties"),
        ("SELECT nextval('s')", "nextval"),
        ("SELECT write_log('x')", "write_log"),
        ("SELECT getenv('HOME')", "getenv"),
        # Hidden in a CTE, a subquery, a join and a lateral join: the whole tree is walked.
        ("WITH a AS (SELECT * FROM query('SELECT 1')) SELECT * FROM a", "query"),
        ("SELECT 1 WHERE 1 IN (SELECT * FROM query('SELECT 1'))", "query"),
        ("SELECT * FROM range(2) r, LATERAL (SELECT getenv('HOME')) g", "getenv"),
        ("EXPLAIN SELECT * FROM query('SELECT 1')", "query"),
        ("SELECT QUERY('x')", "query"),
    ],
)
def test_denied_functions_are_refused(sql: str, function: str) -> None:
    assert function in DENIED_FUNCTIONS
    with pytest.raises(QueryRefused, match=rf"function {function}\(\) is not allowed"):
        check_sql(sql)


def test_import_database_is_refused_without_reading_the_folder() -> None:
    # DuckDB's parser reads <folder>/schema.sql for IMPORT DATABASE; the guard's parser has
    # no file access, so this is refused instead of reading /etc.
    with pytest.raises(QueryRefused, match=r"refused: .*disabled by configuration"):
        check_sql("IMPORT DATABASE '/etc'")


def test_pivot_without_value_list_is_refused_with_a_hint() -> None:
    with pytest.raises(QueryRefused, match=r"PIVOT needs an explicit value list"):
        check_sql("PIVOT market.daily_bars ON ticker USING sum(close)")


def test_functions_and_parameters_are_reported() -> None:
    checked = check_sql(
        "SELECT upper(ticker), sum(close) FROM read_csv($path) WHERE date >= $start GROUP BY 1"
    )
    assert checked.functions == ("read_csv", "sum", "upper")
    assert checked.parameters == frozenset({"path", "start"})
    assert check_sql("SELECT ?, ?").parameters == frozenset({"1", "2"})


@pytest.mark.parametrize("sql", ["", "   ", ";", "-- only a comment"])
def test_empty_query(sql: str) -> None:
    with pytest.raises(QueryError, match="empty query"):
        check_sql(sql)


def test_syntax_error_is_one_line() -> None:
    with pytest.raises(QueryError) as info:
        check_sql("SELEC 1")
    assert str(info.value) == 'Parser Error: syntax error at or near "SELEC"'
    assert not isinstance(info.value, QueryRefused)


def test_one_line_drops_the_excerpt_and_caret() -> None:
    message = 'Parser Error: syntax error at or near "x"\n\nLINE 1: select x y z\n                 ^'
    assert one_line(message) == 'Parser Error: syntax error at or near "x"'
    assert one_line('Catalog Error: no t!\nDid you mean "u"?') == 'Catalog Error: no t! Did you mean "u"?'
