"""Reads curated tables as Arrow (see :mod:`tickerlake.lake.contract.reading`).

Kept so that ``tickerlake.lake.tables.read_table`` stays importable.
"""

from __future__ import annotations

from tickerlake.lake.contract.reading import read_table

__all__ = ["read_table"]
