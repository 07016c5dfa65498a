"""The pure pieces: label spellings, per-file date format and decimal mark, symbols, options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tickerlake.errors import UserError
from tickerlake.sources.labels import field_of, map_labels, normalise_label
from tickerlake.sources.options import ReadOptions, load_sidecar, parse_delimiter
from tickerlake.sources.symbols import SymbolMap, parse_symbol_map, strip_extensions, ticker_from_file_name
from tickerlake.sources.values import (
    AmbiguousValues,
    DateVote,
    apply_date_format,
    apply_decimal,
    date_format_named,
    decide_decimal,
    number_from_text,
)


@pytest.mark.parametrize(
    ("label", "field"),
    [
        ("Eröffnung", "open"),
        ("Schlusskurs", "close"),
        ("Clôture", "close"),
        ("Plus haut", "high"),
        ("Mínimo", "low"),
        ("Chiusura", "close"),
        ("Slotkoers", "close"),
        ("<VOL>", "volume"),
        ("Close/Last", "close"),
        ("stock symbol", "ticker"),
        ("Stücke", "volume"),
    ],
)
def test_labels_in_six_languages(label: str, field: str) -> None:
    hit = field_of(label)
    assert hit is not None and hit[0] == field


def test_label_mapping_prefers_explicit_columns_and_reports_ties() -> None:
    mapping, ignored, ambiguous = map_labels(["Datum", "Kurs", "Schluss"], explicit={"close": "Kurs"})
    assert mapping == {"date": 0, "close": 1}
    assert ignored == ["Schluss"]
    assert ambiguous == []
    assert map_labels(["Close", "close"])[2] == [("close", [0, 1])]
    assert normalise_label("Straße ß") == "strassess"


def vote(values: list[str]) -> str | None:
    v = DateVote()
    v.add(pa.array(values, pa.string()), np.arange(2, len(values) + 2))
    got = v.result()
    return None if got is None else got.name


def test_the_date_format_is_decided_by_the_values_that_tell() -> None:
    assert vote(["06/01/2022", "06/30/2022"]) == "MM/DD/YYYY"
    assert vote(["01/06/2022", "30/06/2022"]) == "DD/MM/YYYY"
    assert vote(["01.06.2022"]) == "DD.MM.YYYY"  # dots: day first, the only reading
    assert vote(["20220601"]) == "YYYYMMDD"
    assert vote(["01-Jun-2022", "Jun 02, 2022"]) in ("DD-Mon-YYYY", "Mon DD, YYYY")
    assert vote(["06/06/2022"]) == "MM/DD/YYYY"  # both readings agree: no ambiguity
    assert vote(["garbage"]) is None
    with pytest.raises(AmbiguousValues) as e:
        vote(["06/06/2022", "06/01/2022"])
    assert e.value.line == 3


def test_dates_that_misfit_the_format_are_noted_not_guessed() -> None:
    out = apply_date_format(pa.array(["30.06.2022", "06/30/2022", "", None]), date_format_named("DD.MM.YYYY"))
    assert out.to_pylist() == ["2022-06-30", "06/30/2022 (not DD.MM.YYYY)", None, None]
    assert date_format_named("%d.%m.%Y").strptime == "%d.%m.%Y"
    with pytest.raises(ValueError, match="not a date format"):
        date_format_named("DMY")


@pytest.mark.parametrize(
    ("values", "delimiter", "decimal"),
    [
        (["$136.72"], ",", "."),
        (["275,20", "74.286.600"], ";", ","),
        (["1,234.50"], ",", "."),
        (["1.234,50"], ",", ","),
        (["1,234"], ",", "."),  # either reading: a comma file's convention
        (["1,234"], ";", ","),  # either reading: a semicolon file's convention
        (["N/A", "-"], ",", "."),
    ],
)
def test_the_decimal_mark_is_decided_per_file(values: list[str], delimiter: str, decimal: str) -> None:
    assert decide_decimal([(v, 2) for v in values], delimiter) == decimal


def test_mixed_decimal_marks_are_refused_and_misfits_noted() -> None:
    with pytest.raises(
        AmbiguousValues, match=r"decimal point \('1.5', line 2\) and a decimal comma \('1,5', line 3\)"
    ):
        decide_decimal([("1.5", 2), ("1,5", 3)])
    out = apply_decimal(pa.array(["€ 1.234,50", "12,5", "1.5", "NaN"]), ",")
    assert out.to_pylist() == ["1234.50", "12.5", "1.5 (not a number with decimal mark ,)", "NaN"]
    assert number_from_text("$1,234.50") == 1234.5
    assert number_from_text("143,5") is None
    assert number_from_text("143,5", ",") == 143.5


@pytest.mark.parametrize(
    ("name", "ticker"),
    [
        ("AAPL.csv", "AAPL"),
        ("aapl.us.txt", "AAPL.US"),
        ("MSFT.csv.gz", "MSFT"),
        ("Stocks/brk.b.us.txt", "BRK.B.US"),
        ("BRK.B.csv", "BRK.B"),
        ("BF.B.txt", "BF.B"),
        ("aapl_us_d.csv", "AAPL.US"),
        ("AAPL (1).csv", "AAPL"),
        ("HistoricalData_1656624000000.csv", None),
        ("2020.csv", None),
    ],
)
def test_tickers_from_file_names(name: str, ticker: str | None) -> None:
    assert ticker_from_file_name(name) == ticker


def test_symbol_map_removes_us_suffixes_only_and_applies_renames() -> None:
    m = SymbolMap(explicit={"FB": "META", "BRK-B": "BRK.B"})
    assert [m.resolve(s) for s in ("AAPL.US", "fb.us", "BRK-B", "BRK.B", "BF.B", "SAP.DE", ".US")] == [
        "AAPL",
        "META",
        "BRK.B",
        "BRK.B",
        "BF.B",
        "SAP.DE",
        ".US",
    ]
    assert strip_extensions("x/y/aapl.us.txt.gz") == "aapl.us"


def test_symbol_maps_and_sidecars_refuse_what_they_cannot_read(tmp_path: Path) -> None:
    assert parse_symbol_map("fb=META, goog=GOOGL") == {"FB": "META", "GOOG": "GOOGL"}
    with pytest.raises(ValueError, match="is not a ticker symbol"):
        parse_symbol_map("FB=not a ticker")
    (tmp_path / "tickerlake.toml").write_text('decimal = ","\nsymbol_map = "map.txt"\n')
    (tmp_path / "map.txt").write_text("# vendor spellings\nBRK-B=BRK.B\n")
    side = load_sidecar(str(tmp_path))
    assert side is not None and side.decimal == "," and dict(side.symbols.explicit) == {"BRK-B": "BRK.B"}
    merged = ReadOptions(decimal=".").over(side)
    assert merged.decimal == "." and dict(merged.symbols.explicit) == {"BRK-B": "BRK.B"}
    (tmp_path / "tickerlake.toml").write_text("decimals = ','\n")
    with pytest.raises(UserError, match="unknown setting"):
        load_sidecar(str(tmp_path))
    assert parse_delimiter("tab") == "\t"
    with pytest.raises(ValueError):
        parse_delimiter(";;")
