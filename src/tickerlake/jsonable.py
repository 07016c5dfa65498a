"""JSON-ready values of results, for the CLI's ``--json`` and the web API. No I/O."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["jsonable"]


def jsonable(obj: Any) -> Any:
    """Dataclasses, pydantic models, dates and containers as JSON-ready values.

    NaN and infinities become None (JSON has neither); numpy scalars become Python
    numbers; anything else unknown becomes its ``str``.
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [jsonable(v) for v in obj]
    if isinstance(obj, dt.datetime | dt.date):
        return obj.isoformat()
    if hasattr(obj, "model_dump"):
        return jsonable(obj.model_dump())
    # numpy scalars, without importing numpy for the check.
    if type(obj).__module__ == "numpy" and hasattr(obj, "item"):
        return jsonable(obj.item())
    return str(obj)
