"""Saved queries: named, described, parameterised SQL kept in the lake for everyone who uses it.

Each saved query is one JSON file ``catalog/saved_queries/<name>.json`` written through the
lake's storage layer, so a team on a shared (S3) lake shares them, and two people saving
different queries never overwrite each other's file (one whole-object write per query,
no read-modify-write of a shared list). Names are checked before they become a file name,
so no name can reach another folder.

A saved query is checked by the read-only guard when it is saved (a write is refused
then, not discovered later) and again on every run: the engine checks every statement it
runs, so a file edited by hand in the lake cannot slip a write through.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from tickerlake.config import Settings
from tickerlake.errors import UserError
from tickerlake.lake.contract import LakeLayout
from tickerlake.query.guard import check_sql
from tickerlake.query.named import PARAM_TYPES, NamedQuery, UnknownNamedQuery, list_named

__all__ = [
    "MAX_DESCRIPTION",
    "MAX_SQL",
    "SAVED_DIR",
    "SavedQuery",
    "SavedQueryError",
    "SavedQueryStore",
    "check_name",
    "parse_param_spec",
]

#: The folder of ``catalog/`` that holds one JSON file per saved query.
SAVED_DIR = "saved_queries"
MAX_SQL = 100_000
MAX_DESCRIPTION = 2_000
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_PARAM_SPEC = re.compile(r"^(?P<name>[A-Za-z_]\w{0,62}):(?P<type>[a-z]+)(?P<optional>\?)?(?::(?P<doc>.*))?$")


class SavedQueryError(UserError):
    """A saved query that cannot be saved as given (bad name, parameters, too long)."""


@dataclass(frozen=True, slots=True)
class SavedParam:
    """A declared parameter of a saved query (the same four facts as a named query's)."""

    name: str
    type: str
    optional: bool = False
    doc: str = ""


@dataclass(frozen=True, slots=True)
class SavedQuery:
    """A query someone saved in the lake.

    Attributes:
        name: Unique name (lower-case letters, digits and ``_``; not a built-in's name).
        description: What it answers, in one paragraph.
        sql: One read-only statement; parameters appear as ``$name``.
        params: Declared parameters in order.
        created_at: When it was first saved (UTC, ISO 8601).
        updated_at: When it was last changed (UTC, ISO 8601).
        kind: Always ``saved`` (built-in named queries are ``builtin``), for listings of both.
    """

    name: str
    description: str
    sql: str
    params: tuple[SavedParam, ...]
    created_at: str
    updated_at: str
    kind: str = "saved"

    def as_named(self) -> NamedQuery:
        """The saved query as the engine runs a named query (parameters bound, never pasted)."""
        from tickerlake.query.named import Param

        params = tuple(Param(p.name, p.type, p.optional, p.doc) for p in self.params)
        return NamedQuery(self.name, self.description, params, self.sql)


def check_name(name: str) -> str:
    """A saved query's name, checked: it becomes a file name, so it is strict.

    Raises:
        SavedQueryError: Not 1-63 lower-case letters, digits and ``_`` starting with a
            letter, or the name of a built-in named query.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        shown = repr(name[:70]) if isinstance(name, str) else repr(name)
        raise SavedQueryError(
            f"bad query name {shown}: use 1-63 lower-case letters, digits or '_', starting with a letter"
        )
    if name in {q.name for q in list_named()}:
        raise SavedQueryError(f"{name!r} is a built-in named query: choose another name")
    return name


def parse_param_spec(spec: str) -> SavedParam:
    """A parameter declaration from the command line: ``name:type``, ``name:type?`` (optional),
    optionally followed by ``:description``, e.g. ``start:date:first day``.

    Raises:
        SavedQueryError: Not of that form, or an unknown type.
    """
    m = _PARAM_SPEC.match(spec.strip())
    if not m:
        raise SavedQueryError(f"parameter {spec[:70]!r}: write it as name:type[?][:description]")
    return _param(m["name"], m["type"], bool(m["optional"]), m["doc"] or "")


def _param(name: Any, kind: Any, optional: Any, doc: Any) -> SavedParam:
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_]\w{0,62}", name):
        raise SavedQueryError(f"bad parameter name {str(name)[:70]!r}")
    if kind not in PARAM_TYPES:
        raise SavedQueryError(
            f"parameter {name}: unknown type {str(kind)[:30]!r} (types: {', '.join(PARAM_TYPES)})"
        )
    return SavedParam(name, kind, bool(optional), str(doc or "")[:200])


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _declare(sql: str, params: Iterable[SavedParam]) -> tuple[SavedParam, ...]:
    """The parameters of ``sql``: the declared ones, and ``text`` for each undeclared ``$name``.

    Raises:
        QueryRefused, QueryError: The SQL is not one read-only statement.
        SavedQueryError: A parameter declared twice, or declared but not used in the SQL.
    """
    used = check_sql(sql).parameters
    if any(not re.fullmatch(r"[A-Za-z_]\w*", n) for n in used):
        raise SavedQueryError("a saved query names its parameters ($start), it cannot use '?'")
    declared = list(params)
    names = [p.name for p in declared]
    if len(set(names)) != len(names):
        raise SavedQueryError("a parameter is declared twice")
    unused = sorted(set(names) - set(used))
    if unused:
        raise SavedQueryError(f"parameter {unused[0]} is declared but the SQL has no ${unused[0]}")
    undeclared = sorted(set(used) - set(names), key=lambda n: (_first_use(sql, n), n))
    return tuple(declared) + tuple(SavedParam(n, "text") for n in undeclared)


def _first_use(sql: str, name: str) -> int:
    """Where ``$name`` first appears (undeclared parameters are listed in the order of use)."""
    m = re.search(rf"\${re.escape(name)}\b", sql)
    return m.start() if m else len(sql)


class SavedQueryStore:
    """The saved queries of one lake.

    Args:
        settings: Runtime settings (the lake).
    """

    def __init__(self, settings: Settings) -> None:
        self.layout = LakeLayout.of(settings)
        self.storage = self.layout.storage

    def _uri(self, name: str) -> str:
        return self.layout.catalog_file(SAVED_DIR, f"{check_name(name)}.json")

    def list(self) -> list[SavedQuery]:
        """Every saved query, sorted by name (files that are not valid saved queries are left out)."""
        out = []
        for entry in self.storage.list_files(self.layout.catalog_file(SAVED_DIR)):
            stem = entry.uri.rsplit("/", 1)[-1].removesuffix(".json")
            if not _NAME.match(stem):
                continue
            query = self._read(stem, entry.uri)
            if query is not None:
                out.append(query)
        return sorted(out, key=lambda q: q.name)

    def get(self, name: str) -> SavedQuery:
        """One saved query.

        Raises:
            UnknownNamedQuery: No saved query of that name (a NotFoundError: exit 3, HTTP 404).
        """
        uri = self._uri(name)
        query = self._read(name, uri)
        if query is None:
            known = ", ".join(q.name for q in self.list()) or "none"
            raise UnknownNamedQuery(f"no saved query {name!r} (saved: {known})")
        return query

    def find(self, name: str) -> SavedQuery | None:
        """A saved query, or None (also for a name no saved query could have)."""
        if not isinstance(name, str) or not _NAME.match(name):
            return None
        return self._read(name, self.layout.catalog_file(SAVED_DIR, f"{name}.json"))

    def _read(self, name: str, uri: str) -> SavedQuery | None:
        try:
            doc = json.loads(self.storage.read_bytes(uri))
        except FileNotFoundError:
            return None
        except ValueError:
            return None  # not JSON: someone else's file; never run, never crash a listing
        try:
            params = tuple(
                _param(p["name"], p["type"], p.get("optional"), p.get("doc")) for p in doc["params"]
            )
            sql = doc["sql"]
            if doc["name"] != name or not isinstance(sql, str):
                return None
            return SavedQuery(
                name,
                str(doc.get("description", "")),
                sql,
                params,
                str(doc["created_at"]),
                str(doc["updated_at"]),
            )
        except (KeyError, TypeError, AttributeError, SavedQueryError):
            return None

    def save(
        self,
        name: str,
        sql: str,
        description: str = "",
        params: Iterable[SavedParam] | Iterable[Mapping[str, Any]] = (),
        *,
        replace: bool = False,
    ) -> SavedQuery:
        """Save (or, with ``replace``, overwrite) a query.

        Args:
            name: Its name (see :func:`check_name`).
            sql: One read-only statement; checked by the guard now (and on every run).
            description: What it answers.
            params: Declared parameters (objects or ``{"name", "type", "optional", "doc"}``
                mappings); each undeclared ``$name`` of the SQL becomes a required ``text`` one, in the order of use.
            replace: Overwrite a saved query of that name (keeping its creation time);
                otherwise one existing is an error.

        Raises:
            SavedQueryError: A bad name, description, parameter, or the name is taken.
            QueryRefused: The SQL is not read-only.
            QueryError: The SQL does not parse.
        """
        check_name(name)
        if not isinstance(sql, str) or not sql.strip():
            raise SavedQueryError("empty query: write one SELECT statement")
        if len(sql) > MAX_SQL:
            raise SavedQueryError(f"the query is longer than {MAX_SQL:,} characters")
        description = " ".join(str(description or "").split())
        if len(description) > MAX_DESCRIPTION:
            raise SavedQueryError(f"the description is longer than {MAX_DESCRIPTION:,} characters")
        declared = [
            p
            if isinstance(p, SavedParam)
            else _param(p.get("name"), p.get("type"), p.get("optional"), p.get("doc"))
            for p in params
        ]
        final = _declare(sql, declared)
        old = self.find(name)
        if old is not None and not replace:
            raise SavedQueryError(
                f"a saved query named {name!r} exists: replace it (--replace, or replace=true in the API) "
                "or choose another name"
            )
        now = _now()
        query = SavedQuery(name, description, sql.strip(), final, old.created_at if old else now, now)
        doc = asdict(query)
        doc.pop("kind")
        self.storage.write_bytes(self._uri(name), (json.dumps(doc, indent=1) + "\n").encode())
        return query

    def delete(self, name: str) -> SavedQuery:
        """Delete a saved query and return what it was.

        Raises:
            UnknownNamedQuery: No saved query of that name.
        """
        query = self.get(name)
        self.storage.delete(self._uri(name))
        return query
