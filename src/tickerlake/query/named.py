"""Named queries: .sql files shipped in ``tickerlake/query/named`` with a header comment.

Header format (comment lines before the SQL)::

    -- One or more lines describing what the query returns.
    -- param tickers tickers optional: comma-separated tickers (default: all)
    -- param start date: first day, inclusive

Parameter types: ``date`` (YYYY-MM-DD), ``text``, ``int``, ``float`` and ``tickers`` (a
comma-separated list, upper-cased, bound as ``VARCHAR[]``). Parameters appear in the SQL
as ``$name`` and are bound as prepared-statement parameters, never pasted into the text.
A missing optional parameter is bound as NULL.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from tickerlake.errors import NotFoundError, UserError

__all__ = [
    "PARAM_TYPES",
    "NamedQuery",
    "NamedQueryError",
    "Param",
    "UnknownNamedQuery",
    "bind_params",
    "convert_param",
    "get_named",
    "list_named",
    "parse_named",
]

#: Parameter types a named query may declare.
PARAM_TYPES: tuple[str, ...] = ("date", "text", "int", "float", "tickers")

_PARAM_LINE = re.compile(
    r"^--\s*param\s+(?P<name>[A-Za-z_]\w*)\s+(?P<type>\w+)(?P<optional>\s+optional)?\s*:\s*(?P<doc>.*)$"
)
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class NamedQueryError(UserError):
    """Bad parameters for a named query (or, as :class:`UnknownNamedQuery`, no such query)."""


class UnknownNamedQuery(NamedQueryError, NotFoundError):
    """No named query of that name (exit 3, HTTP 404)."""


@dataclass(frozen=True, slots=True)
class Param:
    """A declared parameter of a named query.

    Attributes:
        name: Name, used as ``$name`` in the SQL and ``--param name=…`` on the CLI.
        type: One of :data:`PARAM_TYPES`.
        optional: Whether it may be omitted (bound as NULL).
        doc: One-line description.
    """

    name: str
    type: str
    optional: bool
    doc: str


@dataclass(frozen=True, slots=True)
class NamedQuery:
    """A named query.

    Attributes:
        name: File name without ``.sql``.
        description: The header's description lines joined into one paragraph.
        params: Declared parameters in header order.
        sql: The full file text (header comments included; DuckDB ignores them).
        kind: Always ``builtin`` (a saved query's is ``saved``), for listings of both.
    """

    name: str
    description: str
    params: tuple[Param, ...]
    sql: str
    kind: str = "builtin"


def parse_named(name: str, text: str) -> NamedQuery:
    """Parse a named query file's header.

    Args:
        name: Query name (file name without ``.sql``).
        text: File contents.

    Returns:
        The parsed query.

    Raises:
        ValueError: A malformed header (a packaging bug, not a user error).
    """
    description: list[str] = []
    params: list[Param] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("--"):
            break
        match = _PARAM_LINE.match(stripped)
        if match:
            ptype = match["type"].lower()
            if ptype not in PARAM_TYPES:
                raise ValueError(f"named query {name}: parameter {match['name']} has unknown type {ptype!r}")
            params.append(Param(match["name"], ptype, bool(match["optional"]), match["doc"].strip()))
        elif not params:
            description.append(stripped[2:].strip())
    if not description:
        raise ValueError(f"named query {name}: missing description header")
    if len({p.name for p in params}) != len(params):
        raise ValueError(f"named query {name}: duplicate parameter")
    return NamedQuery(name, " ".join(d for d in description if d), tuple(params), text)


def convert_param(param: Param, raw: Any) -> Any:
    """Convert one CLI/API value to the Python value bound for ``param``.

    Strings are parsed by type; values already of the right Python type pass through.

    Raises:
        NamedQueryError: The value does not fit the type.
    """
    if raw is None:
        return None
    kind = param.type
    try:
        if kind == "date":
            if isinstance(raw, dt.datetime):
                return raw.date()
            if isinstance(raw, dt.date):
                return raw
            return dt.date.fromisoformat(str(raw).strip())
        if kind == "int":
            if isinstance(raw, bool):
                raise ValueError(raw)
            return int(str(raw).strip()) if not isinstance(raw, int) else raw
        if kind == "float":
            return float(str(raw).strip()) if not isinstance(raw, int | float) else float(raw)
        if kind == "tickers":
            items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
            tickers = [str(t).strip().upper() for t in items if str(t).strip()]
            if not tickers:
                raise ValueError(raw)
            return tickers
        return str(raw)
    except ValueError:
        expected = {
            "date": "a date (YYYY-MM-DD)",
            "int": "an integer",
            "float": "a number",
            "tickers": "one or more comma-separated tickers",
        }.get(kind, "text")
        raise NamedQueryError(f"parameter {param.name}: {raw!r} is not {expected}") from None


def bind_params(query: NamedQuery, values: Mapping[str, Any]) -> dict[str, Any]:
    """Check and convert parameter values for a named query.

    Args:
        query: The named query.
        values: Parameter values by name (strings from the CLI or typed values).

    Returns:
        Values for every declared parameter, ready to bind (NULL for omitted optional ones).

    Raises:
        NamedQueryError: Unknown, missing or badly typed parameters.
    """
    declared = {p.name: p for p in query.params}
    unknown = sorted(set(values) - set(declared))
    if unknown:
        allowed = ", ".join(declared) or "none"
        raise NamedQueryError(f"{query.name}: unknown parameter {unknown[0]!r} (parameters: {allowed})")
    missing = [p.name for p in query.params if not p.optional and values.get(p.name) in (None, "")]
    if missing:
        hint = " ".join(f"--param {n}=…" for n in missing)
        raise NamedQueryError(f"{query.name}: missing parameter {', '.join(missing)} ({hint})")
    out: dict[str, Any] = {}
    for p in query.params:
        raw = values.get(p.name)
        out[p.name] = convert_param(p, None if raw == "" else raw)
    return out


@cache
def _load_all() -> dict[str, NamedQuery]:
    folder = resources.files("tickerlake.query") / "named"
    out: dict[str, NamedQuery] = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".sql") and _NAME.match(entry.name[:-4]):
            name = entry.name[:-4]
            out[name] = parse_named(name, entry.read_text(encoding="utf-8"))
    return dict(sorted(out.items()))


def list_named() -> list[NamedQuery]:
    """All shipped named queries, sorted by name."""
    return list(_load_all().values())


def get_named(name: str) -> NamedQuery:
    """A named query by name.

    Raises:
        UnknownNamedQuery: No such query (the message lists the known ones).
    """
    queries = _load_all()
    if name not in queries:
        raise UnknownNamedQuery(f"unknown named query {name!r} (known: {', '.join(queries)})")
    return queries[name]
