"""Typing and validation rules of the curated tables, as DuckDB SQL. No I/O.

Two paths share one set of rules:

* the fast path reads raw CSV with each column's declared type; DuckDB's reader sends
  lines that do not cast (or are malformed) to its rejects table;
* the slow path re-reads only those rejected lines as text and types them with lenient
  parsers (US dates, Yahoo's timestamped dates, thousands separators, ``1234.0``
  volumes), naming the column and the text of what still does not parse.

Both then apply the same semantic :attr:`~tickerlake.lake.contract.Dataset.checks` (the
rules are part of each dataset's record in the lake's contract); a row failing any of
them is quarantined with every reason, joined by ``"; "``.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from tickerlake.lake.contract import Dataset, rename_sql, sql_ident

__all__ = [
    "clean_price_artifacts",
    "lenient_select_sql",
    "normalise_sql",
    "reason_sql",
]


def _text(col: str) -> str:
    """The trimmed raw text of column ``col``, NULL when empty."""
    return f"NULLIF(trim({sql_ident(col)}), '')"


def _lenient(col: str, typ: str) -> str:
    t = _text(col)
    if typ == "DATE":
        return (
            f"COALESCE(TRY_CAST({t} AS DATE), TRY_CAST(CASE WHEN regexp_matches({t}, "
            f"'^\\d{{4}}-\\d{{2}}-\\d{{2}}[ T]') THEN left({t}, 10) END AS DATE), "
            f"TRY_STRPTIME({t}, ['%m/%d/%Y', '%Y/%m/%d', '%d-%b-%Y', '%Y%m%d'])::DATE)"
        )
    if typ in ("DOUBLE", "BIGINT"):
        # Integers are read as DOUBLE too: normalise_sql rejects fractions instead of rounding.
        return f"TRY_CAST(replace({t}, ',', '') AS DOUBLE)"
    return t


def clean_price_artifacts(prices: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Prices without single-precision artefacts.

    Yahoo stores prices in single precision, so its files carry values like 106.209999
    for 106.21. A value with more than four decimals whose shortest float32 spelling has
    at most four is such an artefact and is replaced by that spelling; genuinely precise
    values (0.08152343, 123.456789) are kept. Runs on Arrow arrays in the writer, where it
    costs far less than the same test in SQL.
    """
    suspect = pc.not_equal(pc.round(prices, 4), prices)
    if not pc.any(suspect).as_py():
        return prices
    short = pc.cast(pc.cast(pc.cast(prices, pa.float32()), pa.string()), pa.float64())
    fix = pc.and_(suspect, pc.equal(pc.round(short, 4), short))
    return pc.if_else(fix, short, prices)


def normalise_sql(spec: Dataset) -> str:
    """Select list that normalises typed columns (upper-case tickers, lower-case actions...).

    Tickers are upper-cased and renamed (an ``FB`` bar before 2022-06-09 is META's, see
    :mod:`tickerlake.lake.contract.renames`); the dataset's derived
    columns come with their load expression.
    """
    out = []
    for col in spec.types:
        if col == "ticker":
            upper = "upper(NULLIF(trim(\"ticker\"), ''))"
            out.append(f'{rename_sql(upper, sql_ident("date"))} AS "ticker"')
        elif col == "action":
            out.append('lower(NULLIF(trim("action"), \'\')) AS "action"')
        elif col == "source":
            out.append("COALESCE(NULLIF(trim(\"source\"), ''), 'unknown') AS \"source\"")
        elif spec.types[col] == "BIGINT":
            out.append(
                f'CASE WHEN "{col}" = floor("{col}") AND abs("{col}") < 9e15 THEN "{col}"::BIGINT END AS "{col}", '
                f'"{col}" AS "{col}__read"'
            )
        else:
            out.append(f'"{col}"')
    out += [f"{expr} AS {sql_ident(col)}" for col, expr in spec.derived]
    return ", ".join(out)


def reason_sql(spec: Dataset) -> str:
    """Expression giving every failed check joined by '; ', NULL for a valid row.

    The reasons are only assembled for rows that fail, which keeps the valid majority cheap.
    """
    any_bad = " OR ".join(f"COALESCE({cond}, false)" for cond, _ in spec.checks)
    parts = ", ".join(f"CASE WHEN COALESCE({cond}, false) THEN {reason} END" for cond, reason in spec.checks)
    return f"CASE WHEN {any_bad} THEN concat_ws('; ', {parts}) END"


def lenient_select_sql(spec: Dataset) -> tuple[str, str]:
    """Slow path over text columns: (select list of typed columns, parse-failure reason expression)."""
    typed = ", ".join(f'{_lenient(c, t)} AS "{c}"' for c, t in spec.types.items())
    fails = ", ".join(
        f"CASE WHEN {_text(c)} IS NOT NULL AND {_lenient(c, t)} IS NULL THEN "
        f"'unparseable {c} ' || chr(39) || {_text(c)} || chr(39) END"
        for c, t in spec.types.items()
        if t != "VARCHAR"
    )
    return typed, f"NULLIF(concat_ws('; ', {fails}), '')"
