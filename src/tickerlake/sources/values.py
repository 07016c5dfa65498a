"""Dates and numbers as sites write them, decided per file from the values. Pure: no I/O.

A file's date format is decided from its date values, never guessed per row: ``06/30/2022``
can only be ``MM/DD/YYYY``, and once one date of a file says so, ``06/01/2022`` in the same
file is 1 June. A file whose every date reads both ways (all days ≤ 12) is ambiguous and
refused unless the user names the format. Numbers lose currency signs and thousands
separators; the decimal mark (``.`` or ``,``) is decided per file the same way.

Values that do not read under the file's format are kept with a note (``"01/13/2022 (not
DD/MM/YYYY)"``) so that the ETL quarantines them with their original text instead of
reading them some other way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "DATE_FORMATS",
    "AmbiguousValues",
    "DateFormat",
    "DateVote",
    "apply_date_format",
    "apply_decimal",
    "date_format_named",
    "decide_decimal",
    "epoch_us",
    "is_iso_date_text",
    "needs_number_cleaning",
    "number_from_text",
]


class AmbiguousValues(ValueError):
    """Values that do not settle a format, with the line that shows it (None: unknown)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True, slots=True)
class DateFormat:
    """One way of writing a date.

    Attributes:
        name: What users write (``DD.MM.YYYY``), also accepted by ``--date-format``.
        strptime: The ``strptime`` pattern.
        shape: Regex a value must match in full (``strptime`` alone is lenient about digits).
    """

    name: str
    strptime: str
    shape: str


_DMY = r"^\d{1,2}/\d{1,2}/\d{4}$"
_DMY2 = r"^\d{1,2}/\d{1,2}/\d{2}$"
_DASH = r"^\d{1,2}-\d{1,2}-\d{4}$"

#: Formats a date column may have, the unambiguous ones first.
DATE_FORMATS: tuple[DateFormat, ...] = (
    DateFormat("YYYY-MM-DD", "%Y-%m-%d", r"^\d{4}-\d{1,2}-\d{1,2}$"),
    DateFormat("YYYYMMDD", "%Y%m%d", r"^\d{8}$"),
    DateFormat("YYYY/MM/DD", "%Y/%m/%d", r"^\d{4}/\d{1,2}/\d{1,2}$"),
    DateFormat("YYYY.MM.DD", "%Y.%m.%d", r"^\d{4}\.\d{1,2}\.\d{1,2}$"),
    DateFormat("MM/DD/YYYY", "%m/%d/%Y", _DMY),
    DateFormat("DD/MM/YYYY", "%d/%m/%Y", _DMY),
    DateFormat("DD.MM.YYYY", "%d.%m.%Y", r"^\d{1,2}\.\d{1,2}\.\d{4}$"),
    DateFormat("DD-MM-YYYY", "%d-%m-%Y", _DASH),
    DateFormat("MM-DD-YYYY", "%m-%d-%Y", _DASH),
    DateFormat("MM/DD/YY", "%m/%d/%y", _DMY2),
    DateFormat("DD/MM/YY", "%d/%m/%y", _DMY2),
    DateFormat("DD.MM.YY", "%d.%m.%y", r"^\d{1,2}\.\d{1,2}\.\d{2}$"),
    DateFormat("DD-Mon-YYYY", "%d-%b-%Y", r"^\d{1,2}-[A-Za-z]{3}-\d{4}$"),
    DateFormat("DD Mon YYYY", "%d %b %Y", r"^\d{1,2} [A-Za-z]{3} \d{4}$"),
    DateFormat("Mon DD, YYYY", "%b %d, %Y", r"^[A-Za-z]{3} \d{1,2}, \d{4}$"),
)
_BY_NAME = {f.name.upper(): f for f in DATE_FORMATS}

# A time of day after the date (Yahoo writes "2020-01-02 00:00:00-05:00", others "… 16:00").
_TIME_PART = r"[ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*([Zz]|[+-]\d{2}:?\d{2})?$"
_ISO_PREFIX = re.compile(r"^\s*\d{4}-\d{2}-\d{2}([ T].*)?\s*$")


def date_format_named(name: str) -> DateFormat:
    """The format for a ``--date-format`` value: a name of :data:`DATE_FORMATS` or a ``%`` pattern.

    Raises:
        ValueError: Neither.
    """
    text = name.strip()
    known = _BY_NAME.get(text.upper())
    if known is not None:
        return known
    if "%" in text:
        return DateFormat(text, text, r"^.+$")
    raise ValueError(
        f"{name!r} is not a date format (use one of {', '.join(f.name for f in DATE_FORMATS)} "
        "or a strptime pattern such as %d.%m.%Y)"
    )


def is_iso_date_text(values: Sequence[str | None]) -> bool:
    """Whether every filled value starts with an ISO date (the ETL reads those as they are)."""
    return all(v is None or not v.strip() or _ISO_PREFIX.match(v) for v in values)


def _trimmed(arr: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(pc.utf8_trim_whitespace(arr), _TIME_PART, "")


def _days(text: pa.Array, fmt: DateFormat) -> pa.Array:
    """Days since the epoch per value (null where the value is not in ``fmt``)."""
    shaped = pc.fill_null(pc.match_substring_regex(text, fmt.shape), False)
    if not pc.any(shaped).as_py():
        return pa.nulls(len(text), pa.int32())  # the common case for most formats: no parsing
    parsed = pc.strptime(text, format=fmt.strptime, unit="s", error_is_null=True)
    days = pc.cast(pc.cast(parsed, pa.date32()), pa.int32())
    return pc.if_else(shaped, days, pa.nulls(len(text), pa.int32()))


class DateVote:
    """Decides a file's date format from its date values, fed in batches.

    Args:
        candidates: Formats to consider (default: all of :data:`DATE_FORMATS`).
    """

    def __init__(self, candidates: Sequence[DateFormat] = DATE_FORMATS) -> None:
        self.candidates = tuple(candidates)
        self.counts = dict.fromkeys((f.name for f in self.candidates), 0)
        self.filled = 0
        self.first: tuple[str, int] | None = None
        # (format a, format b) → a value and line both read, as different dates.
        self.differ: dict[tuple[str, str], tuple[str, int]] = {}
        # A value read by every format that reads any value: shows an ambiguity.
        self.both: dict[tuple[str, str], tuple[str, int]] = {}

    def add(self, values: pa.Array, lines: np.ndarray) -> None:
        """Count which formats read each value of a batch."""
        text = _trimmed(values)
        filled = pc.fill_null(pc.not_equal(text, ""), False)
        n_filled = pc.sum(filled).as_py() or 0
        if not n_filled:
            return
        if self.first is None:
            i = pc.indices_nonzero(filled)[0].as_py()
            self.first = (str(text[i].as_py()), int(lines[i]))
        self.filled += n_filled
        parsed: dict[str, pa.Array] = {}
        for fmt in self.candidates:
            days = _days(text, fmt)
            hits = len(days) - days.null_count
            if hits:
                parsed[fmt.name] = days
                self.counts[fmt.name] += hits
        names = list(parsed)
        for a_i, a in enumerate(names):
            for b in names[a_i + 1 :]:
                da, db = parsed[a], parsed[b]
                both = pc.and_(pc.is_valid(da), pc.is_valid(db))
                if (a, b) not in self.both and pc.any(both).as_py():
                    i = pc.indices_nonzero(both)[0].as_py()
                    self.both[(a, b)] = (str(text[i].as_py()), int(lines[i]))
                if (a, b) not in self.differ:
                    diff = pc.fill_null(pc.not_equal(da, db), False)
                    if pc.any(diff).as_py():
                        i = pc.indices_nonzero(diff)[0].as_py()
                        self.differ[(a, b)] = (str(text[i].as_py()), int(lines[i]))

    def result(self) -> DateFormat | None:
        """The file's format; None when no value is in any known format.

        Raises:
            AmbiguousValues: Two formats read the values equally well but give different dates.
        """
        best = max(self.counts.values(), default=0)
        if best == 0:
            return None
        tops = [f for f in self.candidates if self.counts[f.name] == best]
        winner = tops[0]
        for other in tops[1:]:
            key = (winner.name, other.name)
            if key in self.differ:
                value, line = self.differ[key]
                raise AmbiguousValues(
                    f"dates such as {value!r} read both as {winner.name} and as {other.name}, and no "
                    f"date in the file tells them apart (pass --date-format {winner.name} or "
                    f"--date-format {other.name})",
                    line,
                )
        return winner


def apply_date_format(values: pa.Array, fmt: DateFormat) -> pa.Array:
    """ISO dates (``YYYY-MM-DD``) for values in ``fmt``; the others noted (see the module doc)."""
    text = _trimmed(values)
    days = _days(text, fmt)
    iso = pc.cast(pc.cast(days, pa.date32()), pa.string())
    filled = pc.fill_null(pc.not_equal(text, ""), False)
    bad = pc.and_(filled, pc.is_null(days))
    if pc.any(bad).as_py():
        noted = pc.binary_join_element_wise(values, pa.scalar(f" (not {fmt.name})"), "")
        iso = pc.if_else(bad, noted, iso)
    return pc.if_else(filled, iso, pa.nulls(len(values), pa.string()))


# --------------------------------------------------------------------------- numbers

_PLAIN = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"
_PLAIN_RE = re.compile(_PLAIN)
# Currency signs and codes, spaces (also no-break and thin ones) and the Swiss apostrophe.
_DECOR = "US\\$|[\\s\u00a0\u202f'’$€£¥₹]|\\b(?:USD|EUR|GBP|CHF|JPY|CAD|AUD)\\b"
_DECOR_RE = re.compile(_DECOR)
_THOUSANDS_COMMA = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")
_NUMERIC_SHAPE = re.compile(r"^[+-]?[\d.,]*\d[\d.,]*$")
_THOUSANDS_DOT = re.compile(r"^[+-]?\d{1,3}(\.\d{3})+(,\d*)?$")


def needs_number_cleaning(values: Sequence[str | None]) -> bool:
    """Whether any filled value is not a plain number (a sign, a separator, a comma)."""
    return any(v is not None and v.strip() and not _PLAIN_RE.match(v) for v in values)


def decide_decimal(samples: Sequence[tuple[str, int]], delimiter: str = ",") -> str:
    """The decimal mark of a file's numbers: ``.`` or ``,``.

    Args:
        samples: ``(value, line)`` of numbers in the file.
        delimiter: The file's field separator: when the values cannot tell (``1,234`` only),
            a ``;``-separated file is taken to use decimal commas, as European exports do.

    Raises:
        AmbiguousValues: Some values show decimal points and others decimal commas.
    """
    point: tuple[str, int] | None = None
    comma: tuple[str, int] | None = None
    for value, line in samples:
        v = _DECOR_RE.sub("", value)
        if not _NUMERIC_SHAPE.match(v):
            continue  # not a number at all: says nothing about the decimal mark
        if "," in v and "." in v:
            mark = "," if v.rfind(",") > v.rfind(".") else "."
        elif "," in v:
            if v.count(",") > 1 and _THOUSANDS_COMMA.match(v):
                mark = "."
            elif _THOUSANDS_COMMA.match(v):
                continue  # 1,234: either reading
            else:
                mark = ","
        elif "." in v:
            if v.count(".") > 1 and _THOUSANDS_DOT.match(v):
                mark = ","
            elif _THOUSANDS_DOT.match(v):
                continue  # 1.234: either reading
            else:
                mark = "."
        else:
            continue
        if mark == "." and point is None:
            point = (value, line)
        elif mark == "," and comma is None:
            comma = (value, line)
        if point and comma:
            raise AmbiguousValues(
                f"numbers use both a decimal point ({point[0]!r}, line {point[1]}) and a decimal "
                f"comma ({comma[0]!r}, line {comma[1]}) (pass --decimal . or --decimal ,)",
                comma[1],
            )
    if comma:
        return ","
    if point:
        return "."
    return "," if delimiter == ";" else "."


#: A number in the file's convention: thousands groups of three, then the decimal mark.
_GROUPED = {
    ".": r"^[+-]?(\d{1,3}(,\d{3})+|\d*)(\.\d*)?([eE][+-]?\d+)?$",
    ",": r"^[+-]?(\d{1,3}(\.\d{3})+|\d*)(,\d*)?([eE][+-]?\d+)?$",
}


def _note(decimal: str) -> str:
    return f" (not a number with decimal mark {decimal})"


def apply_decimal(values: pa.Array, decimal: str) -> pa.Array:
    """Plain numbers (``1234.5``) from decorated ones (``$1,234.50``, ``1.234,50 €``).

    A value whose separators do not fit the file's convention (``1,5`` where ``.`` is the
    decimal mark) is kept with a note, so that the ETL quarantines it rather than reading
    ``15``; other values that are not numbers (``NaN``, ``N/A``) are kept as they were.
    """
    text = pc.replace_substring_regex(values, _DECOR, "")
    fits = pc.fill_null(pc.match_substring_regex(text, _GROUPED[decimal]), False)
    if decimal == ",":
        plain = pc.replace_substring(pc.replace_substring(text, ".", ""), ",", ".")
    else:
        plain = pc.replace_substring(text, ",", "")
    ok = pc.and_(fits, pc.fill_null(pc.match_substring_regex(plain, _PLAIN), False))
    misfit = pc.and_(
        pc.invert(fits), pc.fill_null(pc.match_substring_regex(text, r"^[+-]?[\d.,]*\d[\d.,]*$"), False)
    )
    noted = pc.binary_join_element_wise(values, pa.scalar(_note(decimal)), "")
    return pc.if_else(ok, plain, pc.if_else(misfit, noted, values))


def number_from_text(text: str, decimal: str = ".") -> float | None:
    """One number from its text (``'$1,234.50'`` → 1234.5), or None when it is not one.

    Separators must fit ``decimal``'s convention: ``'143,5'`` is None with ``.``.
    """
    v = _DECOR_RE.sub("", text)
    if not re.match(_GROUPED[decimal], v):
        return None
    v = v.replace(".", "").replace(",", ".") if decimal == "," else v.replace(",", "")
    if not _PLAIN_RE.match(v):
        return None
    return float(v)


#: Magnitude limits of epoch seconds, milliseconds and microseconds (× to get µs): a time
#: of 1973 to 5138 in seconds is below 1e11, in milliseconds below 1e14...
_EPOCH_UNITS = ((1e11, 1_000_000), (1e14, 1_000), (1e17, 1))


def epoch_us(value: float) -> int | None:
    """Microseconds since the epoch from epoch seconds, milliseconds or microseconds, told apart by size."""
    for limit, scale in _EPOCH_UNITS:
        if abs(value) < limit:
            return round(value * scale)
    return None
