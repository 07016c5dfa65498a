"""Typing and validation rules of the curated tables, as DuckDB SQL expressions. No I/O.

Raw values arrive as text. Each :class:`TableSpec` says how to type every column and
which checks a row must pass; a row failing any check is quarantined with all its
reasons joined by ``"; "``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ACTIONS_SPEC", "BARS_SPEC", "SPECS", "TableSpec", "reason_sql", "typed_select_sql"]

# Relative slack for OHLC ordering checks: prices written as decimal text may round.
_TOL = 1e-9


def _q(expr: str) -> str:
    """SQL for the text of ``expr`` in single quotes, for reasons."""
    return f"chr(39) || {expr} || chr(39)"


def _t(col: str) -> str:
    """The trimmed raw text of a column, NULL when empty."""
    return f"NULLIF(trim(\"{col}\"), '')"


def _date(col: str) -> str:
    # ISO dates, ISO timestamps (Yahoo writes '2010-01-04 00:00:00-05:00') and US dates.
    t = _t(col)
    return (
        f"COALESCE(TRY_CAST(CASE WHEN regexp_matches({t}, '^\\d{{4}}-\\d{{2}}-\\d{{2}}([ T].*)?$') "
        f"THEN left({t}, 10) END AS DATE), TRY_STRPTIME({t}, ['%m/%d/%Y', '%Y/%m/%d', '%d-%b-%Y', '%Y%m%d'])::DATE)"
    )


def _double(col: str) -> str:
    return f"TRY_CAST(replace({_t(col)}, ',', '') AS DOUBLE)"


def _bigint(col: str) -> str:
    # Volumes sometimes arrive as '1234.0'; only integral values are accepted.
    d = _double(col)
    return f"CASE WHEN {d} = floor({d}) AND abs({d}) < 9.2e18 THEN {d}::BIGINT END"


@dataclass(frozen=True)
class TableSpec:
    """How one raw dataset becomes one curated table.

    Attributes:
        dataset: Raw dataset name.
        table: Curated table identifier.
        key: Key columns (deduplicated, last write wins).
        typed: Output column → SQL typing expression over raw text columns.
        checks: ``(condition that means invalid, reason SQL expression)`` pairs over raw
            text (``r.<col>``) and typed values (``<col>``).
    """

    dataset: str
    table: str
    key: tuple[str, ...]
    typed: dict[str, str]
    checks: tuple[tuple[str, str], ...]

    @property
    def value_columns(self) -> tuple[str, ...]:
        """Typed columns that are not part of the key."""
        return tuple(c for c in self.typed if c not in self.key)


def _number_checks(col: str, required: bool, positive: bool = True) -> list[tuple[str, str]]:
    raw = _t(col)
    out = []
    if required:
        out.append((f"{raw} IS NULL", f"'missing {col}'"))
    out.append((f"{raw} IS NOT NULL AND \"{col}__t\" IS NULL", f"'unparseable {col} ' || {_q(raw)}"))
    out.append((f"isnan(\"{col}__t\") OR isinf(\"{col}__t\")", f"'{col} is not finite'"))
    if positive:
        out.append((f'"{col}__t" <= 0', f"'{col} <= 0: ' || {raw}"))
    return out


def _bars_spec() -> TableSpec:
    typed = {
        "ticker": f"upper({_t('ticker')})",
        "date": _date("date"),
        "open": _double("open"),
        "high": _double("high"),
        "low": _double("low"),
        "close": _double("close"),
        "adj_close": _double("adj_close"),
        "volume": _bigint("volume"),
        "source": f"COALESCE({_t('source')}, 'unknown')",
    }
    checks: list[tuple[str, str]] = [
        (f"{_t('ticker')} IS NULL", "'missing ticker'"),
        (f"{_t('date')} IS NULL", "'missing date'"),
        (f'{_t("date")} IS NOT NULL AND "date__t" IS NULL', f"'unparseable date ' || {_q(_t('date'))}"),
        ("\"date__t\" < DATE '1900-01-01' OR \"date__t\" > current_date + 1", "'date out of range: ' || \"date__t\""),
    ]
    for col in ("open", "high", "low"):
        checks += _number_checks(col, required=False)
    checks += _number_checks("close", required=True)
    checks += _number_checks("adj_close", required=False)
    checks += [
        (f"{_t('volume')} IS NOT NULL AND \"volume__t\" IS NULL", f"'unparseable volume ' || {_q(_t('volume'))}"),
        ('"volume__t" < 0', "'negative volume: ' || \"volume__t\""),
        ('"high__t" < "low__t"', "'high < low'"),
        (
            f'"open__t" > "high__t" * (1 + {_TOL}) OR "open__t" < "low__t" * (1 - {_TOL})',
            "'open outside [low, high]'",
        ),
        (
            f'"close__t" > "high__t" * (1 + {_TOL}) OR "close__t" < "low__t" * (1 - {_TOL})',
            "'close outside [low, high]'",
        ),
    ]
    return TableSpec("daily_bars", "market.daily_bars", ("ticker", "date"), typed, tuple(checks))


def _actions_spec() -> TableSpec:
    typed = {
        "ticker": f"upper({_t('ticker')})",
        "date": _date("date"),
        "action": f"lower({_t('action')})",
        "ratio": _double("ratio"),
        "amount": _double("amount"),
        "source": f"COALESCE({_t('source')}, 'unknown')",
    }
    checks: list[tuple[str, str]] = [
        (f"{_t('ticker')} IS NULL", "'missing ticker'"),
        (f"{_t('date')} IS NULL", "'missing date'"),
        (f'{_t("date")} IS NOT NULL AND "date__t" IS NULL', f"'unparseable date ' || {_q(_t('date'))}"),
        ("\"action__t\" IS NULL OR \"action__t\" NOT IN ('split', 'dividend')", "'unknown action ' || " + _q('"action__t"')),
        ("\"action__t\" = 'split' AND (\"ratio__t\" IS NULL OR \"ratio__t\" <= 0)", "'split without a positive ratio'"),
        ("\"action__t\" = 'dividend' AND (\"amount__t\" IS NULL OR \"amount__t\" < 0)", "'dividend without an amount'"),
        *_number_checks("ratio", required=False),
        *_number_checks("amount", required=False, positive=False),
    ]
    return TableSpec("corporate_actions", "market.corporate_actions", ("ticker", "date", "action"), typed, tuple(checks))


BARS_SPEC = _bars_spec()
ACTIONS_SPEC = _actions_spec()
#: Specs by raw dataset name, in load order.
SPECS: dict[str, TableSpec] = {s.dataset: s for s in (BARS_SPEC, ACTIONS_SPEC)}


def typed_select_sql(spec: TableSpec) -> str:
    """Select list producing ``<col>__t`` typed columns from raw text columns."""
    return ", ".join(f'{expr} AS "{col}__t"' for col, expr in spec.typed.items())


def reason_sql(spec: TableSpec) -> str:
    """Expression giving all failed checks joined by '; ' (NULL when the row is valid)."""
    parts = ", ".join(f"CASE WHEN COALESCE({cond}, false) THEN {reason} END" for cond, reason in spec.checks)
    return f"NULLIF(concat_ws('; ', {parts}), '')"
