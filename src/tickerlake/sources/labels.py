"""Column labels of price data: every spelling of a field that files and producers use. Pure.

One fact, one place: ``ingest`` (CSV, Parquet, JSON lines) and the stream decoder
(:mod:`tickerlake.stream.schema`) map labels to fields with these tables, so an event
keyed ``"stock symbol"``/``"Adj Close"`` is read like the CSV column of that name.

Labels are compared after :func:`normalise_label` (accents folded, lower case, letters and
digits only): ``'Adj. Close*'`` → ``'adjclose'``, ``'Eröffnung'`` → ``'eroffnung'``,
``'<TICKER>'`` (Stooq) → ``'ticker'``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

__all__ = [
    "BAR_FIELDS",
    "FIELD_SYNONYMS",
    "IGNORED_LABELS",
    "TICK_FIELD_SYNONYMS",
    "field_of",
    "map_labels",
    "normalise_label",
]

#: Canonical field → accepted spellings after :func:`normalise_label`, best first. When two
#: columns match one field, the spelling earlier in the list wins; two columns with the same
#: spelling are ambiguous. English first, then German, French, Spanish, Italian and Dutch
#: (the labels of European broker and exchange exports).
FIELD_SYNONYMS: dict[str, tuple[str, ...]] = {
    "ticker": (
        "ticker",
        "symbol",
        "tickersymbol",
        "stocksymbol",
        "stockticker",
        "tic",
        "sym",
        "stock",
        "name",
        "symbole",
        "simbolo",
        "symbool",
        "mnemo",
        "mnemonique",
    ),
    "date": (
        "date",
        "datetime",
        "timestamp",
        "tradedate",
        "tradingdate",
        "pricedate",
        "businessdate",
        "asofdate",
        "day",
        "time",
        "dt",
        "datum",
        "handelstag",
        "fecha",
        "data",
    ),
    "open": (
        "open",
        "openprice",
        "opening",
        "openingprice",
        "eroffnung",
        "eroeffnung",
        "eroffnungskurs",
        "anfangskurs",
        "erster",
        "ouverture",
        "ouv",
        "apertura",
        "precioapertura",
        "openingskoers",
    ),
    "high": (
        "high",
        "highprice",
        "dayhigh",
        "hoch",
        "hochstkurs",
        "tageshoch",
        "hochst",
        "plushaut",
        "haut",
        "maximo",
        "massimo",
        "max",
        "hoog",
        "hoogste",
    ),
    "low": (
        "low",
        "lowprice",
        "daylow",
        "tief",
        "tiefstkurs",
        "tagestief",
        "tiefst",
        "plusbas",
        "bas",
        "minimo",
        "min",
        "laag",
        "laagste",
    ),
    "close": (
        "close",
        "closeprice",
        "closing",
        "closingprice",
        "closelast",
        "last",
        "lastprice",
        "schluss",
        "schlusskurs",
        "letzter",
        "schlusspreis",
        "cloture",
        "dernier",
        "fermeture",
        "cierre",
        "ultimo",
        "chiusura",
        "slot",
        "slotkoers",
        "sluiting",
    ),
    "adj_close": (
        "adjclose",
        "adjustedclose",
        "adjcloseprice",
        "adjustedcloseprice",
        "adjclosing",
        "adjustedclosingprice",
        "closeadj",
        "closeadjusted",
        "bereinigterschluss",
        "clotureajustee",
        "cierreajustado",
        "chiusuraaggiustata",
        "chiusurarettificata",
        "aangepastslot",
    ),
    "volume": (
        "volume",
        "vol",
        "sharevolume",
        "tradingvolume",
        "totalvolume",
        "volumen",
        "stuck",
        "stucke",
        "volumenstucke",
    ),
    "dividends": (
        "dividends",
        "dividend",
        "dividendamount",
        "cashdividend",
        "div",
        "dividende",
        "dividendo",
    ),
    "splits": ("stocksplits", "stocksplit", "splits", "split", "splitratio", "splitfactor"),
}

#: The fields of a daily bar (what ``market.daily_bars`` holds besides provenance).
BAR_FIELDS: tuple[str, ...] = ("ticker", "date", "open", "high", "low", "close", "adj_close", "volume")

#: Tick event field → accepted spellings (the stream decoder); ``ticker`` as for bars.
TICK_FIELD_SYNONYMS: dict[str, tuple[str, ...]] = {
    "ticker": FIELD_SYNONYMS["ticker"],
    "ts": ("ts", "timestamp", "time", "datetime", "eventtime", "tradetime", "t"),
    "price": ("price", "px", "tradeprice", "lastprice", "last", "p"),
    "size": ("size", "qty", "quantity", "shares", "volume", "tradesize", "s", "q"),
    "seq": ("seq", "sequence", "seqno", "sequencenumber"),
}

#: Labels known to carry nothing a bar needs: yfinance's ``Capital Gains``/``Repaired?``,
#: Stooq's ``<PER>`` (period) and ``<TIME>`` of daily rows, Kaggle/Stooq ``OpenInt``
#: (open interest, always 0 for shares), pandas' unnamed index column.
IGNORED_LABELS = frozenset({"capitalgains", "repaired", "per", "openint", "unnamed0", ""})


def normalise_label(label: str) -> str:
    """A label reduced to lower-case ASCII letters and digits (``'Eröffnung'`` → ``'eroffnung'``)."""
    folded = unicodedata.normalize("NFKD", label.replace("ß", "ss"))
    ascii_only = "".join(c for c in folded if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]", "", ascii_only.lower())


def _index(synonyms: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, int]]:
    return {syn: (fld, rank) for fld, syns in synonyms.items() for rank, syn in enumerate(syns)}


_BAR_INDEX = _index(FIELD_SYNONYMS)
_TICK_INDEX = _index(TICK_FIELD_SYNONYMS)


def field_of(label: str, kind: str = "bar") -> tuple[str, int] | None:
    """``(field, rank)`` of a label (rank 0 is the best spelling), or None.

    Args:
        label: A column label or event key as written.
        kind: ``bar`` (files and bar events) or ``tick``.
    """
    return (_BAR_INDEX if kind == "bar" else _TICK_INDEX).get(normalise_label(label))


def map_labels(
    labels: Sequence[str], kind: str = "bar", explicit: Mapping[str, str] | None = None
) -> tuple[dict[str, int], list[str], list[tuple[str, list[int]]]]:
    """Field → position for a row of labels.

    Args:
        labels: Header labels or event keys, in order.
        kind: ``bar`` or ``tick``.
        explicit: Field → label the user named (``--columns``); it wins over synonyms, and
            the labels it names map to nothing else. Labels match exactly or after
            :func:`normalise_label`.

    Returns:
        ``(mapping, ignored labels, ambiguous)``: ``ambiguous`` lists fields that two or more
        equally good labels claim, with their positions. Labels the user named that are
        not present are reported by the caller (see :func:`missing_explicit`).
    """
    best: dict[str, tuple[int, list[int]]] = {}
    ignored: list[str] = []
    taken: set[int] = set()
    for fld, wanted in (explicit or {}).items():
        pos = _find_label(labels, wanted)
        if pos is not None:
            best[fld] = (-1, [pos])
            taken.add(pos)
    for i, label in enumerate(labels):
        if i in taken:
            continue
        hit = field_of(label, kind)
        if hit is None or (hit[0] in best and best[hit[0]][0] < 0):
            if label.strip():
                ignored.append(label.strip())
            continue
        fld, rank = hit
        cur = best.get(fld)
        if cur is None or rank < cur[0]:
            if cur is not None:
                ignored.extend(labels[j].strip() for j in cur[1])
            best[fld] = (rank, [i])
        elif rank == cur[0]:
            cur[1].append(i)
        else:
            ignored.append(label.strip())
    mapping: dict[str, int] = {}
    ambiguous: list[tuple[str, list[int]]] = []
    for fld, (_, idxs) in best.items():
        if len(idxs) > 1:
            ambiguous.append((fld, idxs))
        else:
            mapping[fld] = idxs[0]
    return mapping, ignored, ambiguous


def _find_label(labels: Sequence[str], wanted: str) -> int | None:
    """Position of the label the user named: exact (trimmed) first, then normalised."""
    for i, label in enumerate(labels):
        if label.strip() == wanted.strip():
            return i
    norm = normalise_label(wanted)
    hits = [i for i, label in enumerate(labels) if normalise_label(label) == norm]
    return hits[0] if len(hits) == 1 else None
