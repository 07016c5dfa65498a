"""The ``tickerlake`` command: a thin Typer shell over the package's functions.

Each sub-command parses its options, calls one function and renders the result as text
or, with ``--json``, as JSON. The application object lives in :mod:`tickerlake.cli._app`
(sub-commands register on it from there); errors become exit codes in one place,
:func:`tickerlake.cli._common.exit_code_for`.
"""

from __future__ import annotations

import importlib

from tickerlake.cli._app import app
from tickerlake.cli._common import run_main

__all__ = ["app", "main"]

# Sub-command modules register themselves on ``app``; each is optional so a stage can
# be developed alone.
for _name in ("ingest", "lake", "query", "insights", "stream", "services", "web", "tokens", "watch"):
    try:
        importlib.import_module(f"tickerlake.cli.{_name}")
    except ModuleNotFoundError as e:  # pragma: no cover - only while a stage is missing
        if e.name != f"tickerlake.cli.{_name}":
            raise


def main() -> None:
    """Console-script entry point: errors become one line and an exit code (see :func:`run_main`)."""
    run_main(app)
