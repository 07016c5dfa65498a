"""The sink's pyiceberg transaction: pending metadata computed once per change, commits unchanged."""

from __future__ import annotations

import pytest

from tickerlake.config import Settings
from tickerlake.lake.catalog import load_table, open_catalog
from tickerlake.lake.storage import LakeStorage
from tickerlake.stream.sink.iceberg import IcebergSinkTable, _transaction

pytestmark = pytest.mark.integration


def test_pending_metadata_is_reused_until_an_update_is_staged(tmp_path):
    settings = Settings(lake=str(tmp_path / "lake"), bootstrap_servers="", s3_endpoint="")
    table = IcebergSinkTable(settings, "stream.ticks", LakeStorage(settings)).load()._table
    tx = _transaction(table)
    first = tx.table_metadata
    # Read again with nothing staged: the same copy, not a fresh deep copy each time.
    assert tx.table_metadata is first
    assert first is not table.metadata  # a copy: the loaded table is never handed out
    tx.set_properties({"tickerlake.test": "1"})
    staged = tx.table_metadata
    assert staged is not first
    assert staged.properties["tickerlake.test"] == "1"
    assert "tickerlake.test" not in first.properties
    assert tx.table_metadata is staged
    tx.commit_transaction()
    reloaded = load_table(open_catalog(settings), "stream.ticks")
    assert reloaded.properties["tickerlake.test"] == "1"
    # The table object moved to the committed metadata: a read after commit sees it.
    assert tx.table_metadata.properties["tickerlake.test"] == "1"
