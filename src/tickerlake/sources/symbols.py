"""Tickers as vendors spell them → the lake's tickers. Pure: no I/O except reading a map file.

* A file name gives a ticker once every extension is removed: ``aapl.us.txt``,
  ``AAPL.csv.gz``, a ``.zip`` member ``Stocks/msft.us.txt``; Stooq's own download name
  ``aapl_us_d.csv`` too.
* The exchange suffix of sources that append one to every US symbol (Stooq, Kaggle's
  Stooq-derived sets, EOD Historical Data: ``AAPL.US``) is removed. Nothing else is: ``BRK.B``
  and ``BF.B`` are real tickers, and ``SAP.DE`` is another listing than ``SAP``.
* An explicit symbol map (``--symbol-map``) renames what the user says (``FB=META``,
  vendor spellings such as ``BRK-B=BRK.B``); it is looked up with the symbol as written
  first, then without its suffix.

What was renamed is reported per file (original → ticker), and ``ingest`` keeps those pairs
in the raw zone (``raw/source_symbols/``) next to the rows.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from tickerlake.lake.contract import normalize_ticker

__all__ = [
    "EXCHANGE_SUFFIXES",
    "FILE_EXTENSIONS",
    "SymbolMap",
    "parse_symbol_map",
    "strip_extensions",
    "ticker_from_file_name",
]

#: Suffix → the source that writes it. Only suffixes that stand for "the US listing" are
#: removed, since the lake's plain tickers are US listings.
EXCHANGE_SUFFIXES: dict[str, str] = {".US": "Stooq / EOD Historical Data US listing"}

#: Extensions removed from a file name before it is read as a ticker.
FILE_EXTENSIONS: tuple[str, ...] = (
    ".gz",
    ".zip",
    ".csv",
    ".txt",
    ".tsv",
    ".prn",
    ".parquet",
    ".pq",
    ".jsonl",
    ".ndjson",
    ".json",
)

_DUPLICATE_SUFFIX = re.compile(r"\s*\(\d+\)$")
# Stooq names a single download <symbol>_<market>_<interval>.csv: aapl_us_d.csv.
_STOOQ_NAME = re.compile(r"^(?P<sym>[A-Za-z0-9.\-]+)_(?P<mkt>us|uk|de|jp|hk|pl|hu)_[dwmqy]$", re.IGNORECASE)


def strip_extensions(name: str) -> str:
    """A file's base name without its extensions (``'aapl.us.txt'`` → ``'aapl.us'``)."""
    stem = os.path.basename(name.replace("\\", "/"))
    changed = True
    while changed:
        changed = False
        for ext in FILE_EXTENSIONS:
            if stem.lower().endswith(ext) and len(stem) > len(ext):
                stem = stem[: -len(ext)]
                changed = True
    return _DUPLICATE_SUFFIX.sub("", stem).strip()


def ticker_from_file_name(name: str, *, strict_case: bool = False) -> str | None:
    """The symbol a file name stands for (``'AAPL.csv'`` → ``'AAPL'``), or None.

    The exchange suffix is kept (``'aapl.us.txt'`` → ``'AAPL.US'``): :class:`SymbolMap`
    removes it, so that the original spelling can be reported.

    Args:
        name: File name or path; extensions (:data:`FILE_EXTENSIONS`) and a browser's
            `` (1)`` duplicate suffix are ignored.
        strict_case: Only accept names written in upper case, as Yahoo names its
            downloads, so that ``prices.csv`` is not taken for ticker ``PRICES``.

    Returns:
        The upper-cased symbol, or None when the name is not a ticker symbol.
    """
    stem = strip_extensions(name)
    stooq = _STOOQ_NAME.match(stem)
    if stooq and stooq.group("mkt").lower() == "us" and not strict_case:
        stem = f"{stooq.group('sym')}.US"
    ticker = normalize_ticker(stem)
    # A file name must hold a letter too: ``2020.csv`` is a year, not a ticker.
    if ticker is None or not re.search(r"[A-Za-z]", stem):
        return None
    if strict_case and stem != ticker:
        return None
    return ticker


@dataclass(frozen=True)
class SymbolMap:
    """How symbols become tickers: explicit renames, then known exchange suffixes.

    Attributes:
        explicit: Symbol as written (upper case) → ticker.
        suffixes: Whether to remove :data:`EXCHANGE_SUFFIXES`.
    """

    explicit: Mapping[str, str] = field(default_factory=dict)
    suffixes: bool = True

    def resolve(self, symbol: str) -> str:
        """The ticker for a symbol (upper-cased, trimmed); unchanged when no rule applies."""
        sym = symbol.strip().upper()
        hit = self.explicit.get(sym)
        if hit is not None:
            return hit
        if self.suffixes:
            for suffix in EXCHANGE_SUFFIXES:
                if sym.endswith(suffix) and len(sym) > len(suffix):
                    bare = sym[: -len(suffix)]
                    return self.explicit.get(bare, bare)
        return sym


def _pairs_from_text(text: str, origin: str) -> dict[str, str]:
    out: dict[str, str] = {}
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if lines and all("=" in ln for ln in lines):
        rows = [ln.split("=", 1) for ln in lines]
    else:
        delimiter = ";" if lines and lines[0].count(";") > lines[0].count(",") else ","
        delimiter = "\t" if lines and "\t" in lines[0] else delimiter
        rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter))
    for n, row in enumerate(rows, start=1):
        if len(row) != 2:
            raise ValueError(f"{origin}: entry {n} is not FROM=TO or a two-column row ({row!r})")
        src, dst = row[0].strip().upper(), row[1].strip()
        if n == 1 and src in ("FROM", "SYMBOL", "SOURCE", "OLD", "VENDOR"):
            continue  # a header row
        ticker = normalize_ticker(dst)
        if not src or ticker is None:
            raise ValueError(f"{origin}: entry {n}: {dst!r} is not a ticker symbol")
        out[src] = ticker
    return out


def parse_symbol_map(spec: str | Mapping[str, str], base: str | None = None) -> dict[str, str]:
    """Symbol → ticker pairs from ``--symbol-map``.

    Args:
        spec: A file (``FROM=TO`` lines, or a two-column CSV with an optional header),
            inline pairs ``'FB=META,BRK-B=BRK.B'``, or a mapping (from a sidecar file).
        base: Folder a relative file name is taken from (a sidecar's folder).

    Raises:
        ValueError: An entry is not a pair or names no valid ticker.
    """
    if isinstance(spec, Mapping):
        return _pairs_from_text("\n".join(f"{k}={v}" for k, v in spec.items()), "symbol map")
    text = spec.strip()
    path = os.path.join(base, text) if base and not os.path.isabs(text) else text
    if os.path.isfile(path):
        with open(path, encoding="utf-8-sig") as f:
            return _pairs_from_text(f.read(), path)
    if "=" not in text:
        raise ValueError(f"--symbol-map: {spec!r} is neither a file nor FROM=TO pairs")
    return _pairs_from_text("\n".join(p for p in text.split(",") if p.strip()), "--symbol-map")
