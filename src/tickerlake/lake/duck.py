"""DuckDB connections with the pinned, packaged extensions (nothing downloaded at run time)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import duckdb

from tickerlake.config import Settings
from tickerlake.errors import TickerlakeError
from tickerlake.lake.contract import sql_literal
from tickerlake.lake.storage import duckdb_s3_statements

__all__ = ["connect", "extension_path"]


def extension_path(name: str) -> Path:
    """Path of a DuckDB extension file inside its ``duckdb-extension-<name>`` package.

    Raises:
        TickerlakeError: The package (for this duckdb version) is not installed.
    """
    version = duckdb.__version__
    hint = f"install the matching package: pip install duckdb-extension-{name}=={version}"
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or not spec.submodule_search_locations:
        raise TickerlakeError(f"DuckDB extension {name} is not installed; {hint}")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "extensions" / f"v{version}" / f"{name}.duckdb_extension"
        if path.is_file():
            return path
    raise TickerlakeError(f"DuckDB extension {name} for duckdb {version} not found; {hint}")


def connect(
    settings: Settings,
    extensions: tuple[str, ...] = ("avro", "iceberg"),
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with extensions loaded from their PyPI packages.

    Args:
        settings: Runtime settings (memory limit, S3 credentials).
        extensions: Extensions to load, in dependency order; ``httpfs`` is added for S3 lakes.
    """
    state = settings.local_state_dir
    state.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(
        config={
            "autoinstall_known_extensions": "false",
            "autoload_known_extensions": "false",
            "memory_limit": settings.duckdb_memory_limit,
            "temp_directory": str(state / "duckdb_tmp"),
            "preserve_insertion_order": "false",
            # DuckDB's allocator returns freed memory to the system in the background
            # (otherwise it keeps a large scan's or sort's memory resident for reuse:
            # hundreds of megabytes in `serve` after a universe-wide read).
            "allocator_background_threads": "true",
        }
    )
    wanted = list(extensions)
    if not settings.is_local and "httpfs" not in wanted:
        wanted.insert(0, "httpfs")
    for name in wanted:
        # Loading by path uses the packaged file in place: no copy, no download.
        con.execute(f"LOAD {sql_literal(str(extension_path(name)))}")
    for stmt in duckdb_s3_statements(settings):
        con.execute(stmt)
    return con
