"""DuckDB connections with the pinned, packaged extensions (nothing downloaded at run time)."""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path

import duckdb

from tickerlake.config import Settings
from tickerlake.lake.storage import duckdb_s3_statements

__all__ = ["connect", "extension_path"]


def extension_path(name: str) -> Path:
    """The ``.duckdb_extension`` file shipped by the ``duckdb-extension-<name>`` package."""
    module = importlib.import_module(f"duckdb_extension_{name}")
    folder = Path(module.__file__).parent / "extensions" / f"v{duckdb.__version__}"
    path = folder / f"{name}.duckdb_extension"
    if not path.exists():
        raise RuntimeError(
            f"duckdb-extension-{name} does not match duckdb {duckdb.__version__}: {path} missing"
        )
    return path


def connect(
    settings: Settings,
    extensions: tuple[str, ...] = ("avro", "iceberg"),
    memory_limit: str | None = None,
    threads: int | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with extensions loaded from their PyPI packages.

    Args:
        settings: Runtime settings (memory limit, S3 credentials).
        extensions: Extensions to load, in dependency order; ``httpfs`` is added for S3 lakes.
        memory_limit: Override of ``settings.duckdb_memory_limit``.
        threads: DuckDB worker threads (default: all cores).
    """
    state = settings.local_state_dir
    state.mkdir(parents=True, exist_ok=True)
    ext_dir = Path(tempfile.gettempdir()) / f"tickerlake-duckdb-ext-{duckdb.__version__}"
    con = duckdb.connect(
        config={
            "autoinstall_known_extensions": "false",
            "autoload_known_extensions": "false",
            "extension_directory": str(ext_dir),
            "memory_limit": memory_limit or settings.duckdb_memory_limit,
            "temp_directory": str(state / "duckdb_tmp"),
            "preserve_insertion_order": "false",
        }
    )
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    wanted = list(extensions)
    if not settings.is_local and "httpfs" not in wanted:
        wanted.insert(0, "httpfs")
    for name in wanted:
        con.execute(f"INSTALL '{extension_path(name)}'")
        con.execute(f"LOAD {name}")
    for stmt in duckdb_s3_statements(settings):
        con.execute(stmt)
    return con
