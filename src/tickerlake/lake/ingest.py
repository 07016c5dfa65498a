"""Lands source output in the raw zone and reports what was written."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pyarrow as pa

from tickerlake.config import Settings
from tickerlake.lake.raw import RawWrite, write_raw

__all__ = ["IngestReport", "land"]


@dataclass
class IngestReport:
    """What an ingest run put into the raw zone.

    Attributes:
        source: Source name (``sim``, ``csv``, ``yahoo``).
        rows: Rows per dataset.
        files_written: New raw files.
        files_unchanged: Files whose identical content was already landed.
        files: URIs of every raw file touched.
    """

    source: str
    rows: dict[str, int] = field(default_factory=dict)
    files_written: int = 0
    files_unchanged: int = 0
    files: list[str] = field(default_factory=list)

    def add(self, dataset: str, result: RawWrite) -> None:
        """Account for one raw write."""
        self.rows[dataset] = self.rows.get(dataset, 0) + result.rows
        if result.created:
            self.files_written += 1
        else:
            self.files_unchanged += 1
        self.files.append(result.uri)


def land(
    settings: Settings,
    source: str,
    batches: Iterable[tuple[str, pa.Table]],
    columns: dict[str, tuple[str, ...]] | None = None,
    on_batch: Callable[[str, pa.Table], None] | None = None,
) -> IngestReport:
    """Write ``(dataset, table)`` batches into the raw zone.

    Args:
        settings: Runtime settings.
        source: Source name, becomes the ``source=`` partition.
        batches: ``(dataset, table)`` pairs; empty tables are skipped.
        columns: Column order per dataset.
        on_batch: Called after each batch (progress).

    Returns:
        The ingest report.
    """
    report = IngestReport(source=source)
    for dataset, table in batches:
        if table.num_rows:
            result = write_raw(settings, dataset, source, table, (columns or {}).get(dataset))
            report.add(dataset, result)
        if on_batch is not None:
            on_batch(dataset, table)
    return report
