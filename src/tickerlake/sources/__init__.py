"""Market data sources. Each yields ``(dataset, pyarrow.Table)`` batches for the raw zone.

Submodules are imported on demand (``tickerlake.sources.sim``, ``tickerlake.sources.csv``...)
so that importing the package stays cheap.
"""

from __future__ import annotations

__all__: list[str] = []
