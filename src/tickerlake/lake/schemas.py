"""Canonical table schemas and raw column layouts, as defined by the lake's contract.

Kept so that ``tickerlake.lake.schemas`` names stay importable; the definitions live in
:mod:`tickerlake.lake.contract.datasets`.
"""

from __future__ import annotations

from tickerlake.lake.contract.datasets import (
    CORPORATE_ACTIONS,
    DAILY_BARS,
    QUARANTINE,
    RAW_ACTION_COLUMNS,
    RAW_BAR_COLUMNS,
    STREAM_BARS,
    STREAM_TICKS,
    TABLES,
    arrow_schema,
)

__all__ = [
    "CORPORATE_ACTIONS",
    "DAILY_BARS",
    "QUARANTINE",
    "RAW_ACTION_COLUMNS",
    "RAW_BAR_COLUMNS",
    "STREAM_BARS",
    "STREAM_TICKS",
    "TABLES",
    "arrow_schema",
]
