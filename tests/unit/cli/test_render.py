"""Tables at 80 columns: columns chosen by priority and width, numbers never wrapped or cut,
``--json`` with every column."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from tickerlake.cli import app
from tickerlake.cli._common import fit_columns, render_rows

# The recession table of the CLI: 11 columns, 125 characters wide.
COLS = ["rank", "ticker", "return", "max drawdown", "peak → trough", "vol (ann.)", "worst day", "best day",
        "beta", "corr", "recovery"]  # fmt: skip
ROWS = [
    ("1", "MSFT", "+20.06%", "-25.85%", "2020-02-26 → 2020-03-17", "45.38%", "-14.74% 2020-03-16",
     "+14.22% 2020-03-13", "0.93", "0.97", "20 days (2020-04-15)"),
    ("", "BASKET", "+19.81%", "-30.7%", "2020-02-21 → 2020-03-18", "47.06%", "-13.9% 2020-03-16",
     "+12.1% 2020-03-13", "1.00", "1.00", "n/a"),
]  # fmt: skip


def test_fit_columns_keeps_the_most_important_in_display_order() -> None:
    widths = [4, 6, 7, 12, 23]
    # All five need 52 + 3 * 5 + 1 = 68; four without the 23-wide one need 29 + 12 + 1 = 42.
    assert fit_columns(widths, [False] * 5, 68) == [0, 1, 2, 3, 4]
    assert fit_columns(widths, [False] * 5, 67, priority=[1, 2, 3, 0]) == [0, 1, 2, 3]
    assert fit_columns(widths, [False] * 5, 42, priority=[1, 2, 3, 0]) == [0, 1, 2, 3]
    assert fit_columns(widths, [False] * 5, 41, priority=[1, 2, 3, 0]) == [1, 2, 3]
    # A wrappable column only needs its narrowest (14), so the 23-wide text stays at 68 - 9.
    assert fit_columns(widths, [False, False, False, False, True], 59) == [0, 1, 2, 3, 4]
    # The most important column is shown even when nothing fits.
    assert fit_columns([100, 5], [False, False], 20, priority=[1]) == [1]


def _render(width: int, priority: list[str] | None = None) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    import tickerlake.cli._common as common

    saved = common.err_console
    common.err_console = Console(file=err, width=width)
    try:
        render_rows("covid", COLS, ROWS, priority, out=Console(file=out, width=width))
    finally:
        common.err_console = saved
    return out.getvalue(), err.getvalue()


def test_eighty_columns_show_whole_numbers_by_priority() -> None:
    text, note = _render(80, ["ticker", "return", "max drawdown", "recovery", "vol (ann.)", "peak → trough"])
    assert max(len(line) for line in text.splitlines()) <= 80
    header = text.splitlines()[2]
    assert [h.strip() for h in header.strip("┃").split("┃")] == ["ticker", "return", "max drawdown", "vol (ann.)",
                                                                  "recovery"]  # fmt: skip
    for number in ("+20.06%", "-25.85%", "45.38%", "-30.7%", "+19.81%"):
        assert number in text  # whole, on one line
    assert "…" not in text
    assert "not shown at 80 columns: rank, peak → trough, worst day, best day, beta, corr" in " ".join(
        note.split()
    )


def test_wide_terminal_shows_everything() -> None:
    text, note = _render(200)
    assert "2020-02-26 → 2020-03-17" in text and "20 days (2020-04-15)" in text and note == ""


def test_query_at_80_columns_and_json_keeps_every_column(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    names = [f"column_{i:02d}" for i in range(12)]
    sql = "SELECT " + ", ".join(f"{i} * 1000003.25 AS {n}" for i, n in enumerate(names))
    runner = CliRunner()
    result = runner.invoke(app, ["--lake", str(lake), "query", sql], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    table = [line for line in result.stdout.splitlines() if line.startswith(("┃", "│"))]
    assert table and max(len(line) for line in table) <= 80
    assert "5000016.25" in result.stdout and "column_05" in result.stdout  # whole numbers only
    assert "column_11" not in result.stdout
    result = runner.invoke(app, ["--lake", str(lake), "query", sql, "--json"], env={"COLUMNS": "80"})
    assert list(json.loads(result.stdout)[0]) == names
