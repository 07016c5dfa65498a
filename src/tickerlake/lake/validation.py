"""Typing and validation rules of the curated tables, as DuckDB SQL. No I/O.

Two paths share one set of rules:

* the fast path reads raw CSV with each column's declared type; DuckDB's reader sends
  lines that do not cast (or are malformed) to its rejects table;
* the slow path re-reads only those rejected lines as text and types them with lenient
  parsers (US dates, Yahoo's timestamped dates, thousands separators, ``1234.0``
  volumes), naming the column and the text of what still does not parse.

Both then apply the same semantic :attr:`TableSpec.checks`; a row failing any of them is
quarantined with every reason, joined by ``"; "``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "ACTIONS_SPEC",
    "BARS_SPEC",
    "SPECS",
    "TableSpec",
    "clean_price_artifacts",
    "lenient_select_sql",
    "normalise_sql",
    "reason_sql",
]

# Relative slack for OHLC ordering checks: prices arrive as decimal text, some with
# single-precision artefacts (relative error up to 6e-8) that are cleaned only later.
_TOL = 1e-6


def _text(col: str) -> str:
    """The trimmed raw text of column ``col``, NULL when empty."""
    return f"NULLIF(trim(\"{col}\"), '')"


def _lenient(col: str, typ: str) -> str:
    t = _text(col)
    if typ == "DATE":
        return (
            f"COALESCE(TRY_CAST({t} AS DATE), TRY_CAST(CASE WHEN regexp_matches({t}, "
            f"'^\\d{{4}}-\\d{{2}}-\\d{{2}}[ T]') THEN left({t}, 10) END AS DATE), "
            f"TRY_STRPTIME({t}, ['%m/%d/%Y', '%Y/%m/%d', '%d-%b-%Y', '%Y%m%d'])::DATE)"
        )
    if typ == "DOUBLE":
        return f"TRY_CAST(replace({t}, ',', '') AS DOUBLE)"
    if typ in ("DOUBLE", "BIGINT"):
        # Integers are read as DOUBLE too: normalise_sql rejects fractions instead of rounding.
        return f"TRY_CAST(replace({t}, ',', '') AS DOUBLE)"
    return t


@dataclass(frozen=True)
class TableSpec:
    """How one raw dataset becomes one curated table.

    Attributes:
        dataset: Raw dataset name.
        table: Curated table identifier.
        key: Key columns (deduplicated, last write wins).
        types: Every raw column → DuckDB type, in file order.
        output: Typed columns written to the curated table (before ``ingested_at``).
        checks: ``(condition meaning invalid, reason SQL)`` over typed columns.
        prices: Price columns cleaned of single-precision artefacts (see
            :func:`clean_price_artifacts`).
    """

    dataset: str
    table: str
    key: tuple[str, ...]
    types: dict[str, str]
    output: tuple[str, ...]
    checks: tuple[tuple[str, str], ...]
    prices: tuple[str, ...] = ()

    @property
    def reader_types(self) -> dict[str, str]:
        """Types for the CSV reader: BIGINT columns are read as DOUBLE.

        DuckDB's reader rounds ``1.5`` into a BIGINT column; reading a double and
        checking that it is integral turns that into a quarantine reason instead.
        """
        return {c: "DOUBLE" if t == "BIGINT" else t for c, t in self.types.items()}

    @property
    def value_columns(self) -> tuple[str, ...]:
        """Output columns that are not part of the key."""
        return tuple(c for c in self.output if c not in self.key)


def _positive(col: str, required: bool = False) -> list[tuple[str, str]]:
    out = [(f'"{col}" IS NULL', f"'missing {col}'")] if required else []
    out += [
        (f'isnan("{col}") OR isinf("{col}")', f"'{col} is not finite'"),
        (f'"{col}" <= 0', f"'{col} <= 0: ' || \"{col}\""),
    ]
    return out


_ORDER = (
    ('"high" < "low"', "'high < low'"),
    (f'"open" > "high" * (1 + {_TOL}) OR "open" < "low" * (1 - {_TOL})', "'open outside low..high'"),
    (f'"close" > "high" * (1 + {_TOL}) OR "close" < "low" * (1 - {_TOL})', "'close outside low..high'"),
)

_TICKER_DATE = (
    ('"ticker" IS NULL', "'missing ticker'"),
    ('"date" IS NULL', "'missing date'"),
    ('"date" < DATE \'1900-01-01\' OR "date" > current_date + 1', "'date out of range: ' || \"date\""),
)

BARS_SPEC = TableSpec(
    dataset="daily_bars",
    table="market.daily_bars",
    key=("ticker", "date"),
    types={
        "ticker": "VARCHAR",
        "date": "DATE",
        "open": "DOUBLE",
        "high": "DOUBLE",
        "low": "DOUBLE",
        "close": "DOUBLE",
        "adj_close": "DOUBLE",
        "volume": "BIGINT",
        "source": "VARCHAR",
        "source_file": "VARCHAR",
        "source_row": "BIGINT",
    },
    output=("ticker", "date", "open", "high", "low", "close", "adj_close", "volume", "source"),
    prices=("open", "high", "low", "close", "adj_close"),
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

ACTIONS_SPEC = TableSpec(
    dataset="corporate_actions",
    table="market.corporate_actions",
    key=("ticker", "date", "action"),
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
    output=("ticker", "date", "action", "ratio", "amount", "source"),
    checks=(
        *_TICKER_DATE,
        (
            "\"action\" IS NULL OR \"action\" NOT IN ('split', 'dividend')",
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
    ),
)

#: Specs by raw dataset name, in load order.
SPECS: dict[str, TableSpec] = {s.dataset: s for s in (BARS_SPEC, ACTIONS_SPEC)}


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


def normalise_sql(spec: TableSpec) -> str:
    """Select list that normalises typed columns (upper-case tickers, lower-case actions...)."""
    out = []
    for col in spec.types:
        if col == "ticker":
            out.append('upper(NULLIF(trim("ticker"), \'\')) AS "ticker"')
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
    return ", ".join(out)


def reason_sql(spec: TableSpec) -> str:
    """Expression giving every failed check joined by '; ', NULL for a valid row.

    The reasons are only assembled for rows that fail, which keeps the valid majority cheap.
    """
    any_bad = " OR ".join(f"COALESCE({cond}, false)" for cond, _ in spec.checks)
    parts = ", ".join(f"CASE WHEN COALESCE({cond}, false) THEN {reason} END" for cond, reason in spec.checks)
    return f"CASE WHEN {any_bad} THEN concat_ws('; ', {parts}) END"


def lenient_select_sql(spec: TableSpec) -> tuple[str, str]:
    """Slow path over text columns: (select list of typed columns, parse-failure reason expression)."""
    typed = ", ".join(f'{_lenient(c, t)} AS "{c}"' for c, t in spec.types.items())
    fails = ", ".join(
        f"CASE WHEN {_text(c)} IS NOT NULL AND {_lenient(c, t)} IS NULL THEN "
        f"'unparseable {c} ' || chr(39) || {_text(c)} || chr(39) END"
        for c, t in spec.types.items()
        if t != "VARCHAR"
    )
    return typed, f"NULLIF(concat_ws('; ', {fails}), '')"
