"""The ETL job (Glue job's role): raw CSV files → curated Iceberg tables.

For each curated table (:data:`tickerlake.lake.contract.DATASETS`) the job reads only the
raw files it has not loaded yet. DuckDB reads them with each column's type and applies
the validation rules; lines that do not cast are re-read as text with lenient parsers.
Invalid rows go to ``market.quarantine`` with every reason. Keys are deduplicated (last
write wins: later file, then later source row) and the result is merged into the table:

* into an empty table (a bulk load) rows stream from DuckDB into Parquet files written by
  two encoder threads and registered with ``add_files`` in one commit: bounded memory, no
  second copy. The first attempt skips sorting and checks afterwards that no line was
  rejected and no key repeats; otherwise it is redone sorted by key, latest row first;
* into a non-empty table, keys already present with identical values count as
  duplicates, new keys are appended, and keys whose values changed rewrite the affected
  tickers' rows (copy-on-write ``overwrite``) in the same transaction.

Counts always reconcile: ``read = loaded + duplicates + quarantined``.

Then the corporate-actions pass (:mod:`tickerlake.lake.adjust`) infers splits and
dividends from the prices of every ticker the load touched, records them in
``market.corporate_actions`` (``source = 'inferred'``, or ``'suspected'`` for raw-only
jumps, never applied) and rewrites those tickers' bars so that ``close`` is
split-adjusted and ``raw_close`` as traded. Tickers of the old symbol of a built-in
rename land under the new one (``FB`` → ``META``) when the rows are read.

Which raw files a table holds is recorded in the table itself, in the same atomic commit
as their rows: the table property ``tickerlake.etl.loaded`` lists the content hash of
every raw file ever loaded (and each snapshot's summary the hashes it added). Every plan
starts from the freshly loaded table and skips files already listed, so re-running changes
nothing and a crash at any point leaves either the whole commit or none of it. Concurrent
runs (cron, a watcher and a user at once, on one host or several sharing an S3 lake) are
caught by the commit itself: pyiceberg's blind retry is switched off on these tables
(``commit.retry.num-retries = 0``), so a commit whose table changed since it was planned
fails, and the run re-plans against the fresh table (dropping the files the other run
loaded), at most :data:`_PLAN_ATTEMPTS` times, then stops with a clear error. Quarantined
rows are recorded the same way per raw file (``tickerlake.etl.quarantined`` on
``market.quarantine``, committed before the table's commit), so they are never doubled
either.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy.exc
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException, ValidationException
from pyiceberg.expressions import In, Reference
from pyiceberg.expressions.literals import literal
from pyiceberg.table import Table

from tickerlake import faults
from tickerlake.config import Settings
from tickerlake.errors import InternalError
from tickerlake.lake.adjust import PENDING_PROP, ActionsPass, run_actions_pass
from tickerlake.lake.catalog import ensure_table, open_catalog
from tickerlake.lake.contract import (
    ACTIONS,
    BARS,
    DATASETS,
    QUARANTINE,
    TABLES,
    Dataset,
    arrow_schema,
    duck_path,
    raw_file_hash,
    sql_ident,
    sql_list,
    sql_literal,
    sql_map,
)
from tickerlake.lake.crawler import CrawlReport, crawl, raw_changed, scan_raw_zone
from tickerlake.lake.derived import DerivedReport, refresh_derived
from tickerlake.lake.duck import connect
from tickerlake.lake.storage import FileEntry, LakeStorage
from tickerlake.lake.validation import (
    clean_price_artifacts,
    lenient_select_sql,
    normalise_sql,
    reason_sql,
)
from tickerlake.retry import retry

__all__ = [
    "LOADED_PROP",
    "QUARANTINED_PROP",
    "EtlReport",
    "TableLoad",
    "loaded_hashes",
    "run_etl",
]

#: Table property: JSON list of the content hashes of every raw file the table holds.
LOADED_PROP = "tickerlake.etl.loaded"
#: Quarantine table property: JSON list of ``dataset:hash`` whose rejected rows it holds.
QUARANTINED_PROP = "tickerlake.etl.quarantined"
#: Snapshot summary: JSON list of the content hashes a commit added.
COMMIT_FILES_PROP = "tickerlake.etl.loaded-files"
# Without this pyiceberg would re-apply a conflicting commit on top of the concurrent one,
# loading files twice; the ETL re-plans itself instead.
_TABLE_PROPERTIES = {"commit.retry.num-retries": "0"}
_PLAN_ATTEMPTS = 5
_QUARANTINE_ATTEMPTS = 30
# A ValidationException is pyiceberg finding, while it retries a delete or overwrite, that a
# concurrent writer added files the delete would cover: a lost race too, so re-plan.
_CONFLICTS = (CommitFailedException, ValidationException, sqlalchemy.exc.OperationalError)

_FILE_ROWS = 4_000_000
_BATCH_ROWS = 1_000_000
_WRITERS = 2

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
        skipped: Raw files of the dataset that are not CSV and were not read.
        already_loaded: Raw files skipped because the table already holds them.
        conflicts: Commits that lost against a concurrent writer and were re-planned.
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
    skipped: list[str] = field(default_factory=list)
    already_loaded: int = 0
    conflicts: int = 0
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
        actions: The corporate-actions pass (None when no ticker was pending).
        derived: The insight-ready layer's refresh (:mod:`tickerlake.lake.derived`; None: not run).
        seconds: Wall-clock duration.
    """

    run_id: str
    crawled: bool = False
    crawl: CrawlReport | None = None
    tables: list[TableLoad] = field(default_factory=list)
    actions: ActionsPass | None = None
    derived: DerivedReport | None = None
    seconds: float = 0.0


def loaded_hashes(table: Table) -> set[str]:
    """Content hashes of the raw files a table holds, as its current metadata records them."""
    return set(json.loads(table.properties.get(LOADED_PROP) or "[]"))


def _is_conflict(exc: BaseException) -> bool:
    """Whether a commit lost a race with another writer (the table changed since it was read)."""
    return isinstance(exc, _CONFLICTS)


def _prepared(catalog: Catalog, identifier: str) -> Table:
    """Load (or create) a table with the commit behaviour the ETL relies on.

    Raises:
        TransientError: Other writers kept winning the race to commit (too many of them).
    """

    def attempt() -> Table:
        table = ensure_table(catalog, identifier)
        have = {f.name for f in table.schema().fields}
        if any(f.name not in have for f in TABLES[identifier].fields):
            # A table written before the contract gained a column: add it (nullable, last),
            # so an old lake keeps working and its new rows carry the column.
            with table.update_schema() as update:
                update.union_by_name(TABLES[identifier])
            if identifier == BARS.table:
                # Its rows predate raw_close: the corporate-actions pass looks at every ticker once.
                with table.transaction() as tx:
                    tx.set_properties({PENDING_PROP: json.dumps(["*"])})
        missing = {k: v for k, v in _TABLE_PROPERTIES.items() if table.properties.get(k) != v}
        if missing:
            # The transaction updates ``table`` to the metadata it committed.
            with table.transaction() as tx:
                tx.set_properties(missing)
        return table

    return retry(
        attempt,
        what=identifier,
        on=_is_conflict,
        attempts=_QUARANTINE_ATTEMPTS,
        base_delay_s=0.02,
        max_delay_s=0.5,
        gave_up="could not set its commit properties (too many concurrent writers?)",
    )


def run_etl(settings: Settings, on_progress: Progress | None = None) -> EtlReport:
    """Crawl if needed, then load every curated table from its new raw files.

    Args:
        settings: Runtime settings.
        on_progress: Optional progress callback.

    Returns:
        The run's report.

    Raises:
        NotFoundError: The lake has no raw zone (nothing was ever ingested).
        TransientError: A table kept changing under the run's plans (other writers).
    """
    started = dt.datetime.now(dt.UTC)
    storage = LakeStorage(settings)
    report = EtlReport(run_id=started.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8])
    if raw_changed(settings):
        report.crawled = True
        report.crawl = crawl(
            settings, on_file=(lambda d, t: on_progress("crawl", d, t)) if on_progress else None
        )
    datasets = scan_raw_zone(settings)
    catalog = open_catalog(settings)
    _prepared(catalog, "market.quarantine")
    con = connect(settings)
    try:
        for dataset, spec in DATASETS.items():
            entries = datasets.get(dataset, [])
            report.tables.append(
                _plan_and_load(
                    con, catalog, settings, storage, spec, entries, report.run_id, started, on_progress
                )
            )
        known_changed = any(t.table == ACTIONS.table and t.loaded for t in report.tables)
        if on_progress:
            on_progress("corporate actions", 0, 1)

        def actions_pass() -> ActionsPass | None:
            bars = _prepared(catalog, BARS.table)
            return run_actions_pass(
                con,
                storage,
                bars,
                _prepared(catalog, ACTIONS.table),
                _data_files(bars),
                known_changed,
                report.run_id,
            )

        report.actions = retry(
            actions_pass,
            what="etl: corporate actions",
            on=_is_conflict,
            attempts=_PLAN_ATTEMPTS,
            base_delay_s=0.05,
            gave_up="changed under the corporate-actions pass too often; run `tickerlake etl` again",
        )
        if on_progress:
            on_progress("corporate actions", 1, 1)
        if settings.derived_layer:
            # The insight-ready tables, for the years whose bars changed (after the pass: it rewrites bars).
            report.derived = retry(
                lambda: refresh_derived(settings, report.run_id),
                what="etl: insight-ready layer",
                on=_is_conflict,
                attempts=_PLAN_ATTEMPTS,
                base_delay_s=0.05,
                gave_up="changed under the insight-ready refresh too often; run `tickerlake etl` again",
            )
    finally:
        con.close()
    report.seconds = (dt.datetime.now(dt.UTC) - started).total_seconds()
    return report


def _plan_and_load(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    settings: Settings,
    storage: LakeStorage,
    spec: Dataset,
    entries: list[FileEntry],
    run_id: str,
    started: dt.datetime,
    on_progress: Progress | None,
) -> TableLoad:
    """Load one table's new raw files; plan again on the fresh table whenever a commit loses a race.

    Raises:
        TransientError: The table changed under :data:`_PLAN_ATTEMPTS` plans in a row.
    """
    csvs = [e for e in entries if e.uri.endswith(".csv")]
    skipped = [e.uri for e in entries if not e.uri.endswith(".csv")]
    # Order of writing: file modification time, then name (content hash) for ties.
    csvs.sort(key=lambda e: (e.mtime_ns, e.uri))
    hashes = {e.uri: raw_file_hash(storage, e) for e in csvs}
    conflicts = 0

    def plan() -> TableLoad:
        table = _prepared(catalog, spec.table)
        done = loaded_hashes(table)
        new_files: list[FileEntry] = []
        planned: set[str] = set()
        for e in csvs:
            if hashes[e.uri] not in done and hashes[e.uri] not in planned:
                planned.add(hashes[e.uri])
                new_files.append(e)
        load = TableLoad(
            table=spec.table,
            files=len(new_files),
            skipped=skipped,
            already_loaded=len(csvs) - len(new_files),
            conflicts=conflicts,
        )
        if new_files:
            _load_table(
                con,
                catalog,
                settings,
                storage,
                spec,
                table,
                new_files,
                hashes,
                load,
                run_id,
                started,
                on_progress,
            )
        return load

    def replan(_error: BaseException, _delay: float) -> None:
        # Another writer committed since this plan was made: plan again on its result.
        nonlocal conflicts
        conflicts += 1
        _drop_temp_objects(con)

    return retry(
        plan,
        what=f"etl: {spec.table}",
        on=_is_conflict,
        attempts=_PLAN_ATTEMPTS,
        base_delay_s=0.05,
        gave_up=(
            f"changed under {_PLAN_ATTEMPTS} plans in a row (other writers keep committing); nothing of "
            "this run was committed to it, run `tickerlake etl` again"
        ),
        on_retry=replan,
    )


def _duck_paths(settings: Settings, uris: list[str]) -> list[str]:
    """How DuckDB names lake files: plain paths locally, URIs on object stores."""
    return [duck_path(settings, u) for u in uris]


def _stream_select(spec: Dataset, source: str) -> str:
    """The columns the Parquet writer streams: output, ingestion time, and quarantine fields."""
    cols = ", ".join(sql_ident(c) for c in spec.output)
    return f"""SELECT {cols}, getvariable('ingested_at') AS ingested_at,
                      _reason, _record, source_file, source_row, _file, _line
               FROM ({source})"""


def _rejected_lines(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int, str, str]]:
    """Lines the last typed read rejected: ``(file, line, text, errors)``, one per line."""
    if not _scalar(con, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'rej_errors'"):
        return []
    return con.execute(
        """SELECT s.file_path, e.line, any_value(e.csv_line), string_agg(DISTINCT e.error_type::VARCHAR || ' '
                  || COALESCE(e.column_name, ''), ', ')
           FROM rej_errors e JOIN rej_scans s USING (scan_id, file_id)
           GROUP BY s.file_path, e.line ORDER BY s.file_path, e.line"""
    ).fetchall()


def _typed_select(spec: Dataset, paths: list[str], reader_options: str) -> str:
    """SELECT over the raw files with typed, normalised columns, ``_reason`` and provenance."""
    reader = (
        f"read_csv({sql_list(paths)}, header=true, columns={sql_map(spec.reader_types)}, auto_detect=false, "
        f"filename=true, hive_partitioning=false, {reader_options})"
    )
    record = (
        "to_json(struct_pack("
        + ", ".join(f"{sql_ident(c)} := {sql_ident(c)}" for c in spec.output)
        + "))::VARCHAR"
    )
    return f"""WITH n AS (SELECT {normalise_sql(spec)}, filename AS _file, NULL::BIGINT AS _line,
                              list_position({sql_list(paths)}, filename) AS _seq FROM {reader}),
                 v AS (SELECT *, {reason_sql(spec)} AS _reason FROM n)
            SELECT * EXCLUDE (_file, source_file),
                   -- provenance text only travels with rows bound for the quarantine
                   CASE WHEN _reason IS NOT NULL THEN _file END AS _file,
                   CASE WHEN _reason IS NOT NULL THEN source_file END AS source_file,
                   CASE WHEN _reason IS NOT NULL THEN {record} END AS _record FROM v"""


_STORE_REJECTS = "store_rejects=true, rejects_table='rej_errors', rejects_scan='rej_scans'"


def _stage(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    storage: LakeStorage,
    spec: Dataset,
    files: list[FileEntry],
    bulk: bool,
) -> tuple[int, list[tuple[str, int, str, str]]]:
    """Stage new raw files in temp table ``staged``.

    For an incremental load every row is staged. For a bulk load (empty table) the files
    are only counted here and streamed later by :func:`_bulk_select`; ``staged`` then holds
    just the rows of rejected lines re-read by the lenient slow path.

    Returns:
        Rows staged or to be streamed (typed reader plus re-read lines), and lines that
        stayed malformed even as text: ``(file, line, error, text)``.
    """
    paths = _duck_paths(settings, [e.uri for e in files])
    for t in ("rej_errors", "rej_scans"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    if bulk:
        # A first read that only counts, but touches every column so that lines that do
        # not cast land in the rejects table.
        touch = ", ".join(f'count("{c}")' for c in spec.types)
        accepted = con.execute(
            f"SELECT count(*), {touch} FROM read_csv({sql_list(paths)}, header=true, "
            f"columns={sql_map(spec.reader_types)}, auto_detect=false, {_STORE_REJECTS})"
        ).fetchall()[0][0]  # fetchall: DuckDB writes the rejects tables when the result is closed
        # Only the shape: a second scan with store_rejects would reset the rejects tables.
        empty = _typed_select(spec, paths, "ignore_errors=true")
        con.execute(f"CREATE OR REPLACE TEMP TABLE staged AS {empty} LIMIT 0")
    else:
        con.execute(f"CREATE OR REPLACE TEMP TABLE staged AS {_typed_select(spec, paths, _STORE_REJECTS)}")
        accepted = _scalar(con, "SELECT count(*) FROM staged")
    rejected = _rejected_lines(con)
    if not rejected:
        return accepted, []
    malformed = _stage_lenient(con, settings, spec, rejected, paths)
    # Every rejected line is either a re-read row (now in ``staged``) or malformed.
    return accepted + len(rejected) - len(malformed), malformed


def _bulk_optimistic(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    storage: LakeStorage,
    spec: Dataset,
    table: Table,
    files: list[FileEntry],
    run_id: str,
    on_progress: Progress | None,
) -> tuple[list[str], int, int, list[pa.RecordBatch], int] | None:
    """Bulk load in one unsorted pass, betting that every line casts and every key is new.

    Sources write rows sorted by ticker and date, so the chunks DuckDB reads in parallel
    are already well clustered. The bet is checked afterwards (DuckDB's rejects table, and a distinct
    count over the written files' key columns); if it lost, the files are deleted and
    None tells the caller to take the sorted path.

    Returns:
        Written files, rows kept, valid rows, invalid batches and rows read; or None.
    """
    paths = _duck_paths(settings, [e.uri for e in files])
    for t in ("rej_errors", "rej_scans"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    select = _stream_select(spec, _typed_select(spec, paths, _STORE_REJECTS))
    # Row estimate for the progress bar: bytes over the mean line length of a sample.
    sample = _head(storage, files[0].uri)
    per_row = max(1.0, len(sample) / max(1, sample.count(b"\n")))
    estimate = int(sum(e.size for e in files) / per_row)
    written, kept, valid, bad = _write_parquet(
        con, storage, table, spec, select, run_id, estimate, on_progress
    )
    rejected = _rejected_lines(con)
    repeated = 0
    if written and not rejected:
        key = ", ".join(sql_ident(k) for k in spec.key)
        local = _duck_paths(settings, written)
        repeated = _scalar(
            con, f"SELECT count(*) - count(DISTINCT ({key})) FROM read_parquet({sql_list(local)})"
        )
    if rejected or repeated:
        for uri in written:
            storage.delete(uri)
        return None
    return written, kept, valid, bad, valid + sum(b.num_rows for b in bad)


def _head(storage: LakeStorage, uri: str) -> bytes:
    """The first 64 KiB of a file."""
    with storage.fs.open_input_stream(storage.path(uri)) as f:
        return f.read(1 << 16)


def _bulk_select(spec: Dataset, files: list[FileEntry], settings: Settings, storage: LakeStorage) -> str:
    """All rows of a bulk load (typed reader plus re-read rejected lines), sorted for the writer."""
    paths = _duck_paths(settings, [e.uri for e in files])
    # Rejected lines were re-read into ``staged``; the typed reader skips them here.
    return f"""SELECT * FROM ({_typed_select(spec, paths, "ignore_errors=true")})
               UNION ALL BY NAME SELECT * FROM staged"""


def _stage_lenient(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    spec: Dataset,
    rejected: list[tuple[str, int, str, str]],
    paths: list[str],
) -> list[tuple[str, int, str, str]]:
    """Slow path: re-read lines the typed reader rejected as text, with lenient parsers."""
    tmp_dir = settings.local_state_dir / "etl_tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f"rejected-{uuid.uuid4().hex}.csv"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("_i," + ",".join(spec.types) + "\n")
            for i, (_, _, text, _) in enumerate(rejected):
                f.write(f"{i},{text.rstrip(chr(13) + chr(10))}\n")
        lines = pa.table(
            {
                "i": pa.array(range(len(rejected)), pa.int64()),
                "file": [r[0] for r in rejected],
                "line": pa.array([r[1] for r in rejected], pa.int64()),
                "text": [r[2] for r in rejected],
            }
        )
        con.register("rejected_lines", lines)
        con.execute("CREATE OR REPLACE TEMP TABLE rejected AS SELECT * FROM rejected_lines")
        con.unregister("rejected_lines")
        for t in ("rej2_errors", "rej2_scans"):
            con.execute(f"DROP TABLE IF EXISTS {t}")
        text_types = {"_i": "BIGINT", **dict.fromkeys(spec.types, "VARCHAR")}
        typed, parse_fail = lenient_select_sql(spec)
        con.execute(
            f"""INSERT INTO staged BY NAME
                WITH p AS (SELECT _i, {typed}, {parse_fail} AS _pfail
                           FROM read_csv({sql_literal(str(tmp))}, header=true, columns={sql_map(text_types)}, auto_detect=false,
                                         store_rejects=true, rejects_table='rej2_errors', rejects_scan='rej2_scans')),
                     n AS (SELECT _i, {normalise_sql(spec)}, _pfail FROM p),
                     v AS (SELECT n.*, NULLIF(concat_ws('; ', _pfail, {reason_sql(spec)}), '') AS _reason FROM n)
                SELECT v.* EXCLUDE (_i, _pfail), r.file AS _file, r.line AS _line,
                       list_position({sql_list(paths)}, r.file) AS _seq,
                       CASE WHEN v._reason IS NOT NULL THEN r.text END AS _record
                FROM v JOIN rejected r ON r.i = v._i"""
        )
        still = {row[0] for row in con.execute("SELECT DISTINCT line FROM rej2_errors").fetchall()}
    finally:
        tmp.unlink(missing_ok=True)
    # Line n of the temp file (after its header) is rejected[n - 2].
    return [(r[0], r[1], r[3], r[2]) for n, r in enumerate(rejected) if n + 2 in still]


def _quarantine_rows(batch: pa.RecordBatch | pa.Table, dataset: str, ingested_at: dt.datetime) -> pa.Table:
    """Quarantine records for staged rows that failed validation (plus the raw file read)."""
    n = batch.num_rows
    source_file = pc.coalesce(
        pc.if_else(pc.equal(batch.column("source_file"), ""), None, batch.column("source_file")),
        batch.column("_file"),
    )
    return pa.table(
        {
            "dataset": pa.array([dataset] * n, pa.string()),
            "source_file": source_file.cast(pa.string()),
            "source_row": pc.coalesce(batch.column("source_row"), batch.column("_line")).cast(pa.int64()),
            "reason": batch.column("_reason").cast(pa.string()),
            "record": batch.column("_record").cast(pa.string()),
            "ingested_at": pa.array([ingested_at] * n, pa.timestamp("us", "UTC")),
            "_raw_file": batch.column("_file").cast(pa.string()),
        }
    )


def _malformed_rows(
    malformed: list[tuple[str, int, str, str]], dataset: str, ingested_at: dt.datetime
) -> pa.Table:
    """Quarantine records for lines that are not CSV rows of the dataset at all."""
    n = len(malformed)
    return pa.table(
        {
            "dataset": pa.array([dataset] * n, pa.string()),
            "source_file": pa.array([m[0] for m in malformed], pa.string()),
            "source_row": pa.array([m[1] for m in malformed], pa.int64()),
            "reason": pa.array([f"malformed CSV line: {m[2].lower()}" for m in malformed], pa.string()),
            "record": pa.array([m[3] for m in malformed], pa.string()),
            "ingested_at": pa.array([ingested_at] * n, pa.timestamp("us", "UTC")),
            "_raw_file": pa.array([m[0] for m in malformed], pa.string()),
        }
    )


def _load_table(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    settings: Settings,
    storage: LakeStorage,
    spec: Dataset,
    table: Table,
    files: list[FileEntry],
    hashes: dict[str, str],
    load: TableLoad,
    run_id: str,
    ingested_at: dt.datetime,
    on_progress: Progress | None,
) -> None:
    """Load new raw files of one dataset into its table (see the module docstring).

    Raises:
        CommitFailedException: The table changed since ``table`` was loaded; nothing of
            this load is in it (its Parquet files are deleted) and the caller re-plans.
    """
    name = spec.table
    if on_progress:
        on_progress(f"{name}: read + validate", 0, 1)
    existing_files = _data_files(table)
    con.execute("SET VARIABLE ingested_at = ?::TIMESTAMPTZ", [ingested_at])
    optimistic = (
        None
        if existing_files
        else _bulk_optimistic(con, settings, storage, spec, table, files, run_id, on_progress)
    )
    if optimistic is None:
        accepted, malformed = _stage(con, settings, storage, spec, files, bulk=not existing_files)
    else:
        accepted, malformed = optimistic[4], []
    load.read = accepted + len(malformed)
    if on_progress:
        on_progress(f"{name}: read + validate", 1, 1)

    key = ", ".join(sql_ident(k) for k in spec.key)
    cols = ", ".join(sql_ident(c) for c in spec.output)
    # Sorting by key, then latest write first, lets the writer keep the first row of each key.
    latest_first = "_seq DESC, source_row DESC NULLS LAST, _line DESC NULLS LAST"
    quarantined = [_malformed_rows(malformed, spec.name, ingested_at)]
    target_schema = arrow_schema(TABLES[name])
    new_hashes = sorted({hashes[e.uri] for e in files})
    summary = {
        "tickerlake.etl.run": run_id,
        "tickerlake.etl.files": str(len(files)),
        COMMIT_FILES_PROP: json.dumps(new_hashes),
    }
    # The loaded-files record travels in the same commit as the rows.
    loaded_prop = {LOADED_PROP: json.dumps(sorted(loaded_hashes(table).union(new_hashes)))}
    if spec.table == BARS.table:
        # So does the list of tickers the corporate-actions pass must look at (all of them
        # after a bulk load); the pass clears it in its own commit.
        loaded_prop[PENDING_PROP] = json.dumps(["*"] if not existing_files else _pending(table, con))
    duck_hash = dict(
        zip(
            _duck_paths(settings, [e.uri for e in files]),
            [hashes[e.uri] for e in files],
            strict=True,
        )
    )
    overwrite_keys: list[str] = []
    written: list[str] = []

    if not existing_files:
        if optimistic is not None:
            written, kept, valid, bad, _ = optimistic
        else:
            # Rejected lines or repeated keys: one sorted streaming pass. DuckDB reads,
            # validates and sorts (spilling if needed); the writer splits off invalid rows,
            # keeps the latest row of each key and encodes Parquet in bounded memory.
            source = _bulk_select(spec, files, settings, storage)
            select = f"{_stream_select(spec, source)} ORDER BY _reason IS NOT NULL, {key}, {latest_first}"
            written, kept, valid, bad = _write_parquet(
                con, storage, table, spec, select, run_id, load.read, on_progress
            )
        quarantined += [_quarantine_rows(b, spec.name, ingested_at) for b in bad]
        load.inserted = kept
        load.duplicates = valid - kept
        faults.point("etl.staged")
        _commit_quarantine(catalog, spec.name, quarantined, duck_hash, summary, load)
        summary.update(_count_props(load))
        faults.point("etl.quarantine-committed")
        try:
            with table.transaction() as tx:
                if written:
                    tx.add_files(written, snapshot_properties=summary, check_duplicate_files=False)
                tx.set_properties(loaded_prop)
        except _CONFLICTS:
            _delete(storage, written)
            raise
    else:
        quarantined.append(
            _quarantine_rows(
                con.execute("SELECT * FROM staged WHERE _reason IS NOT NULL").to_arrow_table(),
                spec.name,
                ingested_at,
            )
        )
        valid = accepted - _scalar(con, "SELECT count(*) FROM staged WHERE _reason IS NOT NULL")
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE fresh AS SELECT {cols}, _seq, source_row, _line FROM staged
                WHERE _reason IS NULL QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {latest_first}) = 1"""
        )
        reader = con.execute("SELECT * FROM fresh").to_arrow_reader(_BATCH_ROWS)
        # With the schema: a load whose rows are all invalid leaves ``fresh`` without batches.
        cleaned = pa.Table.from_batches([_clean_batch(b, spec.prices) for b in reader], schema=reader.schema)
        con.register("fresh_cleaned", cleaned)
        con.execute("CREATE OR REPLACE TEMP TABLE fresh AS SELECT * FROM fresh_cleaned")
        con.unregister("fresh_cleaned")
        load.duplicates = valid - cleaned.num_rows
        # Compare with the table: identical rows are duplicates, changed ones are updates.
        on = " AND ".join(f'f."{k}" = e."{k}"' for k in spec.key)
        m_on = " AND ".join(f'm."{k}" = f."{k}"' for k in spec.key)
        con.execute(
            # By name: files written before a column was added lack it (NULL there).
            f"CREATE OR REPLACE TEMP VIEW existing AS SELECT * FROM read_parquet({sql_list(existing_files)}, "
            "union_by_name = true)"
        )
        # Derived columns are the corporate-actions pass's, not the file's: a re-sent row
        # equal to what was received is a duplicate (a split ticker's re-sent raw rows
        # differ from their adjusted close, count as updates, and are adjusted again).
        derived = {c for c, _ in spec.derived}
        same = " AND ".join(
            f'f."{c}" IS NOT DISTINCT FROM e."{c}"' for c in spec.value_columns if c not in derived
        )
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE matched AS
                SELECT {", ".join(f'f."{k}"' for k in spec.key)}, ({same}) AS same FROM fresh f JOIN existing e ON {on}"""
        )
        identical, changed = _one(
            con, "SELECT count(*) FILTER (same), count(*) FILTER (NOT same) FROM matched"
        )
        load.duplicates += identical
        load.updated = changed
        overwrite_keys = [
            r[0]
            for r in con.execute("SELECT DISTINCT ticker FROM matched WHERE NOT same ORDER BY 1").fetchall()
        ]
        tickers = sql_list(overwrite_keys) + "::VARCHAR[]"
        con.execute(
            f"""CREATE OR REPLACE TEMP VIEW fresh_new AS SELECT * FROM fresh f
                WHERE NOT list_contains({tickers}, f.ticker) AND NOT EXISTS (SELECT 1 FROM matched m WHERE {m_on})"""
        )
        faults.point("etl.staged")
        _commit_quarantine(catalog, spec.name, quarantined, duck_hash, summary, load)
        summary.update(_count_props(load))
        faults.point("etl.quarantine-committed")
        try:
            with table.transaction() as tx:
                if overwrite_keys:
                    # Copy-on-write of the affected tickers: their new rows plus the untouched old ones.
                    replacement = con.execute(
                        f"""SELECT {cols}, getvariable('ingested_at') AS ingested_at FROM fresh
                            WHERE list_contains({tickers}, ticker)
                            UNION ALL
                            SELECT {cols}, ingested_at FROM existing e WHERE list_contains({tickers}, ticker)
                              AND NOT EXISTS (SELECT 1 FROM fresh f WHERE {on})
                            ORDER BY {key}"""
                    ).to_arrow_table()
                    load.inserted += _scalar(
                        con,
                        f"""SELECT count(*) FROM fresh f WHERE list_contains({tickers}, ticker)
                            AND NOT EXISTS (SELECT 1 FROM matched m WHERE {m_on})""",
                    )
                    tx.overwrite(
                        replacement.select(target_schema.names).cast(target_schema),
                        overwrite_filter=In(
                            term=Reference("ticker"), values={literal(t) for t in overwrite_keys}
                        ),
                        snapshot_properties=summary,
                    )
                select = f"""SELECT {cols}, getvariable('ingested_at') AS ingested_at FROM fresh_new
                             ORDER BY {key}, {latest_first}"""
                written, kept, _, _ = _write_parquet(
                    con, storage, table, spec, select, run_id, load.read, on_progress
                )
                load.inserted += kept
                if written:
                    tx.add_files(written, snapshot_properties=summary, check_duplicate_files=False)
                tx.set_properties(loaded_prop)
        except _CONFLICTS:
            _delete(storage, written)
            raise

    faults.point("etl.committed")
    if overwrite_keys or written:
        snapshot = table.refresh().current_snapshot()
        # A commit that added or replaced files made a snapshot; none would be a broken invariant.
        if snapshot is None:
            raise InternalError(f"{spec.table}: no current snapshot after a commit")
        load.snapshot_id = snapshot.snapshot_id
    _drop_temp_objects(con)


def _pending(table: Table, con: duckdb.DuckDBPyConnection) -> list[str]:
    """Tickers awaiting the corporate-actions pass: those already pending plus the staged ones."""
    pending = set(json.loads(table.properties.get(PENDING_PROP) or "[]"))
    if "*" in pending:
        return ["*"]
    staged = con.execute("SELECT DISTINCT ticker FROM staged WHERE _reason IS NULL").fetchall()
    return sorted(pending | {r[0] for r in staged})


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    """The one row of an aggregate query (which always returns exactly one)."""
    row = con.execute(sql).fetchone()
    if row is None:
        raise InternalError(f"an aggregate query returned no row: {sql[:80]}")
    return row


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    """The one value of a one-column aggregate query (a count)."""
    return _one(con, sql)[0]


def _drop_temp_objects(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the temp tables and views a load leaves on the connection."""
    for obj in ("fresh_new", "fresh", "matched", "existing", "staged"):
        kind = con.execute(
            "SELECT table_type FROM information_schema.tables WHERE table_name = ? AND table_schema = 'main'",
            [obj],
        ).fetchone()
        if kind:
            con.execute(f"DROP {'VIEW' if kind[0] == 'VIEW' else 'TABLE'} {obj}")


def _delete(storage: LakeStorage, uris: list[str]) -> None:
    """Delete files a failed commit would have referenced."""
    for uri in uris:
        with contextlib.suppress(FileNotFoundError, OSError):
            storage.delete(uri)


def _count_props(load: TableLoad) -> dict[str, str]:
    """A load's counts for its table commit's snapshot summary (the Pipeline page reconciles
    a run from them: read = loaded + duplicates + quarantined)."""
    return {
        "tickerlake.etl.read": str(load.read),
        "tickerlake.etl.duplicates": str(load.duplicates),
        "tickerlake.etl.quarantined": str(load.quarantined),
    }


def _commit_quarantine(
    catalog: Catalog,
    dataset: str,
    parts: list[pa.Table],
    duck_hash: dict[str, str],
    summary: dict[str, str],
    load: TableLoad,
) -> None:
    """Append a load's rejected rows to ``market.quarantine``, once per raw file.

    Rows of raw files whose rejects the quarantine already records (a run that crashed
    before its table commit, or a concurrent run) are not appended again; the record and
    the rows go in one commit, retried on the fresh table when another writer wins.
    """
    rows = pa.concat_tables(parts)
    load.quarantined = rows.num_rows
    for reason in rows.column("reason").to_pylist():
        # Reasons carry the offending values; count them by their stable wording.
        short = "; ".join(part.split(":")[0].split(" '")[0] for part in reason.split("; "))
        load.reasons[short] = load.reasons.get(short, 0) + 1
    if not rows.num_rows:
        return
    keys = [f"{dataset}:{duck_hash.get(f, f)}" for f in rows.column("_raw_file").to_pylist()]
    rows = rows.drop_columns(["_raw_file"]).cast(arrow_schema(QUARANTINE))

    def commit() -> None:
        table = _prepared(catalog, "market.quarantine")
        recorded = set(json.loads(table.properties.get(QUARANTINED_PROP) or "[]"))
        keep = [k not in recorded for k in keys]
        if not any(keep):
            return
        fresh = rows.filter(pa.array(keep))
        new_keys = {k for k, kept in zip(keys, keep, strict=True) if kept}
        with table.transaction() as tx:
            tx.append(fresh, snapshot_properties=summary)
            tx.set_properties({QUARANTINED_PROP: json.dumps(sorted(recorded | new_keys))})

    # A lost race is retried on the fresh table, which may then record these files already.
    retry(
        commit,
        what="etl: market.quarantine",
        on=_is_conflict,
        attempts=_QUARANTINE_ATTEMPTS,
        base_delay_s=0.02,
        max_delay_s=0.5,
        gave_up="could not commit (too many concurrent writers?)",
    )


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


def _first_of_each_key(
    batch: pa.RecordBatch, key: tuple[str, ...], previous: tuple | None
) -> tuple[pa.RecordBatch, tuple | None]:
    """Keep the first row of each run of equal keys in a key-sorted batch.

    ``previous`` is the last key of the preceding batch, so runs spanning batches are handled.
    """
    n = batch.num_rows
    if n == 0:
        return batch, previous
    differs = np.zeros(n, dtype=bool)
    differs[0] = True
    for k in key:
        col = batch.column(k)
        if n > 1:
            differs[1:] |= pc.not_equal(col.slice(1), col.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    if previous is not None and tuple(batch.column(k)[0].as_py() for k in key) == previous:
        differs[0] = False
    last = tuple(batch.column(k)[n - 1].as_py() for k in key)
    return (batch if differs.all() else batch.filter(pa.array(differs))), last


def _clean_batch(batch: pa.RecordBatch, prices: tuple[str, ...]) -> pa.RecordBatch:
    """Apply :func:`clean_price_artifacts` to the price columns of a batch."""
    if not prices:
        return batch
    arrays = [
        clean_price_artifacts(c) if n in prices else c
        for n, c in zip(batch.schema.names, batch.columns, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)


def _write_parquet(
    con: duckdb.DuckDBPyConnection,
    storage: LakeStorage,
    table: Table,
    spec: Dataset,
    select: str,
    run_id: str,
    total: int,
    on_progress: Progress | None,
) -> tuple[list[str], int, int, list[pa.RecordBatch]]:
    """Stream a key-sorted query result into Parquet files, dropping superseded rows.

    When the result has a ``_reason`` column, rows with a reason are split off and
    returned for the quarantine instead of being written. Two writer threads encode
    files in parallel while DuckDB produces the next batches (pyarrow releases the GIL).

    Returns:
        Written file URIs, rows kept, valid rows seen, and the invalid batches.
    """
    schema, key, prices, name = arrow_schema(TABLES[spec.table]), spec.key, spec.prices, spec.table
    base = table.location().rstrip("/") + "/data"
    storage.ensure_dir(base)
    queues: list[queue.Queue[pa.RecordBatch | None]] = [queue.Queue(maxsize=2) for _ in range(_WRITERS)]
    uris: list[str] = []
    errors: list[BaseException] = []
    invalid: list[pa.RecordBatch] = []

    def write(q: queue.Queue[pa.RecordBatch | None], uri: str) -> None:
        try:
            with pq.ParquetWriter(storage.path(uri), schema, filesystem=storage.fs, compression="zstd") as w:
                while (b := q.get()) is not None:
                    w.write_batch(b)
        except BaseException as e:  # surfaced to the caller below
            errors.append(e)
            while q.get() is not None:
                pass

    threads: list[threading.Thread] = []
    reader = con.execute(select).to_arrow_reader(_BATCH_ROWS)
    kept = done = valid = 0
    previous: tuple | None = None
    file_rows = [0] * _WRITERS
    slot = 0
    try:
        for batch in reader:
            done += batch.num_rows
            batch = _clean_batch(batch, prices)
            if "_reason" in batch.schema.names:
                bad = pc.is_valid(batch.column("_reason"))
                if pc.any(bad).as_py():
                    invalid.append(batch.filter(bad))
                    batch = batch.filter(pc.invert(bad))
            # In the table's column order (columns added later come after ``ingested_at``).
            batch = batch.select(schema.names)
            valid += batch.num_rows
            batch, previous = _first_of_each_key(batch, key, previous)
            if batch.num_rows:
                if slot >= len(threads) or file_rows[slot] >= _FILE_ROWS:
                    if slot < len(threads):
                        queues[slot].put(None)
                        threads[slot].join()
                        queues[slot] = queue.Queue(maxsize=2)
                    uri = f"{base}/etl-{run_id}-{len(uris):05d}.parquet"
                    uris.append(uri)
                    t = threading.Thread(target=write, args=(queues[slot], uri), daemon=True)
                    t.start()
                    if slot < len(threads):
                        threads[slot] = t
                    else:
                        threads.append(t)
                    file_rows[slot] = 0
                queues[slot].put(batch.cast(schema))
                file_rows[slot] += batch.num_rows
                kept += batch.num_rows
                slot = (slot + 1) % _WRITERS
            if errors:
                break
            if on_progress:
                on_progress(f"{name}: write", min(done, total), total)
    finally:
        for i, t in enumerate(threads):
            queues[i].put(None)
            t.join()
    if errors:
        raise errors[0]
    return uris, kept, valid, invalid
