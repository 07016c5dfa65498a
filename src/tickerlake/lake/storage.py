"""One filesystem layer for the lake: local folders and S3-compatible stores by URI scheme.

Everything that touches lake files goes through :class:`LakeStorage`, so the same code
runs on ``file://`` and ``s3://`` lakes. pyiceberg and DuckDB get matching settings from
:func:`iceberg_io_properties` and :func:`duckdb_s3_statements`.
"""

from __future__ import annotations

import os
import posixpath
import uuid
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import urlparse

import pyarrow.fs as pafs

from tickerlake.config import Settings

__all__ = [
    "FileEntry",
    "LakeStorage",
    "duckdb_s3_statements",
    "iceberg_io_properties",
]


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A file in the lake.

    Attributes:
        uri: Full URI (``file:///…`` or ``s3://…``).
        size: Size in bytes.
        mtime_ns: Modification time in nanoseconds since the epoch (0 if unknown).
    """

    uri: str
    size: int
    mtime_ns: int


class LakeStorage:
    """File access to the lake root, whatever the scheme.

    Args:
        settings: The runtime settings; ``settings.lake_uri`` is the root.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.lake_uri

    @cached_property
    def fs(self) -> pafs.FileSystem:
        """The pyarrow filesystem behind the lake."""
        if self.settings.is_local:
            return pafs.LocalFileSystem()
        parsed = urlparse(self.root)
        if parsed.scheme not in ("s3", "s3a"):
            raise ValueError(f"unsupported lake scheme {parsed.scheme!r}: use a path, file:// or s3://")
        s = self.settings
        endpoint = urlparse(s.s3_endpoint) if s.s3_endpoint else None
        return pafs.S3FileSystem(
            access_key=s.s3_access_key_id or None,
            secret_key=s.s3_secret_access_key.get_secret_value() or None,
            region=s.s3_region,
            endpoint_override=endpoint.netloc if endpoint else None,
            scheme=endpoint.scheme if endpoint else "https",
            allow_bucket_creation=True,
        )

    def uri(self, *parts: str) -> str:
        """Join path parts onto the lake root."""
        return posixpath.join(self.root, *parts)

    def path(self, uri: str) -> str:
        """The filesystem path (no scheme) of a lake URI, as pyarrow wants it."""
        parsed = urlparse(uri)
        if parsed.scheme in ("", "file"):
            return parsed.path if parsed.scheme else os.path.abspath(uri)
        return parsed.netloc + parsed.path

    def to_uri(self, path: str) -> str:
        """The URI of a pyarrow filesystem path."""
        scheme = "file://" if self.settings.is_local else urlparse(self.root).scheme + "://"
        return scheme + path

    def exists(self, uri: str) -> bool:
        """Whether a file or folder exists."""
        return self.fs.get_file_info(self.path(uri)).type != pafs.FileType.NotFound

    def list_files(self, prefix_uri: str) -> list[FileEntry]:
        """All files below a folder, recursively, sorted by URI; hidden files are skipped."""
        base = self.path(prefix_uri)
        if self.fs.get_file_info(base).type == pafs.FileType.NotFound:
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(base, recursive=True))
        out = []
        for info in infos:
            if info.type != pafs.FileType.File:
                continue
            rel = info.path[len(base) :].lstrip("/")
            if any(part.startswith((".", "_")) for part in rel.split("/")):
                continue
            mtime = info.mtime_ns or 0
            out.append(FileEntry(self.to_uri(info.path), info.size or 0, mtime))
        return sorted(out, key=lambda e: e.uri)

    def read_bytes(self, uri: str) -> bytes:
        """Read a whole file."""
        with self.fs.open_input_stream(self.path(uri)) as f:
            return f.read()

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Write a whole file atomically (temp file + rename locally; S3 PUT is atomic)."""
        path = self.path(uri)
        parent = posixpath.dirname(path)
        self.fs.create_dir(parent, recursive=True)
        if self.settings.is_local:
            tmp = posixpath.join(parent, f".tmp-{uuid.uuid4().hex}")
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        else:
            with self.fs.open_output_stream(path) as f:
                f.write(data)

    def delete(self, uri: str) -> None:
        """Delete a file if it exists."""
        if self.exists(uri):
            self.fs.delete_file(self.path(uri))

    def ensure_dir(self, uri: str) -> None:
        """Create a folder (no-op on object stores)."""
        self.fs.create_dir(self.path(uri), recursive=True)


def iceberg_io_properties(settings: Settings) -> dict[str, str]:
    """pyiceberg FileIO properties matching the lake's object-store settings."""
    if settings.is_local:
        return {}
    props = {"s3.region": settings.s3_region}
    if settings.s3_endpoint:
        props["s3.endpoint"] = settings.s3_endpoint
        props["s3.force-virtual-addressing"] = "false"
    if settings.s3_access_key_id:
        props["s3.access-key-id"] = settings.s3_access_key_id
        props["s3.secret-access-key"] = settings.s3_secret_access_key.get_secret_value()
    return props


def duckdb_s3_statements(settings: Settings) -> list[str]:
    """DuckDB statements that let httpfs read the lake's S3 store (empty for local lakes)."""
    if settings.is_local:
        return []
    parts = ["TYPE s3", f"REGION '{settings.s3_region}'"]
    if settings.s3_access_key_id:
        secret = settings.s3_secret_access_key.get_secret_value().replace("'", "''")
        parts += [f"KEY_ID '{settings.s3_access_key_id}'", f"SECRET '{secret}'"]
    if settings.s3_endpoint:
        ep = urlparse(settings.s3_endpoint)
        parts += [
            f"ENDPOINT '{ep.netloc}'",
            "URL_STYLE 'path'",
            f"USE_SSL {str(ep.scheme == 'https').lower()}",
        ]
    return [f"CREATE OR REPLACE SECRET tickerlake_s3 ({', '.join(parts)})"]
