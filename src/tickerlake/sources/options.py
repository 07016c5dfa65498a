"""What the user says about input files: command-line options and the per-folder sidecar file.

Everything that cannot be guessed from a file can be said once, either as options of
``ingest csv``/``ingest file`` or in a ``tickerlake.toml`` in the folder of a recurring
drop, so that the next drop needs no flags::

    # tickerlake.toml: applies to the files of this folder and its subfolders
    ticker = "SAP"                       # files without a ticker column or ticker name
    columns = { date = "Datum", close = "Schluss" }   # or "date=Datum,close=Schluss"
    date_format = "DD.MM.YYYY"
    decimal = ","
    delimiter = ";"                      # or "tab"
    encoding = "cp1252"
    pattern = "*.txt"                    # which files of the folder to read
    symbol_map = { FB = "META" }         # or a file name, relative to this folder

Options on the command line win over the sidecar; the nearest sidecar (the file's folder,
then its parents up to the folder named on the command line) applies.
"""

from __future__ import annotations

import codecs
import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tickerlake.errors import UserError
from tickerlake.lake.contract import normalize_ticker
from tickerlake.sources.labels import FIELD_SYNONYMS
from tickerlake.sources.symbols import SymbolMap, parse_symbol_map
from tickerlake.sources.values import DateFormat, date_format_named

__all__ = ["SIDECAR", "ReadOptions", "load_sidecar", "parse_columns", "parse_delimiter"]

SIDECAR = "tickerlake.toml"
_KEYS = ("ticker", "columns", "date_format", "decimal", "delimiter", "encoding", "pattern", "symbol_map")


@dataclass(frozen=True)
class ReadOptions:
    """How to read input files; None means "decide from the file".

    Attributes:
        ticker: The ticker of files that carry none (no ticker column, no ticker name).
        columns: Field → column label (``--columns``), over the built-in label synonyms.
        date_format: The date format (``--date-format``) instead of deciding per file.
        decimal: ``.`` or ``,`` (``--decimal``).
        delimiter: Field separator (``--delimiter``).
        encoding: Text encoding (``--encoding``).
        pattern: Glob of the file names read in folders (``--pattern``).
        symbols: Symbol renames and suffix rules.
    """

    ticker: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    date_format: DateFormat | None = None
    decimal: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    pattern: str | None = None
    symbols: SymbolMap = field(default_factory=SymbolMap)

    @classmethod
    def parse(cls, values: Mapping[str, Any], origin: str, base: str | None = None) -> ReadOptions:
        """Options from raw values (command line or sidecar); unset ones are None.

        Raises:
            UserError: A value is not valid; the message starts with ``origin``'s option name.
        """
        unknown = sorted(set(values) - set(_KEYS))
        if unknown:
            raise UserError(f"{origin}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(_KEYS)})")
        try:
            ticker = values.get("ticker")
            if ticker is not None:
                ticker = normalize_ticker(str(ticker))
                if ticker is None:
                    raise ValueError(f"ticker: {values['ticker']!r} is not a ticker symbol")
            cols = values.get("columns")
            columns = parse_columns(cols) if cols is not None else {}
            fmt = values.get("date_format")
            try:
                date_format = date_format_named(str(fmt)) if fmt else None
            except ValueError as e:
                raise ValueError(f"date_format: {e}") from None
            decimal = values.get("decimal")
            if decimal is not None and decimal not in (".", ","):
                raise ValueError(f"decimal: {decimal!r} must be . or ,")
            delim = values.get("delimiter")
            delimiter = parse_delimiter(str(delim)) if delim is not None else None
            encoding = values.get("encoding")
            if encoding is not None:
                try:
                    encoding = codecs.lookup(str(encoding)).name
                except LookupError:
                    raise ValueError(
                        f"encoding: {values['encoding']!r} is not a known text encoding"
                    ) from None
            smap = values.get("symbol_map")
            explicit = parse_symbol_map(smap, base) if smap else {}
        except ValueError as e:
            raise UserError(f"{origin}: {e}") from None
        return cls(
            ticker=ticker,
            columns=columns,
            date_format=date_format,
            decimal=decimal,
            delimiter=delimiter,
            encoding=encoding,
            pattern=values.get("pattern"),
            symbols=SymbolMap(explicit=explicit),
        )

    def over(self, base: ReadOptions) -> ReadOptions:
        """These options where set, ``base``'s elsewhere (command line over sidecar)."""
        merged: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            mine, theirs = getattr(self, f.name), getattr(base, f.name)
            if f.name == "symbols":
                merged[f.name] = SymbolMap(explicit={**theirs.explicit, **mine.explicit})
            elif f.name == "columns":
                merged[f.name] = {**theirs, **mine}
            else:
                merged[f.name] = mine if mine is not None else theirs
        return ReadOptions(**merged)


_FIELDS = tuple(FIELD_SYNONYMS)


def parse_columns(spec: str | Mapping[str, Any]) -> dict[str, str]:
    """``'date=Datum,close=Schluss'`` (or a mapping) → ``{'date': 'Datum', 'close': 'Schluss'}``.

    Raises:
        ValueError: Not ``field=label`` pairs, or an unknown field.
    """
    if isinstance(spec, Mapping):
        pairs = [(str(k), str(v)) for k, v in spec.items()]
    else:
        pairs = []
        for part in spec.split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise ValueError(f"columns: {part.strip()!r} is not field=label")
            k, v = part.split("=", 1)
            pairs.append((k, v))
    out: dict[str, str] = {}
    for k, v in pairs:
        key = k.strip().lower().replace(" ", "_")
        if key not in _FIELDS:
            raise ValueError(f"columns: {k.strip()!r} is not a field (fields: {', '.join(_FIELDS)})")
        if not v.strip():
            raise ValueError(f"columns: {k.strip()} has no label")
        out[key] = v.strip()
    return out


def parse_delimiter(value: str) -> str:
    """``;``, ``,``, ``|``, or ``tab``/``\\t`` → the one delimiter character.

    Raises:
        ValueError: Not one character.
    """
    v = {"tab": "\t", "\\t": "\t", "semicolon": ";", "comma": ",", "pipe": "|"}.get(value.lower(), value)
    if len(v) != 1 or v in '\r\n"':
        raise ValueError(f"delimiter: {value!r} must be one character (or 'tab')")
    return v


def load_sidecar(folder: str) -> ReadOptions | None:
    """The options of ``folder/tickerlake.toml``, or None when there is none.

    Raises:
        UserError: The file is not valid TOML or holds an invalid setting.
    """
    path = os.path.join(folder, SIDECAR)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as f:
            values = tomllib.load(f)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not a valid TOML file ({e})") from None
    return ReadOptions.parse(values, path, base=folder)
