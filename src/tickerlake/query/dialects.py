"""Named queries in other engines' SQL: what Spark (a Glue job) or Trino (Athena) would run.

The named queries are written for DuckDB; :func:`transpile_named` turns one into another
dialect with ``sqlglot``, its ``$name`` parameters replaced by typed literals (values that
went through :func:`~tickerlake.query.named.bind_params`, quoted by ``sqlglot``, never
pasted as text). ``sqlglot`` comes with the ``spark`` extra (and the dev install).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tickerlake.errors import UserError
from tickerlake.query.named import NamedQuery, bind_params

if TYPE_CHECKING:
    from sqlglot import exp

__all__ = ["DIALECTS", "transpile_named"]

#: The dialects a named query is checked against: Spark SQL (Glue, EMR) and Trino (Athena).
DIALECTS: tuple[str, ...] = ("spark", "trino")


def _sqlglot() -> Any:
    try:
        import sqlglot
    except ImportError:
        raise UserError("transpiling SQL needs sqlglot: pip install 'tickerlake[spark]'") from None
    return sqlglot


def _literal(kind: str, value: Any) -> exp.Expression:
    """A typed SQL literal of a bound parameter value."""
    from sqlglot import exp

    sql_type = {
        "date": "DATE",
        "text": "VARCHAR",
        "int": "BIGINT",
        "float": "DOUBLE",
        "tickers": "ARRAY<VARCHAR>",
    }[kind]
    if value is None:
        return exp.cast(exp.null(), sql_type)
    if kind == "tickers":
        return exp.Array(expressions=[exp.Literal.string(str(v)) for v in value])
    if kind == "date":
        assert isinstance(value, dt.date)
        return exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    if kind in ("int", "float"):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def transpile_named(query: NamedQuery, values: Mapping[str, Any], dialect: str) -> str:
    """A named query's SQL in ``dialect`` (``spark``, ``trino``, …) with its parameters inlined.

    Raises:
        NamedQueryError: Bad parameter values (as for DuckDB).
        UserError: sqlglot is missing, or it cannot parse or write the query.
    """
    sqlglot = _sqlglot()
    from sqlglot import exp

    bound = bind_params(query, values)
    kinds = {p.name: p.type for p in query.params}
    try:
        tree = sqlglot.parse_one(query.sql, read="duckdb")
    except sqlglot.errors.ParseError as e:
        raise UserError(f"{query.name}: sqlglot cannot parse the query: {str(e).splitlines()[0]}") from None

    def inline(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Placeholder) and node.name in kinds:
            return _literal(kinds[node.name], bound[node.name])
        return node

    tree = tree.transform(inline)
    for node in tree.walk():
        node.comments = None  # the header: not worth carrying into another engine's SQL
    try:
        return str(tree.sql(dialect=dialect, unsupported_level=sqlglot.ErrorLevel.RAISE))
    except sqlglot.errors.UnsupportedError as e:
        raise UserError(f"{query.name}: cannot be written in {dialect}: {str(e).splitlines()[0]}") from None
