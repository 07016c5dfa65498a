"""One filesystem layer for the lake: local folders and S3-compatible stores by URI scheme.

Everything that touches lake files goes through :class:`LakeStorage`, so the same code
runs on ``file://`` and ``s3://`` lakes. pyiceberg and DuckDB get matching settings from
:func:`iceberg_io_properties` and :func:`duckdb_s3_statements`.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar
from urllib.parse import urlparse

import pyarrow.fs as pafs

from tickerlake.config import Settings
from tickerlake.errors import TransientError, UserError
from tickerlake.lake.contract import sql_literal
from tickerlake.retry import retry

__all__ = [
    "RETRY_WINDOW_S",
    "FileEntry",
    "LakeStorage",
    "duckdb_s3_statements",
    "iceberg_io_properties",
    "is_transient",
    "retry_transient",
]

#: How long an operation on the object store is retried before it is given up.
RETRY_WINDOW_S = 60.0
# How pyarrow's S3 client (the AWS SDK) words errors that a later attempt can cure: the
# store is down, frozen, restarting or throttling. Anything else (no such key, access
# denied, a full local disk) is final and must not be retried.
_TRANSIENT_MARKERS = (
    "NETWORK_CONNECTION",
    "curlCode",
    "Timeout was reached",
    "Couldn't connect",
    "Connection refused",
    "Connection reset",
    "SERVICE_UNAVAILABLE",
    "SLOW_DOWN",
    "INTERNAL_FAILURE",
    "REQUEST_TIMEOUT",
    "THROTTLING",
)
_T = TypeVar("_T")


def is_transient(exc: BaseException) -> bool:
    """Whether an error is worth retrying: a :class:`TransientError`, or the object store
    being briefly unreachable. The one place that reads S3 client errors for this."""
    if isinstance(exc, TransientError):
        return True
    if not isinstance(exc, OSError) or isinstance(exc, (FileNotFoundError, PermissionError)):
        return False
    text = str(exc)
    return any(marker in text for marker in _TRANSIENT_MARKERS)


def retry_transient(
    fn: Callable[[], _T],
    what: str,
    window_s: float = RETRY_WINDOW_S,
    on_retry: Callable[[BaseException], None] | None = None,
) -> _T:
    """Call ``fn``, retrying transient store errors with backoff for ``window_s`` seconds.

    :func:`tickerlake.retry.retry` with the object-store classifier :func:`is_transient`.
    Only safe for idempotent operations (reads, whole-object writes, deletes).

    Raises:
        TransientError: Still failing when the window closed (one line, with the last error).
        Exception: Whatever ``fn`` raised that is not transient, at once.
    """
    return retry(
        fn,
        what=what,
        on=is_transient,
        deadline_s=window_s,
        gave_up=f"the object store did not answer for {window_s:g} s",
        on_retry=(lambda e, _delay: on_retry(e)) if on_retry is not None else None,
    )


# Arrow's S3 clients are not safe to create from several threads at once (a native crash
# seen when a background history write built one while the main thread built another), and
# a client per query would also redo the TLS/credential set-up: so one lock, one client per
# store and credentials, kept for the process.
_S3_LOCK = threading.Lock()
_S3_CLIENTS: dict[tuple[str, str, str, str], pafs.S3FileSystem] = {}


def _s3_filesystem(endpoint: str, region: str, key_id: str, secret: str) -> pafs.S3FileSystem:
    key = (endpoint, region, key_id, secret)
    with _S3_LOCK:
        fs = _S3_CLIENTS.get(key)
        if fs is None:
            parsed = urlparse(endpoint) if endpoint else None
            fs = _S3_CLIENTS[key] = pafs.S3FileSystem(
                access_key=key_id or None,
                secret_key=secret or None,
                region=region,
                endpoint_override=parsed.netloc if parsed else None,
                scheme=parsed.scheme if parsed else "https",
                allow_bucket_creation=True,
                # Uploads in the calling thread: a write that fails (a store gone away) then
                # leaves no upload running on Arrow's IO threads after its stream is gone.
                background_writes=False,
            )
        return fs


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
        """The pyarrow filesystem behind the lake (one per store and credentials per process)."""
        if self.settings.is_local:
            return pafs.LocalFileSystem()
        parsed = urlparse(self.root)
        if parsed.scheme not in ("s3", "s3a"):
            raise UserError(f"unsupported lake scheme {parsed.scheme!r}: use a path, file:// or s3://")
        s = self.settings
        return _s3_filesystem(
            s.s3_endpoint or "",
            s.s3_region,
            s.s3_access_key_id or "",
            s.s3_secret_access_key.get_secret_value(),
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

    def _io(self, what: str, fn: Callable[[], _T], window_s: float = RETRY_WINDOW_S) -> _T:
        """Run one idempotent file operation; on object stores, ride out short outages."""
        if self.settings.is_local:
            return fn()
        return retry_transient(fn, what, window_s)

    def exists(self, uri: str) -> bool:
        """Whether a file or folder exists."""
        return self._io(f"checking {uri}", lambda: self.fs.get_file_info(self.path(uri)).type) != (
            pafs.FileType.NotFound
        )

    def list_files(self, prefix_uri: str) -> list[FileEntry]:
        """All files below a folder, recursively, sorted by URI; hidden files are skipped."""
        return self._io(f"listing {prefix_uri}", lambda: self._list_files(prefix_uri))

    def _list_files(self, prefix_uri: str) -> list[FileEntry]:
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

        def read() -> bytes:
            with self.fs.open_input_stream(self.path(uri)) as f:
                return f.read()

        return self._io(f"reading {uri}", read)

    def write_bytes(self, uri: str, data: bytes, window_s: float = RETRY_WINDOW_S) -> None:
        """Write a whole file atomically (temp file + rename locally; S3 PUT is atomic).

        Args:
            uri: The file.
            data: Its bytes.
            window_s: How long an object store's outage is ridden out.
        """
        path = self.path(uri)
        parent = posixpath.dirname(path)
        if self.settings.is_local:
            self.fs.create_dir(parent, recursive=True)
            tmp = posixpath.join(parent, f".tmp-{uuid.uuid4().hex}")
            try:
                with open(tmp, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                # A full disk must not also keep the half-written temp file (it holds space).
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        else:
            # A PUT replaces the whole object, so a retry after a lost answer is harmless.
            self._io(f"writing {uri}", lambda: self._put(path, data), window_s)

    def _put(self, path: str, data: bytes) -> None:
        self.fs.create_dir(posixpath.dirname(path), recursive=True)
        with self.fs.open_output_stream(path) as f:
            f.write(data)

    def delete(self, uri: str) -> None:
        """Delete a file if it exists."""

        def delete() -> None:
            if self.fs.get_file_info(self.path(uri)).type != pafs.FileType.NotFound:
                self.fs.delete_file(self.path(uri))

        self._io(f"deleting {uri}", delete)

    def ensure_dir(self, uri: str) -> None:
        """Create a folder (no-op on object stores)."""
        self._io(f"creating {uri}", lambda: self.fs.create_dir(self.path(uri), recursive=True))


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
    # Every value is quoted by the contract's one SQL-literal rule: a quote in a secret
    # or a region must not end the string (nor inject SQL).
    parts = ["TYPE s3", f"REGION {sql_literal(settings.s3_region)}"]
    if settings.s3_access_key_id:
        secret = settings.s3_secret_access_key.get_secret_value()
        parts += [f"KEY_ID {sql_literal(settings.s3_access_key_id)}", f"SECRET {sql_literal(secret)}"]
    if settings.s3_endpoint:
        ep = urlparse(settings.s3_endpoint)
        parts += [
            f"ENDPOINT {sql_literal(ep.netloc)}",
            "URL_STYLE 'path'",
            f"USE_SSL {str(ep.scheme == 'https').lower()}",
        ]
    return [f"CREATE OR REPLACE SECRET tickerlake_s3 ({', '.join(parts)})"]
