"""``tickerlake query --save/--named/--history/--delete`` on an empty lake folder (no tables
needed: the saved query computes its answer from its parameter)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tickerlake.cli import app


def _run(lake: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--lake", str(lake), "query", *args])
    return result.exit_code, result.output


def test_save_run_history_delete(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    code, out = _run(
        lake, "SELECT $n + 1 AS x", "--save", "plus_one", "--declare", "n:int:a number", "--json"
    )
    assert code == 0, out
    assert json.loads(out)["params"] == [{"name": "n", "type": "int", "optional": False, "doc": "a number"}]
    code, out = _run(lake, "--named", "plus_one", "--param", "n=41", "--json")
    assert (code, json.loads(out)) == (0, [{"x": 42}])
    code, out = _run(lake, "--named", "plus_one", "--param", "n=many")
    assert code == 2 and "'many' is not an integer" in out
    code, out = _run(lake, "--named", "list", "--json")
    kinds = {q["name"]: q["kind"] for q in json.loads(out)}
    assert kinds["plus_one"] == "saved" and kinds["close_by_ticker"] == "builtin"

    # A write is refused when saving (exit 4), a taken name without --replace is an error (2).
    assert _run(lake, "DELETE FROM t", "--save", "wipe")[0] == 4
    assert _run(lake, "SELECT 1", "--save", "plus_one")[0] == 2
    assert _run(lake, "SELECT $n + 2 AS x", "--save", "plus_one", "--replace", "--declare", "n:int")[0] == 0
    assert json.loads(_run(lake, "--named", "plus_one", "-p", "n=1", "--json")[1]) == [{"x": 3}]

    code, out = _run(lake, "--history", "--json")
    runs = json.loads(out)
    # Newest first: the two good runs and the failed one between them.
    assert [(r["named"], r["status"], r["row_count"]) for r in runs] == [
        ("plus_one", "ok", 1),
        ("plus_one", "error", None),
        ("plus_one", "ok", 1),
    ]
    assert "not an integer" in runs[1]["error"]
    code, out = _run(lake, "--history", "--status", "error", "--json")
    assert len(json.loads(out)) == 1

    assert _run(lake, "--delete", "plus_one")[0] == 0
    code, out = _run(lake, "--named", "plus_one")
    assert code == 3 and "unknown named query 'plus_one'" in out
    assert _run(lake, "--delete", "plus_one")[0] == 3
