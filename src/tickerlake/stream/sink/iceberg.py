"""The stream table on the lake's Iceberg catalog: :class:`~tickerlake.stream.sink.committer.SinkTable` on pyiceberg."""

from __future__ import annotations

import contextlib
import posixpath
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import pyarrow as pa

from tickerlake.config import Settings
from tickerlake.lake.storage import LakeStorage
from tickerlake.stream.sink.committer import CommitConflict

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table, Transaction
    from pyiceberg.table.metadata import TableMetadata

__all__ = ["IcebergSinkTable", "IcebergVersion"]


@contextlib.contextmanager
def _conflicts() -> Iterator[None]:
    """The one place that knows how the catalog says "someone else committed first".

    pyiceberg raises ``CommitFailedException`` when the table's metadata moved since it was
    loaded; the SQL catalog on SQLite raises ``OperationalError`` ("database is locked")
    while another process holds its write lock. Both mean: re-read and try again.
    """
    import sqlalchemy.exc
    from pyiceberg.exceptions import CommitFailedException

    try:
        yield
    except (CommitFailedException, sqlalchemy.exc.OperationalError) as e:
        raise CommitConflict(str(e)) from e


def _transaction(table: Table) -> Transaction:
    """A pyiceberg transaction that computes its pending metadata once per change, not per read.

    pyiceberg's ``Transaction.table_metadata`` applies the staged updates to a deep copy of
    the whole table metadata on every read, and an append reads it about 18 times: three
    quarters of a sink commit's time, growing with the snapshots kept. The result only
    changes when the table's metadata or the staged updates do (both are replaced, never
    changed in place), so it is kept until one of them is replaced; readers get the same
    copy, which pyiceberg's frozen models and its read-only use of it make safe.
    """
    from pyiceberg.table import Transaction
    from pyiceberg.table.update import update_table_metadata

    class _Once(Transaction):
        _pending: tuple[object, object, TableMetadata] | None = None

        @property
        def table_metadata(self) -> TableMetadata:
            base, updates, pending = self._pending or (None, None, None)
            if pending is None or base is not self._table.metadata or updates is not self._updates:
                pending = update_table_metadata(self._table.metadata, self._updates)
                self._pending = (self._table.metadata, self._updates, pending)
            return pending

    return _Once(table)


class IcebergVersion:
    """:class:`~tickerlake.stream.sink.committer.TableVersion` on a pyiceberg table."""

    def __init__(self, table: Table, storage: LakeStorage) -> None:
        self._table = table
        self._storage = storage

    @property
    def snapshot_id(self) -> int | None:
        current = self._table.current_snapshot()
        return current.snapshot_id if current is not None else None

    @property
    def properties(self) -> Mapping[str, str]:
        return self._table.properties

    def summaries(self) -> Iterator[Mapping[str, str] | None]:
        from pyiceberg.table.snapshots import ancestors_of

        for snap in ancestors_of(self._table.current_snapshot(), self._table.metadata):
            yield snap.summary

    def snapshot_count(self) -> int:
        return len(self._table.metadata.snapshots)

    def _data_prefix(self, owner: str) -> str:
        return f"{self._table.location().rstrip('/')}/data/stream-{owner}-"

    def write_data_file(self, rows: pa.Table, owner: str) -> str:
        import pyarrow.parquet as pq

        uri = f"{self._data_prefix(owner)}{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex}.parquet"
        path = self._storage.path(uri)
        self._storage.fs.create_dir(posixpath.dirname(path), recursive=True)
        pq.write_table(rows, path, filesystem=self._storage.fs, compression="zstd", row_group_size=1_000_000)
        return uri

    def uncommitted_data_files(self, owner: str) -> list[str]:
        prefix = self._data_prefix(owner)
        folder = posixpath.dirname(prefix)
        if not self._storage.exists(folder):
            return []
        candidates = [e.uri for e in self._storage.list_files(folder) if e.uri.startswith(prefix)]
        if not candidates:
            return []
        referenced: set[str] = set()
        if self._table.current_snapshot() is not None:
            referenced = {t.file.file_path for t in self._table.scan().plan_files()}
        left = [uri for uri in candidates if uri not in referenced]
        if left:
            # Compaction (`tickerlake maintain`) replaces committed files: one still in a
            # live older snapshot was committed, and is removed by maintain once it expires.
            from tickerlake.lake.maintain import referenced_files

            everywhere = referenced_files(self._table)
            left = [uri for uri in left if uri not in everywhere]
        return left

    def delete_data_file(self, uri: str) -> None:
        self._storage.delete(uri)

    def append(self, rows: pa.Table, data_file: str | None, summary: Mapping[str, str]) -> None:
        props = dict(summary)
        with _conflicts(), _transaction(self._table) as tx:
            if data_file is not None:
                tx.add_files([data_file], snapshot_properties=props, check_duplicate_files=False)
            else:
                tx.append(rows, snapshot_properties=props)

    def set_properties(self, properties: Mapping[str, str]) -> None:
        with _conflicts(), self._table.transaction() as tx:
            tx.set_properties(dict(properties))

    def expire_snapshots(self, keep: int) -> None:
        snaps = sorted(self._table.metadata.snapshots, key=lambda s: s.timestamp_ms)
        ids = [s.snapshot_id for s in snaps[:-keep]]
        if ids:
            from tickerlake.lake.maintain import lost_expiry_race

            with _conflicts():
                try:
                    self._table.maintenance.expire_snapshots().by_ids(ids).commit()
                except ValueError as e:  # another sink or `maintain` expired some first
                    if not lost_expiry_race(e):
                        raise
                    raise CommitConflict(str(e)[:200]) from e


class IcebergSinkTable:
    """:class:`~tickerlake.stream.sink.committer.SinkTable` on the lake's Iceberg catalog (the table is created on first use).

    Args:
        settings: Runtime settings (lake, catalog).
        identifier: ``stream.ticks`` or ``stream.bars``.
        storage: The lake's storage (data files are written and deleted through it).
    """

    def __init__(self, settings: Settings, identifier: str, storage: LakeStorage) -> None:
        self.settings = settings
        self.identifier = identifier
        self.storage = storage
        self._catalog: Catalog | None = None
        self._last: Table | None = None

    def load(self) -> IcebergVersion:
        """The table's current version; the last one loaded when the catalog still points at it.

        A sink's commit leaves its table object at the version it created, so the next
        commit usually needs no metadata read: one catalog query says whether another
        writer moved the table since (SQL catalogs; others are always read afresh).
        """
        from tickerlake.lake.catalog import ensure_table, load_table, open_catalog

        if self._catalog is None:
            self._catalog = open_catalog(self.settings)
            ensure_table(self._catalog, self.identifier)
        last = self._last
        if last is None or self._metadata_location() != last.metadata_location:
            last = self._last = load_table(self._catalog, self.identifier)
        return IcebergVersion(last, self.storage)

    def _metadata_location(self) -> str | None:
        """Where a SQL catalog says the table's metadata is now (None: another kind of catalog)."""
        from tickerlake.lake.catalog import metadata_locations

        assert self._catalog is not None
        locations = metadata_locations(self._catalog)
        return None if locations is None else locations.get(tuple(self.identifier.split(".")))
