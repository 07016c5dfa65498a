"""JSON-ready values of results and query rows, for the CLI's ``--json`` and the web API. No I/O.

The one conversion of Python (and DuckDB/Arrow) values into what :func:`json.dumps` takes;
:mod:`tickerlake.query.results` re-exports it for query rows.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import math
import sys
import uuid
from collections.abc import Mapping
from typing import Any

__all__ = ["jsonable"]


def _interval(value: Any) -> str | None:
    """A DuckDB INTERVAL (Arrow ``MonthDayNano``) as ISO 8601, or None if ``value`` is not one."""
    # Looked up only if pyarrow is already loaded: this module must not import it, and a
    # value of an Arrow type cannot exist without it.
    pa = sys.modules.get("pyarrow")
    if pa is None or not isinstance(value, pa.MonthDayNano):
        return None
    # Months and days do not have a fixed length, so all three parts are kept.
    seconds = value.nanoseconds / 1e9
    return f"P{value.months}M{value.days}DT{seconds:g}S"


# Field names per dataclass type: a result of thousands of rows would otherwise ask
# dataclasses.fields for every row.
_FIELDS: dict[type, tuple[str, ...]] = {}


def jsonable(obj: Any) -> Any:
    """Any result value as a JSON-ready value.

    Dataclasses and pydantic models become objects; mappings objects with string keys;
    sequences and sets lists; dates, datetimes and times ISO strings; durations seconds;
    decimals numbers (whole ones stay exact ints: DuckDB sums of BIGINT are HUGEINT, which
    Arrow carries as decimal); intervals ISO 8601 durations; bytes base64; UUIDs strings.
    NaN and infinities become None (JSON has neither); numpy scalars become Python numbers;
    anything else unknown becomes its ``str``.
    """
    kind = type(obj)
    # Fast paths by exact type (the bulk of a large result); subclasses take the general path.
    if kind is float:
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if obj is None or kind is str or kind is int or kind is bool:
        return obj
    names = _FIELDS.get(kind)
    if names is not None:
        return {n: jsonable(getattr(obj, n)) for n in names}
    if kind is tuple or kind is list:
        return [jsonable(v) for v in obj]
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        names = _FIELDS[kind] = tuple(f.name for f in dataclasses.fields(obj))
        return {n: jsonable(getattr(obj, n)) for n in names}
    if isinstance(obj, decimal.Decimal):
        if obj.is_finite() and obj == obj.to_integral_value():
            return int(obj)
        return jsonable(float(obj))
    if isinstance(obj, dt.datetime | dt.date | dt.time):
        return obj.isoformat()
    if isinstance(obj, dt.timedelta):
        return obj.total_seconds()
    # Before the sequences: an interval is a named tuple.
    interval = _interval(obj)
    if interval is not None:
        return interval
    if isinstance(obj, bytes | bytearray | memoryview):
        return base64.b64encode(obj).decode()
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "model_dump"):
        return jsonable(obj.model_dump())
    # numpy scalars, without importing numpy for the check.
    if type(obj).__module__ == "numpy" and hasattr(obj, "item"):
        return jsonable(obj.item())
    return str(obj)
