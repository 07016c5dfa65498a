"""The ETL job (Glue job's role): raw CSV files → curated Iceberg tables.

For each curated table (:data:`tickerlake.lake.validation.SPECS`) the job reads only the
raw files it has not loaded yet, types and validates every row in DuckDB, sends invalid
rows to ``market.quarantine`` with their reasons, deduplicates on the key (last write wins:
later files, then later rows), and merges the result into the Iceberg table:

* new keys are written as Parquet files by a streaming writer and registered with
  ``add_files`` (no second copy of the data, bounded memory);
* keys already in the table with identical values are counted as duplicates, not written;
* keys already in the table with different values rewrite the affected tickers'
  rows (copy-on-write ``overwrite``) in the same atomic commit.

Counts always reconcile: ``read = loaded + duplicates + quarantined``. Loaded raw files are
remembered in ``catalog/etl_state.json`` so that re-running changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.expressions import In
from pyiceberg.table import Table

from tickerlake.config import Settings
from tickerlake.lake.catalog import ensure_table, open_catalog
from tickerlake.lake.crawler import CrawlReport, crawl, raw_changed, scan_raw_zone
from tickerlake.lake.duck import connect
from tickerlake.lake.schemas import QUARANTINE, RAW_ACTION_COLUMNS, RAW_BAR_COLUMNS, TABLES, arrow_schema
from tickerlake.lake.storage import FileEntry, LakeStorage
from tickerlake.lake.validation import SPECS, TableSpec, reason_sql, typed_select_sql

__all__ = ["EtlReport", "TableLoad", "run_etl"]

_RAW_COLUMNS = {"daily_bars": RAW_BAR_COLUMNS, "corporate_actions": RAW_ACTION_COLUMNS}
_FILE_ROWS = 8_000_000
_BATCH_ROWS = 1_000_000

#: Progress callback: (stage description, done, total).
Progress = Callable[[str, int, int], None]


@dataclass
class TableLoad:
    """What the ETL did to one curated table.

    Attributes:
        table: Curated table identifier.
        files: Raw files read.
        read: Rows read from those files (including malformed lines).
        inserted: New keys written.
        updated: Existing keys whose values changed (last write wins).
        duplicates: Rows superseded by a later row with the same key, or identical to
            the row already in the table.
        quarantined: Invalid rows sent to ``market.quarantine``.
        reasons: Quarantined rows per reason.
        snapshot_id: Iceberg snapshot committed, if any.
    """

    table: str
    files: int = 0
    read: int = 0
    inserted: int = 0
    updated: int = 0
    duplicates: int = 0
    quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    snapshot_id: int | None = None

    @property
    def loaded(self) -> int:
        """Rows written (new or changed keys)."""
        return self.inserted + self.updated

    @property
    def reconciles(self) -> bool:
        """Whether read = loaded + duplicates + quarantined."""
        return self.read == self.loaded + self.duplicates + self.quarantined


@dataclass
class EtlReport:
    """Outcome of one ETL run.

    Attributes:
        run_id: Identifier written into the snapshot summaries.
        crawled: Whether the raw zone had changed and was crawled first.
        crawl: The crawl report when crawled.
        tables: Per-table loads.
        seconds: Wall-clock duration.
    """

    run_id: str
    crawled: bool = False
    crawl: CrawlReport | None = None
    tables: list[TableLoad] = field(default_factory=list)
    seconds: float = 0.0


def _state_uri(storage: LakeStorage) -> str:
    return storage.uri("catalog", "etl_state.json")


def _file_key(e: FileEntry) -> str:
    return f"{e.size}:{e.mtime_ns}"


def _sql_list(items: list[str]) -> str:
    return "[" + ", ".join("'" + s.replace("'", "''") + "'" for s in items) + "]"


def run_etl(settings: Settings, on_progress: Progress | None = None) -> EtlReport:
    """Crawl if needed, then load every curated table from its new raw files.

    Args:
        settings: Runtime settings.
        on_progress: Optional progress callback.

    Returns:
        The run's report.
    """
    started = dt.datetime.now(dt.UTC)
    storage = LakeStorage(settings)
    report = EtlReport(run_id=started.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8])
    if raw_changed(settings):
        report.crawled = True
        report.crawl = crawl(
            settings, on_file=(lambda d, t: on_progress("crawl", d, t)) if on_progress else None
        )
    state_uri = _state_uri(storage)
    state: dict[str, dict[str, str]] = json.loads(storage.read_bytes(state_uri)) if storage.exists(state_uri) else {}
    datasets = scan_raw_zone(settings)
    catalog = open_catalog(settings)
    quarantine = ensure_table(catalog, "market.quarantine")
    con = connect(settings)
    try:
        for dataset, spec in SPECS.items():
            loaded = state.get(dataset, {})
            new_files = [
                e for e in datasets.get(dataset, []) if e.uri.endswith(".csv") and loaded.get(e.uri) != _file_key(e)
            ]
            table = ensure_table(catalog, spec.table)
            load = TableLoad(table=spec.table, files=len(new_files))
            report.tables.append(load)
            if not new_files:
                continue
            # Order of writing: file modification time, then name (content hash) for ties.
            new_files.sort(key=lambda e: (e.mtime_ns, e.uri))
            _load_table(con, settings, storage, spec, table, quarantine, new_files, load, report.run_id, started, on_progress)
            state[dataset] = {**loaded, **{e.uri: _file_key(e) for e in new_files}}
            storage.write_bytes(state_uri, json.dumps(state).encode())
    finally:
        con.close()
    report.seconds = (dt.datetime.now(dt.UTC) - started).total_seconds()
    return report


def _stage(con: duckdb.DuckDBPyConnection, settings: Settings, storage: LakeStorage, spec: TableSpec, files: list[FileEntry]) -> None:
    """Read new raw files into temp table ``staged`` with typed columns and reasons."""
    raw_cols = _RAW_COLUMNS[spec.dataset]
    paths = [storage.path(e.uri) if settings.is_local else e.uri for e in files]
    con.execute("CREATE OR REPLACE TEMP TABLE files AS SELECT unnest(?) AS path, generate_subscripts(?, 1) AS seq", [paths, paths])
    columns = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in raw_cols) + "}"
    reader = (
        f"read_csv({_sql_list(paths)}, header=true, columns={columns}, union_by_name=false, filename=true, "
        "hive_partitioning=false, auto_detect=false, store_rejects=true, null_padding=false)"
    )
    record = "to_json(struct_pack(" + ", ".join(f'"{c}" := r."{c}"' for c in raw_cols) + "))"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE staged AS
        WITH r AS (SELECT *, {typed_select_sql(spec)} FROM {reader}),
        v AS (SELECT r.*, {reason_sql(spec)} AS _reason FROM r)
        SELECT {", ".join(f'"{c}__t" AS "{c}"' for c in spec.typed)},
               f.seq AS _seq,
               TRY_CAST(v.source_row AS BIGINT) AS _row,
               COALESCE(NULLIF(v.source_file, ''), v.filename) AS _file,
               _reason,
               CASE WHEN _reason IS NOT NULL THEN {record.replace('r."', 'v."')} END AS _record
        FROM v JOIN files f ON f.path = v.filename
        """
    )


def _load_table(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    storage: LakeStorage,
    spec: TableSpec,
    table: Table,
    quarantine: Table,
    files: list[FileEntry],
    load: TableLoad,
    run_id: str,
    started: dt.datetime,
    on_progress: Progress | None,
) -> None:
    name = spec.table
    if on_progress:
        on_progress(f"{name}: read + validate", 0, 1)
    _stage(con, settings, storage, spec, files)
    ingested_at = started
    con.execute("SET VARIABLE ingested_at = ?::TIMESTAMPTZ", [ingested_at])
    staged = con.execute("SELECT count(*), count(_reason) FROM staged").fetchone()
    rejects = con.execute(
        """SELECT s.file_path, e.line, e.error_type::VARCHAR, e.error_message, e.csv_line
           FROM reject_errors e JOIN reject_scans s USING (scan_id, file_id)"""
    ).fetchall()
    load.read = staged[0] + len(rejects)
    if on_progress:
        on_progress(f"{name}: read + validate", 1, 1)

    # Quarantine: invalid rows and lines DuckDB could not parse as CSV.
    q_rows = con.execute(
        f"""SELECT '{spec.dataset}' AS dataset, _file AS source_file, _row AS source_row, _reason AS reason,
                   _record AS record, getvariable('ingested_at') AS ingested_at
            FROM staged WHERE _reason IS NOT NULL ORDER BY _seq, _row"""
    ).to_arrow_table()
    if rejects:
        bad = pa.table(
            {
                "dataset": [spec.dataset] * len(rejects),
                "source_file": [r[0] for r in rejects],
                "source_row": pa.array([r[1] for r in rejects], pa.int64()),
                "reason": [f"malformed CSV line ({r[2].lower()}): {r[3].splitlines()[0]}" for r in rejects],
                "record": [r[4] for r in rejects],
                "ingested_at": pa.array([ingested_at] * len(rejects), pa.timestamp("us", "UTC")),
            }
        )
        q_rows = pa.concat_tables([q_rows.cast(bad.schema), bad])
    load.quarantined = q_rows.num_rows
    if q_rows.num_rows:
        counts = q_rows.group_by("reason").aggregate([("reason", "count")])
        # Reasons carry offending values; group them by their stable prefix.
        for reason, n in zip(counts["reason"].to_pylist(), counts["reason_count"].to_pylist(), strict=True):
            key = "; ".join(part.split(":")[0].split(" '")[0] for part in reason.split("; "))
            load.reasons[key] = load.reasons.get(key, 0) + n

    key = ", ".join(f'"{k}"' for k in spec.key)
    cols = ", ".join(f'"{c}"' for c in spec.typed)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE fresh AS
            SELECT {cols} FROM staged WHERE _reason IS NULL
            QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY _seq DESC, _row DESC NULLS LAST) = 1"""
    )
    valid = staged[0] - staged[1]
    fresh_n = con.execute("SELECT count(*) FROM fresh").fetchone()[0]
    load.duplicates = valid - fresh_n
    con.execute("DROP TABLE staged")

    # Compare against what the table holds: identical rows are duplicates, changed ones updates.
    existing_files = _data_files(table)
    overwrite_keys: list[str] = []
    if existing_files:
        con.execute(f"CREATE OR REPLACE TEMP VIEW existing AS SELECT * FROM read_parquet({_sql_list(existing_files)})")
        same = " AND ".join(f'f."{c}" IS NOT DISTINCT FROM e."{c}"' for c in spec.value_columns)
        on = " AND ".join(f'f."{k}" = e."{k}"' for k in spec.key)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE matched AS
                SELECT {", ".join(f'f."{k}"' for k in spec.key)}, ({same}) AS same
                FROM fresh f JOIN existing e ON {on}"""
        )
        identical, changed = con.execute("SELECT count(*) FILTER (same), count(*) FILTER (NOT same) FROM matched").fetchone()
        load.duplicates += identical
        load.updated = changed
        using = ", ".join(f'"{k}"' for k in spec.key)
        con.execute(f"DELETE FROM fresh WHERE ({using}) IN (SELECT ({using}) FROM matched WHERE same)")
        overwrite_keys = [r[0] for r in con.execute("SELECT DISTINCT ticker FROM matched WHERE NOT same ORDER BY 1").fetchall()]
    load.inserted = con.execute("SELECT count(*) FROM fresh").fetchone()[0] - load.updated

    target_schema = arrow_schema(TABLES[name])
    batch_id = hashlib.sha256("\n".join(e.uri for e in files).encode()).hexdigest()[:16]
    summary = {"tickerlake.etl.run": run_id, "tickerlake.etl.batch": batch_id, "tickerlake.etl.files": str(len(files))}
    written: list[str] = []
    with table.transaction() as tx:
        if overwrite_keys:
            tickers = _sql_list(overwrite_keys)
            replacement = con.execute(
                f"""SELECT {cols}, getvariable('ingested_at') AS ingested_at FROM fresh WHERE ticker IN {tickers}
                    UNION ALL
                    SELECT {cols}, ingested_at FROM existing e WHERE ticker IN {tickers}
                      AND NOT EXISTS (SELECT 1 FROM fresh f WHERE {" AND ".join(f'f."{k}" = e."{k}"' for k in spec.key)})
                    ORDER BY {key}"""
            ).to_arrow_table()
            tx.overwrite(replacement.cast(target_schema), overwrite_filter=In("ticker", overwrite_keys), snapshot_properties=summary)
            con.execute(f"DELETE FROM fresh WHERE ticker IN {tickers}")
        remaining = con.execute("SELECT count(*) FROM fresh").fetchone()[0]
        if remaining:
            written = _write_parquet(con, storage, table, target_schema, f"{cols}, getvariable('ingested_at') AS ingested_at", key, run_id, remaining, name, on_progress)
            tx.add_files(written, snapshot_properties=summary, check_duplicate_files=False)
    if q_rows.num_rows and not _batch_committed(quarantine, batch_id):
        quarantine.append(q_rows.cast(arrow_schema(QUARANTINE)), snapshot_properties=summary)
    if overwrite_keys or written:
        load.snapshot_id = table.refresh().current_snapshot().snapshot_id
    con.execute("DROP TABLE IF EXISTS fresh; DROP TABLE IF EXISTS matched; DROP VIEW IF EXISTS existing")


def _batch_committed(table: Table, batch_id: str) -> bool:
    """Whether a snapshot of ``table`` already carries this batch (a crash after its commit)."""
    return any(s.summary and s.summary.get("tickerlake.etl.batch") == batch_id for s in table.refresh().snapshots())


def _data_files(table: Table) -> list[str]:
    """Parquet files of the table's current snapshot (the ETL never writes delete files)."""
    if table.current_snapshot() is None:
        return []
    paths = []
    for task in table.scan().plan_files():
        if task.delete_files:
            raise RuntimeError(f"{table.name()}: row-level delete files are not supported by the ETL merge")
        path = task.file.file_path
        paths.append(path.removeprefix("file://"))
    return paths


def _write_parquet(
    con: duckdb.DuckDBPyConnection,
    storage: LakeStorage,
    table: Table,
    schema: pa.Schema,
    select: str,
    order: str,
    run_id: str,
    total: int,
    name: str,
    on_progress: Progress | None,
) -> list[str]:
    """Stream ``fresh`` sorted by key into Parquet files in the table's data folder."""
    reader = con.execute(f"SELECT {select} FROM fresh ORDER BY {order}").to_arrow_reader(_BATCH_ROWS)
    uris: list[str] = []
    writer: pq.ParquetWriter | None = None
    in_file = done = 0
    base = table.location().rstrip("/") + "/data"
    storage.ensure_dir(base)
    try:
        for batch in reader:
            if writer is None or in_file >= _FILE_ROWS:
                if writer is not None:
                    writer.close()
                uri = f"{base}/etl-{run_id}-{len(uris):05d}.parquet"
                uris.append(uri)
                writer = pq.ParquetWriter(
                    storage.path(uri), schema, filesystem=storage.fs, compression="zstd", write_statistics=True
                )
                in_file = 0
            writer.write_batch(batch.cast(schema))
            in_file += batch.num_rows
            done += batch.num_rows
            if on_progress:
                on_progress(f"{name}: write", done, total)
    finally:
        if writer is not None:
            writer.close()
    return uris
