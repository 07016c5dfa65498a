"""Every named query transpiles to Spark SQL and Trino (Athena) and parses there."""

import pytest
import sqlglot

from tickerlake.query.dialects import DIALECTS, transpile_named
from tickerlake.query.named import list_named

VALUES = {"date": "2020-01-02", "tickers": "aapl,MSFT", "text": "x", "int": "3", "float": "1.5"}


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("query", list_named(), ids=lambda q: q.name)
def test_named_query_parses_in_other_dialects(query, dialect: str) -> None:
    values = {p.name: VALUES[p.type] for p in query.params}
    sql = transpile_named(query, values, dialect)
    tree = sqlglot.parse_one(sql, read=dialect)
    assert tree.find(sqlglot.exp.Select) is not None
    assert "$" not in sql and "--" not in sql
    assert "market.daily_bars" in sql


def test_parameters_become_typed_literals() -> None:
    (query,) = [q for q in list_named() if q.name == "close_by_ticker"]
    sql = transpile_named(
        query, {"tickers": "aapl,MSFT", "start": "2020-01-02", "end": "2020-01-31"}, "spark"
    )
    assert "ARRAY('AAPL', 'MSFT')" in sql and "CAST('2020-01-31' AS DATE)" in sql
    # A quote in a value stays inside its literal.
    (daily,) = [q for q in list_named() if q.name == "daily_total_close"]
    sql = transpile_named(daily, {"start": "2020-01-02", "end": "2020-01-03", "tickers": "A'B"}, "trino")
    assert "'A''B'" in sql
    optional = transpile_named(daily, {"start": "2020-01-02", "end": "2020-01-03"}, "spark")
    assert "CAST(CAST(NULL AS ARRAY<STRING>) AS ARRAY<STRING>) IS NULL" in optional
