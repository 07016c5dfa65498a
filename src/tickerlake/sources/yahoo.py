"""Yahoo Finance source: daily bars and corporate actions through ``yfinance``.

One ``yfinance.download`` call per batch of tickers (``auto_adjust=False`` so ``close`` is
split-adjusted and ``adj_close`` also dividend-adjusted, exactly as Yahoo's site shows
them; ``actions=True`` for splits and dividends). The wide frame yfinance returns is
turned into long rows by its column *labels* (ticker level × price level, located by
level name), never by column position.

yfinance swallows network failures and logs them, so this module hands it its own
``curl_cffi`` session (:class:`YahooSession`, still impersonating a browser as yfinance's
default does) that records the outcome of every chart request. That tells a ticker Yahoo
does not know (HTTP 404, chart error, no rows) apart from a transient failure (connection
error, HTTP 429/5xx), which is retried by :func:`tickerlake.retry.retry` with jittered
exponential backoff; when Yahoo cannot be reached at all the run stops with one clear
:class:`~tickerlake.errors.TransientError`.

The same session can send every Yahoo request to another base URL (``base_url`` or the
``TICKERLAKE_YAHOO_BASE_URL`` environment variable): the tests replay recorded chart
responses from a local HTTP server that way, and a team can point it at a caching mirror.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import pandas as pd
import pyarrow as pa
from curl_cffi import requests as curl_requests

from tickerlake.errors import NotFoundError, TickerlakeError, TransientError, UserError
from tickerlake.lake.contract import RAW_ACTION_COLUMNS, RAW_BAR_COLUMNS
from tickerlake.retry import retry
from tickerlake.sources.csv import normalise_label

__all__ = [
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "YahooReport",
    "YahooSession",
    "download_frame_to_raw",
    "fetch_yahoo",
]

SOURCE = "yahoo"
BASE_URL_ENV = "TICKERLAKE_YAHOO_BASE_URL"
#: Where yfinance sends chart requests; used in ``source_file`` provenance.
DEFAULT_BASE_URL = "https://query2.finance.yahoo.com"

_FIELDS = {
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "adjclose": "adj_close",
    "volume": "volume",
    "dividends": "dividends",
    "stocksplits": "splits",
}
_PRICE_FIELDS = ("open", "high", "low", "close", "adj_close", "volume")
_CHART_PREFIX = "/v8/finance/chart/"
_TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_cache_lock = threading.Lock()
_cache_dir_set: list[str] = []


# --------------------------------------------------------------------------- frame → raw rows


def _text(value: Any, integral: bool = False) -> str | None:
    """A number as the shortest text that reads back as the same value (None for NaN)."""
    if value is None:
        return None
    f = float(value)
    if math.isnan(f):
        return None
    if integral and f.is_integer():
        return str(int(f))
    return repr(f)


def _levels(columns: pd.MultiIndex) -> tuple[int, int]:
    """(ticker level, field level) of a yfinance column index, found by name or by content."""
    names = [str(n).lower() if n is not None else "" for n in columns.names]
    if "ticker" in names:
        t = names.index("ticker")
        return t, 1 - t
    if "price" in names:
        p = names.index("price")
        return 1 - p, p
    for lvl in (0, 1):
        if all(
            normalise_label(str(v)) in _FIELDS or normalise_label(str(v)) == "capitalgains"
            for v in columns.get_level_values(lvl)
        ):
            return 1 - lvl, lvl
    raise TickerlakeError("yahoo: cannot tell tickers from price fields in the downloaded columns")


def download_frame_to_raw(
    frame: pd.DataFrame, source_file: Callable[[str], str]
) -> tuple[pa.Table, pa.Table]:
    """Long raw tables from the wide frame ``yfinance.download`` returns. Pure.

    Columns are matched by their labels: whichever order the (ticker, field) levels come
    in (``group_by='ticker'`` or ``'column'``) and however the tickers are ordered, each
    value lands under the ticker its column is labelled with. Dates on which a ticker has
    no prices at all (yfinance pads every ticker to the union of dates) yield no row.

    Args:
        frame: The download, with a two-level column index (tickers × price fields).
        source_file: Provenance for a ticker's rows (e.g. its chart URL).

    Returns:
        ``(bars, actions)`` in :data:`RAW_BAR_COLUMNS` / :data:`RAW_ACTION_COLUMNS`, all text;
        ``source_row`` is the 1-based position of the bar in the ticker's series.
    """
    bars: dict[str, list[str | None]] = {c: [] for c in RAW_BAR_COLUMNS}
    actions: dict[str, list[str | None]] = {c: [] for c in RAW_ACTION_COLUMNS}
    if frame is not None and not frame.empty and isinstance(frame.columns, pd.MultiIndex):
        t_level, f_level = _levels(frame.columns)
        dates = [d.date().isoformat() for d in pd.DatetimeIndex(frame.index)]
        tickers = list(dict.fromkeys(str(t) for t in frame.columns.get_level_values(t_level)))
        for ticker in sorted(tickers):
            series: dict[str, list[Any]] = {}
            for col in frame.columns:
                if str(col[t_level]) != ticker:
                    continue
                fld = _FIELDS.get(normalise_label(str(col[f_level])))
                if fld is not None:
                    series[fld] = frame[col].tolist()
            if "close" not in series:
                continue
            name = ticker.strip().upper()
            src = source_file(name)
            n_row = 0
            for i, day in enumerate(dates):
                prices = [
                    _text(series[f][i], integral=f == "volume") if f in series else None
                    for f in _PRICE_FIELDS
                ]
                row: str | None = None
                if any(p is not None for p in prices):
                    n_row += 1
                    row = str(n_row)
                    for col_name, value in zip(_PRICE_FIELDS, prices, strict=True):
                        bars[col_name].append(value)
                    bars["ticker"].append(name)
                    bars["date"].append(day)
                    bars["source"].append(SOURCE)
                    bars["source_file"].append(src)
                    bars["source_row"].append(row)
                # Checked even on a date without prices: an action is kept wherever Yahoo puts it.
                for fld, action in (("splits", "split"), ("dividends", "dividend")):
                    value = _text(series[fld][i]) if fld in series else None
                    if value is None or float(value) == 0.0:
                        continue
                    actions["ticker"].append(name)
                    actions["date"].append(day)
                    actions["action"].append(action)
                    actions["ratio"].append(value if action == "split" else None)
                    actions["amount"].append(value if action == "dividend" else None)
                    actions["source"].append(SOURCE)
                    actions["source_file"].append(src)
                    actions["source_row"].append(row)
    bar_table = pa.table({c: pa.array(v, pa.string()) for c, v in bars.items()})
    action_table = pa.table({c: pa.array(v, pa.string()) for c, v in actions.items()})
    return bar_table, action_table


# --------------------------------------------------------------------------- HTTP session


@dataclass(frozen=True, slots=True)
class _Outcome:
    status: int | None
    error: str | None


class YahooSession(curl_requests.Session):
    """The curl_cffi session yfinance uses, optionally redirected, recording chart outcomes.

    Args:
        base_url: Send every request to this scheme and host instead (path and query
            kept), so that nothing leaves for Yahoo's hosts. None keeps them.
    """

    def __init__(self, base_url: str | None = None) -> None:
        super().__init__(impersonate="chrome")
        self.base_url = base_url.rstrip("/") if base_url else None
        self._lock = threading.Lock()
        self.outcomes: dict[str, _Outcome] = {}
        self.last_error: str | None = None

    def _target(self, url: str) -> str:
        if self.base_url is None:
            return url
        parts = urlsplit(url)
        base = urlsplit(self.base_url)
        return urlunsplit((base.scheme, base.netloc, base.path + parts.path, parts.query, ""))

    def request(self, method: Any, url: str, *args: Any, **kwargs: Any) -> Any:
        """Send a request (see ``curl_cffi.requests.Session.request``), noting chart outcomes."""
        path = urlsplit(url).path
        symbol = unquote(path[len(_CHART_PREFIX) :]).upper() if path.startswith(_CHART_PREFIX) else None
        try:
            response = super().request(method, self._target(url), *args, **kwargs)
        except Exception as e:
            reason = (str(e).splitlines()[0] if str(e) else type(e).__name__).split(". See ")[0]
            with self._lock:
                self.last_error = reason
                if symbol is not None:
                    self.outcomes[symbol] = _Outcome(None, reason)
            raise
        if symbol is not None:
            with self._lock:
                self.outcomes[symbol] = _Outcome(response.status_code, None)
        return response


class _Silence(logging.Handler):
    """Keeps yfinance's multi-line error logs off the terminal; the caller reports instead."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


# --------------------------------------------------------------------------- fetching


@dataclass
class YahooReport:
    """What a Yahoo fetch did.

    Attributes:
        tickers: Tickers asked for.
        fetched: Tickers that returned prices.
        rows: Rows per raw dataset.
        errors: One-line errors for tickers that returned nothing.
        downloads: ``yfinance.download`` calls made (batches × attempts).
        retries: Retried downloads.
    """

    tickers: list[str] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    errors: list[TickerlakeError] = field(default_factory=list)
    downloads: int = 0
    retries: int = 0


def _use_cache_dir(cache_dir: str | os.PathLike[str] | None) -> None:
    """Point yfinance's small caches (time zones, cookies) at ``cache_dir``, once per process."""
    if cache_dir is None:
        return
    import yfinance as yf  # type: ignore[import-untyped]  # yfinance ships no type information

    with _cache_lock:
        if _cache_dir_set:
            return  # yfinance opens its cache databases once; later changes are ignored by it
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        yf.set_tz_cache_location(str(cache_dir))
        _cache_dir_set.append(str(cache_dir))


def _download(
    tickers: Sequence[str], start: dt.date, end: dt.date, session: YahooSession, timeout: float
) -> tuple[pd.DataFrame, list[str]]:
    import yfinance as yf  # type: ignore[import-untyped]  # yfinance ships no type information
    from yfinance.data import YfData  # type: ignore[import-untyped]

    # yfinance memoises responses for past date ranges in-process; a retry must reach the server.
    YfData.cache_get.cache_clear()
    silence = _Silence()
    logger = logging.getLogger("yfinance")
    logger.addHandler(silence)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = yf.download(
                list(tickers),
                start=start.isoformat(),
                end=(end + dt.timedelta(days=1)).isoformat(),  # yfinance's end is exclusive
                actions=True,
                auto_adjust=False,
                group_by="ticker",
                progress=False,
                threads=min(len(tickers), 4),
                timeout=timeout,
                session=session,
                multi_level_index=True,
            )
    finally:
        logger.removeHandler(silence)
    return frame, silence.messages


class _Unavailable(TransientError):
    """Some tickers of a batch failed transiently; the retry helper tries them again."""

    def __init__(self, failures: dict[str, TransientError]) -> None:
        ticker, first = next(iter(failures.items()))
        super().__init__(f"{ticker}: {first}")
        self.failures = failures


def _failure(ticker: str, start: dt.date, end: dt.date, session: YahooSession) -> TickerlakeError:
    """Why a ticker came back empty: a :class:`TransientError` (worth retrying) or a final error."""
    outcome = session.outcomes.get(ticker)
    if outcome is None:
        return TransientError(session.last_error or "no response")
    if outcome.error is not None:
        return TransientError(outcome.error)
    if outcome.status in _TRANSIENT_STATUS:
        return TransientError(f"HTTP {outcome.status}")
    prefix = f"yahoo: no data for {ticker} from {start} to {end}"
    if outcome.status == 404:
        return NotFoundError(f"{prefix}: unknown or delisted ticker (HTTP 404)")
    if outcome.status is not None and outcome.status >= 400:
        return UserError(f"{prefix}: HTTP {outcome.status}")
    return NotFoundError(f"{prefix}: no prices in this date range")


class _Batch:
    """The tickers of one ``yfinance.download`` call, fetched again while some fail transiently.

    Args:
        pending: Tickers still to fetch; after an attempt, only the transient failures.
        start: First day.
        end: Last day.
        base_url: Where to send requests (None: Yahoo).
        timeout: Per-request timeout.
        provenance: The ``source_file`` of a ticker's rows.
        report: Receives counts and final per-ticker errors.
    """

    def __init__(
        self,
        pending: list[str],
        start: dt.date,
        end: dt.date,
        base_url: str | None,
        timeout: float,
        provenance: Callable[[str], str],
        report: YahooReport,
    ) -> None:
        self.pending = pending
        self.start, self.end = start, end
        self.base_url = base_url
        self.timeout = timeout
        self.provenance = provenance
        self.report = report
        self.ready: list[tuple[str, pa.Table]] = []
        self.session: YahooSession | None = None

    def attempt(self) -> None:
        """Download the pending tickers once.

        Raises:
            _Unavailable: Some failed transiently (they stay pending).
        """
        session = self.session = YahooSession(self.base_url)
        try:
            self.report.downloads += 1
            frame, _ = _download(self.pending, self.start, self.end, session, self.timeout)
        finally:
            session.close()
        bars, actions = download_frame_to_raw(frame, self.provenance)
        got = sorted(set(bars.column("ticker").to_pylist()))
        self.report.fetched.extend(got)
        self.ready.extend(
            (d, t) for d, t in (("daily_bars", bars), ("corporate_actions", actions)) if t.num_rows
        )
        transient: dict[str, TransientError] = {}
        for t in self.pending:
            if t in got:
                continue
            error = _failure(t, self.start, self.end, session)
            if isinstance(error, TransientError):
                transient[t] = error
            else:
                self.report.errors.append(error)
        if transient:
            self.pending = list(transient)
            raise _Unavailable(transient)

    def count_retry(self, _error: BaseException, _delay: float) -> None:
        """Count a retry in the report (the retry helper's ``on_retry``)."""
        self.report.retries += 1


def fetch_yahoo(
    tickers: Sequence[str],
    start: dt.date,
    end: dt.date,
    *,
    batch_size: int = 20,
    retries: int = 3,
    backoff_s: float = 1.0,
    timeout: float = 20.0,
    base_url: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    report: YahooReport | None = None,
) -> Iterator[tuple[str, pa.Table]]:
    """Download daily bars and corporate actions from Yahoo Finance.

    Args:
        tickers: Ticker symbols (upper-cased).
        start: First day, inclusive.
        end: Last day, inclusive.
        batch_size: Tickers per ``yfinance.download`` call.
        retries: Extra attempts for tickers that failed transiently.
        backoff_s: First retry delay; doubles per attempt (jittered, at most 30 s).
        timeout: Per-request timeout in seconds.
        base_url: Scheme and host to send Yahoo requests to (default: Yahoo itself, or
            ``$TICKERLAKE_YAHOO_BASE_URL``).
        cache_dir: Folder for yfinance's time-zone and cookie caches.
        report: Receives per-ticker outcomes and counts.

    Yields:
        ``("daily_bars", table)`` and ``("corporate_actions", table)`` per batch, all text,
        ``source = "yahoo"``.

    Raises:
        TransientError: Yahoo cannot be reached (offline, DNS, refused) after the retries.
        UserError: ``start`` is after ``end``.
    """
    report = report if report is not None else YahooReport()
    wanted = [t.strip().upper() for t in tickers if t.strip()]
    report.tickers.extend(wanted)
    if start > end:
        raise UserError(f"yahoo: start {start} is after end {end}")
    base_url = base_url or os.environ.get(BASE_URL_ENV) or None
    shown_base = (base_url or DEFAULT_BASE_URL).rstrip("/")
    _use_cache_dir(cache_dir)

    def provenance(ticker: str) -> str:
        return f"{shown_base}{_CHART_PREFIX}{ticker}?start={start.isoformat()}&end={end.isoformat()}"

    for i in range(0, len(wanted), max(1, batch_size)):
        batch = _Batch(wanted[i : i + max(1, batch_size)], start, end, base_url, timeout, provenance, report)
        gave_up: _Unavailable | None = None
        try:
            retry(
                batch.attempt,
                what="yahoo",
                attempts=retries + 1,
                base_delay_s=backoff_s,
                max_delay_s=max(backoff_s, 30.0),
                on_retry=batch.count_retry,
            )
        except TransientError as e:
            if not isinstance(e.__cause__, _Unavailable):
                raise
            gave_up = e.__cause__
        # Tables of every attempt, also when some tickers finally failed: they are good rows.
        for dataset, table in batch.ready:
            report.rows[dataset] = report.rows.get(dataset, 0) + table.num_rows
            yield dataset, table
        if gave_up is None:
            continue
        outcomes = batch.session.outcomes if batch.session is not None else {}
        unreachable = [t for t in gave_up.failures if outcomes.get(t, _Outcome(None, "")).status is None]
        if unreachable:
            raise TransientError(
                f"cannot reach Yahoo Finance at {shown_base} after {retries + 1} attempts "
                f"(offline?): {gave_up.failures[unreachable[0]]}",
                exhausted=True,
            )
        for t, error in gave_up.failures.items():
            report.errors.append(
                TransientError(f"yahoo: no data for {t} after {retries + 1} attempts: {error}")
            )
