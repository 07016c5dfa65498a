"""``tickerlake ingest csv|yahoo|sim``: land source data in the raw zone.

Every command writes ``raw/<dataset>/source=<source>/`` and never the curated tables;
``tickerlake etl`` takes it from there. Unusable inputs are reported one line each and
make the exit code non-zero, after everything usable has been landed.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import typer
from rich.markup import escape

from tickerlake.cli._app import app
from tickerlake.cli._common import (
    JsonOpt,
    console,
    err_console,
    fail,
    progress,
    render,
    render_rows,
    settings_of,
    user_errors,
)
from tickerlake.config import DEFAULT_TICKERS
from tickerlake.lake.contract import RAW_ACTION_COLUMNS, RAW_BAR_COLUMNS
from tickerlake.lake.ingest import IngestReport, land

__all__ = ["ingest_app", "parse_date", "ticker_list"]

#: Default history of the project (issue: FANGMANT from 1997-06-01 to 2023-12-12).
DEFAULT_START = dt.date(1997, 6, 1)
DEFAULT_END = dt.date(2023, 12, 12)

ingest_app = typer.Typer(
    name="ingest",
    help="Land market data in the raw zone (CSV files, Yahoo Finance, or the simulated market).",
    no_args_is_help=True,
)
app.add_typer(ingest_app, name="ingest")

_COLUMNS = {"daily_bars": RAW_BAR_COLUMNS, "corporate_actions": RAW_ACTION_COLUMNS}
_EXIT_PARTIAL = 1


def ticker_list(values: Iterable[str] | None) -> list[str]:
    """Tickers from comma- and/or space-separated values, upper-cased, first occurrence kept.

    >>> ticker_list(["aapl,msft", "GOOGL  nvda", "AAPL"])
    ['AAPL', 'MSFT', 'GOOGL', 'NVDA']
    """
    out: list[str] = []
    for value in values or ():
        for part in value.replace(",", " ").split():
            t = part.upper()
            if t not in out:
                out.append(t)
    return out


def parse_date(value: str | None, option: str, default: dt.date) -> dt.date:
    """An ISO date from an option value, or a one-line error naming the option."""
    if value is None or not value.strip():
        return default
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise fail(f"{option}: {value!r} is not a date (use YYYY-MM-DD)") from None


def _shown(path: str) -> str:
    """A path as short as it can be said: relative to the working folder when inside it."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def _print_landed(report: IngestReport) -> None:
    rows = [(d, f"{n:,}") for d, n in sorted(report.rows.items())]
    render_rows(f"ingest {report.source} → raw zone", ["dataset", "rows"], rows or [("(nothing)", "0")])
    console.print(
        f"{report.files_written} raw file{'s' if report.files_written != 1 else ''} written, "
        f"{report.files_unchanged} unchanged",
        highlight=False,
    )


def _print_problems(errors: list[str], warnings: list[str]) -> None:
    for w in warnings:
        err_console.print(f"[yellow]warning:[/] {escape(w)}", highlight=False, soft_wrap=True)
    for e in errors:
        err_console.print(f"[bold red]error:[/] {escape(e)}", highlight=False, soft_wrap=True)


def _payload(report: IngestReport, errors: list[str], warnings: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "source": report.source,
        "rows": report.rows,
        "files_written": report.files_written,
        "files_unchanged": report.files_unchanged,
        "files": report.files,
        **extra,
        "errors": errors,
        "warnings": warnings,
    }


def _read_options(
    ticker: str | None,
    columns: str | None,
    date_format: str | None,
    decimal: str | None,
    delimiter: str | None,
    encoding: str | None,
    pattern: str | None,
    symbol_map: str | None,
) -> Any:
    from tickerlake.sources.options import ReadOptions

    given = {
        "ticker": ticker,
        "columns": columns,
        "date_format": date_format,
        "decimal": decimal,
        "delimiter": delimiter,
        "encoding": encoding,
        "pattern": pattern,
        "symbol_map": symbol_map,
    }
    return ReadOptions.parse({k: v for k, v in given.items() if v is not None}, "command line")


TickerOpt = typer.Option(
    None, "--ticker", help="Ticker of files that carry none (no ticker column, no ticker file name)."
)
ColumnsOpt = typer.Option(
    None,
    "--columns",
    help="Map fields to column labels: date=Datum,close=Schluss,... (over the built-in synonyms).",
)
DateFormatOpt = typer.Option(
    None,
    "--date-format",
    help="Date format, e.g. DD.MM.YYYY, MM/DD/YYYY, YYYYMMDD or a %-pattern (default: decided per file).",
)
DecimalOpt = typer.Option(None, "--decimal", help="Decimal mark, . or , (default: decided per file).")
DelimiterOpt = typer.Option(None, "--delimiter", help="Field separator: , ; | or tab (default: detected).")
EncodingOpt = typer.Option(
    None, "--encoding", help="Text encoding, e.g. cp1252 (default: UTF-8/UTF-16, else Latin-1)."
)
PatternOpt = typer.Option(
    None,
    "--pattern",
    help="File names read in folders, e.g. '*.txt' (comma-separated; default: price file extensions).",
)
SymbolMapOpt = typer.Option(
    None,
    "--symbol-map",
    help="Renames: a file of FROM=TO lines (or two-column CSV), or inline FB=META,BRK-B=BRK.B.",
)


def _ingest_files(
    ctx: typer.Context,
    paths: list[str],
    options: Any,
    as_json: bool,
) -> None:
    from tickerlake.sources.csv import SOURCE_SYMBOL_COLUMNS, CsvReport
    from tickerlake.sources.files import expand_inputs, read_sources

    settings = settings_of(ctx)
    report = CsvReport()
    columns = {**_COLUMNS, "source_symbols": SOURCE_SYMBOL_COLUMNS}
    with user_errors(), progress(disable=as_json) as bar:
        inputs = expand_inputs(paths, report.errors, report.warnings, options)
        task = bar.add_task("csv", total=len(inputs))

        def on_file(path: str, outcome: object) -> None:
            bar.update(task, advance=1, description=f"csv {path.rsplit('/', 1)[-1]}")

        landed = land(settings, "csv", read_sources(inputs, report, on_file=on_file), columns=columns)

    errors = [str(e) for e in report.errors]
    inputs_out = [
        {
            "path": f.path,
            "layout": f.layout,
            "tickers": f.tickers,
            "rows": f.rows,
            "empty_rows": f.empty_rows,
            "malformed_rows": f.malformed_rows,
            "ignored_columns": f.ignored_columns,
            "date_format": f.date_format,
            "decimal": f.decimal,
            "renamed": f.renamed,
        }
        for f in report.files
    ]

    def text() -> None:
        table_rows = [
            (
                _shown(f.path),
                f.layout,
                ",".join(f.tickers) if len(f.tickers) <= 4 else f"{len(f.tickers)} tickers",
                f"{f.rows.get('daily_bars', 0):,}",
                f"{f.rows.get('corporate_actions', 0):,}",
                f.empty_rows,
                f.malformed_rows,
                " ".join(x for x in (f.date_format, f"decimal {f.decimal}" if f.decimal else None) if x)
                or "-",
            )
            for f in report.files
        ]
        if table_rows:
            render_rows(
                "inputs",
                ["file", "layout", "tickers", "bars", "actions", "empty", "malformed", "read as"],
                table_rows,
            )
        renamed = sorted({(a, b) for f in report.files for a, b in f.renamed.items()})
        if renamed:
            console.print(
                "symbols renamed: "
                + ", ".join(f"{a} → {b}" for a, b in renamed[:12])
                + (f" and {len(renamed) - 12} more" if len(renamed) > 12 else ""),
                highlight=False,
            )
        _print_landed(landed)
        console.print(f"{len(report.files)} file(s) read, {len(errors)} unusable", highlight=False)

    render(_payload(landed, errors, report.warnings, inputs=inputs_out), as_json, text)
    _print_problems(errors, report.warnings)
    if errors:
        raise typer.Exit(_EXIT_PARTIAL)


@ingest_app.command("csv")
def ingest_csv(
    ctx: typer.Context,
    paths: list[str] = typer.Argument(
        ..., metavar="PATH", help="Price files or folders (searched recursively; see --pattern)."
    ),
    ticker: str = TickerOpt,
    columns: str = ColumnsOpt,
    date_format: str = DateFormatOpt,
    decimal: str = DecimalOpt,
    delimiter: str = DelimiterOpt,
    encoding: str = EncodingOpt,
    pattern: str = PatternOpt,
    symbol_map: str = SymbolMapOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Ingest price files: Yahoo, Nasdaq, Stooq, Kaggle, broker exports, yfinance wide files (also Parquet, JSON lines, zip)."""
    with user_errors():
        options = _read_options(
            ticker, columns, date_format, decimal, delimiter, encoding, pattern, symbol_map
        )
    _ingest_files(ctx, paths, options, as_json)


# The same command under the name that says any kind of file; only its help differs.
ingest_app.command(
    "file",
    help="Ingest price files of any kind, by extension: .csv/.txt/.tsv (also .gz), .parquet, .jsonl/.json, .zip.",
)(ingest_csv)


@ingest_app.command("yahoo")
def ingest_yahoo(
    ctx: typer.Context,
    tickers: list[str] = typer.Option(
        None,
        "--tickers",
        "-t",
        help="Tickers, comma- or space-separated (repeatable) (default: the FANGMANT eight).",
    ),
    more: list[str] = typer.Argument(None, metavar="TICKER", help="More tickers.", show_default=False),
    start: str = typer.Option(DEFAULT_START.isoformat(), "--start", help="First day (YYYY-MM-DD)."),
    end: str = typer.Option(DEFAULT_END.isoformat(), "--end", help="Last day, inclusive (YYYY-MM-DD)."),
    batch_size: int = typer.Option(20, "--batch-size", min=1, help="Tickers per Yahoo download."),
    retries: int = typer.Option(3, "--retries", min=0, help="Retries of transient failures (with backoff)."),
    base_url: str = typer.Option(
        None,
        "--base-url",
        envvar="TICKERLAKE_YAHOO_BASE_URL",
        help="Send Yahoo requests to this scheme://host instead (a mirror or a local replay server).",
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Download real daily prices, splits and dividends from Yahoo Finance (yfinance)."""
    from tickerlake.sources.yahoo import YahooReport, fetch_yahoo

    settings = settings_of(ctx)
    names = ticker_list([*(tickers or []), *(more or [])]) or list(DEFAULT_TICKERS)
    start_d = parse_date(start, "--start", DEFAULT_START)
    end_d = parse_date(end, "--end", DEFAULT_END)
    report = YahooReport()
    with user_errors(), progress(disable=as_json) as bar:
        task = bar.add_task("yahoo", total=len(names))

        def on_batch(dataset: str, table: pa.Table) -> None:
            bar.update(task, completed=len(set(report.fetched)) + len(report.errors))

        batches = fetch_yahoo(
            names,
            start_d,
            end_d,
            batch_size=batch_size,
            retries=retries,
            base_url=base_url,
            cache_dir=settings.local_state_dir / "yfinance",
            report=report,
        )
        landed = land(settings, "yahoo", batches, columns=_COLUMNS, on_batch=on_batch)
        bar.update(task, completed=len(names))

    errors = [str(e) for e in report.errors]
    fetched = sorted(set(report.fetched))

    def text() -> None:
        _print_landed(landed)
        console.print(
            f"{len(fetched)} of {len(names)} tickers fetched in {report.downloads} download(s)"
            + (f", {report.retries} retried" if report.retries else ""),
            highlight=False,
        )

    extra = {"tickers": names, "fetched": fetched, "downloads": report.downloads, "retries": report.retries}
    render(_payload(landed, errors, [], **extra), as_json, text)
    _print_problems(errors, [])
    if errors:
        raise typer.Exit(_EXIT_PARTIAL)


@ingest_app.command("sim")
def ingest_sim(
    ctx: typer.Context,
    tickers: list[str] = typer.Option(
        None,
        "--tickers",
        "-t",
        help="Tickers, comma- or space-separated (repeatable) (default: the FANGMANT eight).",
    ),
    more: list[str] = typer.Argument(None, metavar="TICKER", help="More tickers.", show_default=False),
    start: str = typer.Option(None, "--start", help="First day (YYYY-MM-DD) (default: 1997-06-01)."),
    end: str = typer.Option(None, "--end", help="Last day, inclusive (YYYY-MM-DD) (default: 2023-12-12)."),
    seed: int = typer.Option(
        None, "--seed", help="Random seed; the same seed gives byte-identical files (default: 42)."
    ),
    universe: int = typer.Option(
        None, "--universe", help="Simulate N synthetic tickers (S00001…) instead of named ones."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Generate the deterministic simulated market (the embedded default; every row says source=sim)."""
    from tickerlake.sources import sim

    settings = settings_of(ctx)
    names = ticker_list([*(tickers or []), *(more or [])]) or None
    start_d = parse_date(start, "--start", sim.DEFAULT_START)
    end_d = parse_date(end, "--end", sim.DEFAULT_END)
    seed_v = sim.DEFAULT_SEED if seed is None else seed
    with user_errors(), progress(disable=as_json) as bar:
        symbols = sim.simulated_tickers(names, universe)
        task = bar.add_task("sim", total=len(symbols))

        def on_progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        batches = sim.simulate(names, start_d, end_d, seed_v, universe=universe, on_progress=on_progress)
        landed = land(settings, "sim", batches, columns=dict(sim.DATASET_COLUMNS))

    extra = {
        "tickers": list(symbols) if len(symbols) <= 50 else len(symbols),
        "start": start_d,
        "end": end_d,
        "seed": seed_v,
    }
    render(_payload(landed, [], [], **extra), as_json, lambda: _print_landed(landed))
