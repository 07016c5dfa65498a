"""The ETL's corporate-actions pass: actions inferred from the bars, and the bars adjusted to them.

After the raw files are merged, every ticker whose bars (or whose known corporate
actions) changed is examined (:data:`PENDING_PROP` on ``market.daily_bars`` lists them,
written in the same commit as the bars, so a crash before the pass leaves the work
recorded for the next run):

1. The series is brought to the basis it was received in: a row the pass already
   processed has ``raw_close``, and ``raw_close / close`` is the split factor it divided
   by, so ``received = stored × raw_close / close`` (volume divided).
2. :func:`~tickerlake.lake.actions.infer_from_factor` reads splits and dividends from
   ``adj_close / close``; without an adjusted close,
   :func:`~tickerlake.lake.actions.suspect_splits` reports suspected splits.
3. The splits to apply are the known ones (rows of ``market.corporate_actions`` from raw
   files, any source but the pass's own) and the inferred ones; suspected splits are never
   applied. :func:`~tickerlake.lake.actions.adjust_series` gives split-adjusted
   open/high/low/close and volume, and ``raw_close`` as traded.
4. The ticker's derived rows (``inferred``, ``suspected``, and ``tickerlake`` renames) are
   replaced when they changed — never duplicating a known row's (ticker, date, action) —
   and its bars are rewritten (copy-on-write per ticker) when any value changed.

Values equal within 1e-9 (relative) keep their stored bits, so running the pass again
changes nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.expressions import AlwaysTrue, BooleanExpression, In, Reference
from pyiceberg.expressions.literals import literal
from pyiceberg.table import Table

from tickerlake.lake.actions import Action, adjust_series, infer_from_factor, suspect_splits
from tickerlake.lake.contract import ACTIONS, BARS, RENAMES, arrow_schema, sql_list
from tickerlake.lake.storage import LakeStorage

__all__ = ["DERIVED_SOURCES", "PENDING_PROP", "ActionsPass", "SuspectedSplit", "run_actions_pass"]

#: Table property of ``market.daily_bars``: JSON list of tickers awaiting the pass (``"*"``: all).
PENDING_PROP = "tickerlake.etl.actions-pending"
#: Sources of the rows the pass writes (and may rewrite); any other source is a known action.
DERIVED_SOURCES = ("inferred", "suspected", "tickerlake")
_RTOL = 1e-9
# Tickers read per DuckDB query (a ticker has at most ~11,000 daily bars since 1980).
_CHUNK_TICKERS = 200
_FILE_ROWS = 4_000_000


@dataclass(frozen=True)
class SuspectedSplit:
    """A raw price jump that matches a split ratio, reported for a person to confirm."""

    ticker: str
    date: dt.date
    ratio: float


@dataclass
class ActionsPass:
    """What the corporate-actions pass found and changed.

    Attributes:
        tickers: Tickers examined.
        splits: Inferred splits of those tickers (in the table after the pass).
        dividends: Inferred dividends of those tickers.
        renames: Rename rows of those tickers.
        suspected: Suspected splits of those tickers (never applied).
        bars_rewritten: Rows of ``market.daily_bars`` rewritten (tickers whose values changed).
        actions_rewritten: Tickers whose derived corporate-action rows were replaced.
    """

    tickers: int = 0
    splits: int = 0
    dividends: int = 0
    renames: int = 0
    suspected: list[SuspectedSplit] = field(default_factory=list)
    bars_rewritten: int = 0
    actions_rewritten: int = 0


def _filter(tickers: set[str] | None) -> BooleanExpression:
    if tickers is None:
        return AlwaysTrue()
    return In(term=Reference("ticker"), values={literal(t) for t in tickers})


def _floats(table: pa.Table, name: str) -> np.ndarray:
    col = table.column(name)
    return np.asarray(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False), dtype=float)


def _known_splits(actions: pa.Table) -> dict[str, list[tuple[dt.date, float]]]:
    out: dict[str, list[tuple[dt.date, float]]] = {}
    for t, d, a, r, s in zip(
        *(actions.column(c).to_pylist() for c in ("ticker", "date", "action", "ratio", "source")),
        strict=True,
    ):
        if a == "split" and s not in DERIVED_SOURCES and r and r > 0:
            out.setdefault(t, []).append((d, float(r)))
    return out


def _significant(x: np.ndarray, digits: int = 10) -> np.ndarray:
    """``x`` rounded to ``digits`` significant digits: a price times or over a split ratio
    carries no float noise (13.496, not 13.495999999999999)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = 10.0 ** (digits - 1 - np.floor(np.log10(np.abs(x))))
        out: np.ndarray = np.where(np.isfinite(scale) & (x != 0), np.round(x * scale) / scale, x)
    return out


def _keep_close(new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """``new``, except where ``old`` equals it within the tolerance (then ``old``, bit for bit)."""
    same = np.isclose(new, old, rtol=_RTOL, atol=0.0, equal_nan=True)
    out: np.ndarray = np.where(same, old, new)
    return out


def _series_pass(rows: pa.Table, known: list[tuple[dt.date, float]]) -> tuple[pa.Table | None, list[Action]]:
    """One ticker: its rewritten rows (None when unchanged) and its derived actions."""
    dates = rows.column("date").to_numpy()
    close, raw_close = _floats(rows, "close"), _floats(rows, "raw_close")
    adj = _floats(rows, "adj_close")
    o, h, lo, v = (_floats(rows, c) for c in ("open", "high", "low", "volume"))
    with np.errstate(divide="ignore", invalid="ignore"):
        k_old = np.where(np.isfinite(raw_close) & (close > 0), raw_close / close, 1.0)
    # Split factors are ratios like 2 or 28, never within a millionth of 1.
    k_old = np.where(np.abs(k_old - 1.0) < 1e-6, 1.0, k_old)
    rc, ro, rh, rl, rv = close * k_old, o * k_old, h * k_old, lo * k_old, v / k_old
    first = infer_from_factor(dates, rc, adj)
    known_days = {d for d, _ in known}
    has_adj = bool(np.isfinite(adj).any())
    inferred = [(a.date, a.ratio or 1.0) for a in first if a.action == "split" and a.date not in known_days]
    raw = any(a.action == "split" for a in first) if has_adj else None
    res = adjust_series(dates, rc, ro, rh, rl, rv, [*known, *inferred], raw)
    # Dividends in each day's share basis: read the factor against the close as traded.
    derived = infer_from_factor(dates, res.raw_close, adj) if has_adj else []
    if not has_adj:
        applied = known_days | {d for d, _ in inferred}
        derived = [a for a in suspect_splits(dates, rc, ro) if a.date not in applied]
    new = {
        "close": _keep_close(_significant(res.close), close),
        "open": _keep_close(_significant(res.open), o),
        "high": _keep_close(_significant(res.high), h),
        "low": _keep_close(_significant(res.low), lo),
        "raw_close": _keep_close(_significant(res.raw_close), raw_close),
        "volume": _keep_close(np.round(res.volume), v),
    }
    old = {"close": close, "open": o, "high": h, "low": lo, "raw_close": raw_close, "volume": v}
    changed = any(not np.array_equal(new[c], old[c], equal_nan=True) for c in new)
    if not changed:
        return None, derived
    out = rows
    for name, values in new.items():
        kind = pa.int64() if name == "volume" else pa.float64()
        arr = pa.array(values, type=pa.float64(), from_pandas=True)
        out = out.set_column(out.schema.get_field_index(name), name, pc.cast(arr, kind))
    return out, derived


def _action_rows(ticker: str, found: Iterable[Action], now: dt.datetime) -> list[dict[str, object]]:
    return [
        {
            "ticker": ticker,
            "date": a.date,
            "action": a.action,
            "ratio": a.ratio,
            "amount": a.amount,
            "source": a.source,
            "ingested_at": now,
            "old_ticker": None,
        }
        for a in found
    ]


def _rename_rows(ticker: str, first: dt.date, now: dt.datetime) -> list[dict[str, object]]:
    """A rename row for each built-in rename into ``ticker`` that its history spans."""
    return [
        {
            "ticker": ticker,
            "date": r.effective,
            "action": "rename",
            "ratio": None,
            "amount": None,
            "source": "tickerlake",
            "ingested_at": now,
            "old_ticker": r.old,
        }
        for r in RENAMES
        if r.new == ticker and first < r.effective
    ]


def _row_key(row: dict[str, object]) -> tuple[object, ...]:
    """What makes two derived rows the same (values rounded as stored)."""

    def rounded(x: object) -> object:
        return None if x is None else round(float(x), 6)  # type: ignore[arg-type]

    return (
        row["ticker"],
        row["date"],
        row["action"],
        rounded(row["ratio"]),
        rounded(row["amount"]),
        row["source"],
        row["old_ticker"],
    )


def run_actions_pass(
    con: duckdb.DuckDBPyConnection,
    storage: LakeStorage,
    bars: Table,
    actions: Table,
    files: list[str],
    known_changed: bool,
    run_id: str,
) -> ActionsPass | None:
    """Infer, record and apply corporate actions for the pending tickers (see the module docstring).

    Tickers are read :data:`_CHUNK_TICKERS` at a time with DuckDB (row-group pruning on the
    ticker), and the rewritten ones are streamed into new Parquet files that replace their
    old rows in one commit, so memory stays bounded by a chunk however large the lake.

    Args:
        con: A DuckDB connection set up for the lake.
        storage: The lake's storage (the rewritten rows' files are written there).
        bars: ``market.daily_bars``, freshly loaded.
        actions: ``market.corporate_actions``, freshly loaded.
        files: ``bars``' current data files, as DuckDB names them.
        known_changed: Whether this run loaded corporate-action rows; their tickers are examined too.
        run_id: The ETL run, written into file names and snapshot summaries.

    Returns:
        The pass's report, or None when no ticker was pending.

    Raises:
        CommitFailedException: Another writer committed meanwhile (the caller re-runs the pass).
    """
    recorded = set(json.loads(bars.properties.get(PENDING_PROP) or "[]"))
    pending = set(recorded)
    acts = actions.scan().to_arrow() if actions.current_snapshot() is not None else None
    if acts is None:
        acts = arrow_schema(ACTIONS.schema).empty_table()
    if "old_ticker" not in acts.column_names:
        acts = acts.append_column("old_ticker", pa.nulls(acts.num_rows, pa.string()))
    if known_changed:
        src = acts.column("source").to_pylist()
        pending |= {
            t for t, s in zip(acts.column("ticker").to_pylist(), src, strict=True) if s not in DERIVED_SOURCES
        }
    if not pending:
        return None
    source = f"read_parquet({sql_list(files)}, union_by_name = true)" if files else None
    if source is None:
        tickers: list[str] = []
    elif "*" in pending:
        tickers = [r[0] for r in con.execute(f"SELECT DISTINCT ticker FROM {source} ORDER BY 1").fetchall()]
    else:
        tickers = sorted(pending)
    now = dt.datetime.now(dt.UTC)
    report = ActionsPass()
    summary = {"tickerlake.etl.run": run_id, "tickerlake.etl.pass": "corporate-actions"}
    target = arrow_schema(BARS.schema)
    desired: dict[str, list[dict[str, object]]] = {}
    known = _known_splits(acts)
    known_keys = {
        (t, d, a)
        for t, d, a, s in zip(
            *(acts.column(c).to_pylist() for c in ("ticker", "date", "action", "source")), strict=True
        )
        if s not in DERIVED_SOURCES
    }
    writer = _Writer(storage, bars.location().rstrip("/") + "/data", f"etl-{run_id}-actions", target)
    changed: set[str] = set()
    try:
        for c in range(0, len(tickers), _CHUNK_TICKERS):
            chunk = tickers[c : c + _CHUNK_TICKERS]
            rows = con.execute(
                f"SELECT * FROM {source} WHERE ticker IN (SELECT unnest({sql_list(chunk)})) ORDER BY ticker, date"
            ).to_arrow_table()
            if "raw_close" not in rows.column_names:
                rows = rows.append_column("raw_close", pa.nulls(rows.num_rows, pa.float64()))
            rows = rows.select(target.names)
            tick = rows.column("ticker").to_numpy(zero_copy_only=False)
            if not rows.num_rows:
                continue
            starts = np.flatnonzero(np.concatenate([[True], tick[1:] != tick[:-1]]))
            ends = np.append(starts[1:], len(tick))
            for a, b in zip(starts, ends, strict=True):
                ticker = str(tick[a])
                part = rows.slice(int(a), int(b - a))
                new_rows, found = _series_pass(part, known.get(ticker, []))
                if new_rows is not None:
                    writer.write(new_rows.cast(target))
                    changed.add(ticker)
                keep = [x for x in found if (ticker, x.date, x.action) not in known_keys]
                first = part.column("date")[0].as_py()
                desired[ticker] = _action_rows(ticker, keep, now) + [
                    r
                    for r in _rename_rows(ticker, first, now)
                    if (ticker, r["date"], "rename") not in known_keys
                ]
        written = writer.close()
        _commit_actions(actions, acts, desired, summary, report)
        with bars.transaction() as tx:
            if changed:
                # Copy-on-write of the changed tickers: their old rows out, the new files in.
                tx.delete(_filter(changed), snapshot_properties=summary)
                tx.add_files(written, snapshot_properties=summary, check_duplicate_files=False)
            if recorded:
                # Set, not removed: a concurrent pass may have cleared it already, and a
                # property-only update carries no requirement the commit would check.
                tx.set_properties({PENDING_PROP: "[]"})
    except BaseException:
        for uri in writer.close():
            with contextlib.suppress(OSError):
                storage.delete(uri)
        raise
    report.tickers = len(desired)
    report.bars_rewritten = writer.rows
    for ticker, wanted in desired.items():
        report.splits += sum(1 for r in wanted if r["action"] == "split" and r["source"] == "inferred")
        report.dividends += sum(1 for r in wanted if r["action"] == "dividend")
        report.renames += sum(1 for r in wanted if r["action"] == "rename")
        report.suspected += [
            SuspectedSplit(ticker, r["date"], float(r["ratio"]))  # type: ignore[arg-type]
            for r in wanted
            if r["source"] == "suspected"
        ]
    return report


class _Writer:
    """Streams tables into Parquet files of at most :data:`_FILE_ROWS` rows each."""

    def __init__(self, storage: LakeStorage, base: str, prefix: str, schema: pa.Schema) -> None:
        self.storage, self.base, self.prefix, self.schema = storage, base, prefix, schema
        self.uris: list[str] = []
        self.rows = 0
        self._in_file = 0
        self._writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        if self._writer is None or self._in_file >= _FILE_ROWS:
            self._finish()
            self.storage.ensure_dir(self.base)
            uri = f"{self.base}/{self.prefix}-{len(self.uris):05d}.parquet"
            self.uris.append(uri)
            self._writer = pq.ParquetWriter(
                self.storage.path(uri), self.schema, filesystem=self.storage.fs, compression="zstd"
            )
            self._in_file = 0
        self._writer.write_table(table)
        self._in_file += table.num_rows
        self.rows += table.num_rows

    def _finish(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def close(self) -> list[str]:
        """Close the open file; the URIs of every file written."""
        self._finish()
        return list(self.uris)


def _commit_actions(
    actions: Table,
    acts: pa.Table,
    desired: dict[str, list[dict[str, object]]],
    summary: dict[str, str],
    report: ActionsPass,
) -> None:
    """Replace the derived rows of the tickers whose derived rows changed (known rows stay)."""
    have: dict[str, set[tuple[object, ...]]] = {}
    for row in acts.to_pylist():
        if row["source"] in DERIVED_SOURCES and row["ticker"] in desired:
            have.setdefault(row["ticker"], set()).add(_row_key(row))
    stale = sorted(t for t, w in desired.items() if {_row_key(r) for r in w} != have.get(t, set()))
    if not stale:
        return
    keep_rows = acts.filter(
        pc.and_(
            pc.is_in(acts.column("ticker"), value_set=pa.array(stale)),
            pc.invert(pc.is_in(pc.fill_null(acts.column("source"), ""), value_set=pa.array(DERIVED_SOURCES))),
        )
    )
    fresh = pa.Table.from_pylist([r for t in stale for r in desired[t]], schema=arrow_schema(ACTIONS.schema))
    replacement = pa.concat_tables([keep_rows.select(fresh.schema.names).cast(fresh.schema), fresh])
    replacement = replacement.sort_by(
        [("ticker", "ascending"), ("date", "ascending"), ("action", "ascending")]
    )
    with actions.transaction() as tx:
        if any(t in have for t in stale) or keep_rows.num_rows:
            tx.overwrite(replacement, overwrite_filter=_filter(set(stale)), snapshot_properties=summary)
        else:
            tx.append(replacement, snapshot_properties=summary)
    report.actions_rewritten = len(stale)
