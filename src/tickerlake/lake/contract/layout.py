"""Where things live in a lake: zones, catalog files, raw file names. No I/O.

::

    <lake>/
      raw/<dataset>/source=<source>/part-<sha256 prefix>.csv   the raw zone, as received
      raw/<dataset>/topic=<topic>/partition=<p>/*.jsonl        ... and as the stream sink lands it
      warehouse/<namespace>/<table>/{data,metadata}/           Iceberg tables
      catalog.db                                               Iceberg SQL catalog (SQLite)
      catalog/raw_tables.json                                  the crawler's raw-table registry
      catalog/crawl_state.json                                 the files each raw table was crawled from
      catalog/last_crawl.json, catalog/crawls/<stamp>.json     crawl reports
      catalog/access_tokens.json                               hashed access tokens of ``serve``
      _state/                                                  local scratch (not part of the lake's data)

Every module that reads or writes one of these asks :class:`LakeLayout` for its URI.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tickerlake.config import Settings

if TYPE_CHECKING:
    # Only for types: the storage layer may itself use the contract (its SQL quoting).
    from tickerlake.lake.storage import FileEntry, LakeStorage

__all__ = [
    "ACCESS_TOKENS_FILE",
    "CATALOG_DB_FILE",
    "CATALOG_DIR",
    "CRAWL_STATE_FILE",
    "LAST_CRAWL_FILE",
    "RAW_TABLES_FILE",
    "RAW_ZONE",
    "STATE_DIR",
    "WAREHOUSE",
    "LakeLayout",
    "content_hash",
    "duck_path",
    "file_key",
    "hash_from_part_name",
    "part_name",
    "raw_file_hash",
]

RAW_ZONE = "raw"
WAREHOUSE = "warehouse"
CATALOG_DIR = "catalog"
RAW_TABLES_FILE = "raw_tables.json"
CRAWL_STATE_FILE = "crawl_state.json"
LAST_CRAWL_FILE = "last_crawl.json"
CRAWLS_DIR = "crawls"
ACCESS_TOKENS_FILE = "access_tokens.json"
#: The SQLite Iceberg catalog's file: in a local lake's root, else in the local state folder.
CATALOG_DB_FILE = "catalog.db"
#: A local lake's folder of local scratch (pid files, logs); not part of the lake's data.
STATE_DIR = "_state"

# Hex digits of the content hash in a raw file's name: enough to never collide in one lake.
_HASH_CHARS = 20
_PART_NAME = re.compile(rf"^part-([0-9a-f]{{{_HASH_CHARS}}})\.[a-z]+$")


@dataclass(frozen=True)
class LakeLayout:
    """The URIs of a lake's zones and catalog files.

    Args:
        storage: The lake's storage (it knows the lake's root).
    """

    storage: LakeStorage

    @classmethod
    def of(cls, settings: Settings) -> LakeLayout:
        """The layout of the lake in ``settings``."""
        from tickerlake.lake.storage import LakeStorage

        return cls(LakeStorage(settings))

    @property
    def raw_zone(self) -> str:
        """The raw zone's folder."""
        return self.storage.uri(RAW_ZONE)

    def dataset(self, name: str) -> str:
        """A raw dataset's folder."""
        return self.storage.uri(RAW_ZONE, name)

    def raw_file(self, dataset: str, source: str, name: str) -> str:
        """A raw file landed by ``source`` (a Hive-style ``source=`` partition the crawler sees)."""
        return self.storage.uri(RAW_ZONE, dataset, f"source={source}", name)

    def stream_partition(self, dataset: str, topic: str, partition: int) -> str:
        """The folder of the raw files the stream sink writes for one Kafka partition."""
        return self.storage.uri(RAW_ZONE, dataset, f"topic={topic}", f"partition={partition}")

    def dataset_of(self, uri: str) -> str | None:
        """The raw dataset a file under the raw zone belongs to (None directly under ``raw/``)."""
        rel = uri[len(self.raw_zone) :].lstrip("/")
        return rel.split("/", 1)[0] if "/" in rel else None

    @property
    def warehouse(self) -> str:
        """Where the Iceberg tables keep their data and metadata."""
        return self.storage.uri(WAREHOUSE)

    def catalog_file(self, *parts: str) -> str:
        """A file of the lake's ``catalog/`` folder."""
        return self.storage.uri(CATALOG_DIR, *parts)

    @property
    def raw_tables(self) -> str:
        """The crawler's raw-table registry."""
        return self.catalog_file(RAW_TABLES_FILE)

    @property
    def crawl_state(self) -> str:
        """The files each raw table was crawled from, with their :func:`file_key`."""
        return self.catalog_file(CRAWL_STATE_FILE)

    @property
    def last_crawl(self) -> str:
        """The last crawl's report."""
        return self.catalog_file(LAST_CRAWL_FILE)

    def crawl_report(self, stamp: str) -> str:
        """One crawl's report, kept by start time."""
        return self.catalog_file(CRAWLS_DIR, f"{stamp}.json")

    @property
    def access_tokens(self) -> str:
        """The hashed access tokens of ``serve``."""
        return self.catalog_file(ACCESS_TOKENS_FILE)


def content_hash(chunks: Iterable[bytes]) -> str:
    """A raw file's identity: a hash of its bytes (given in chunks, so files need not fit in memory)."""
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()[:_HASH_CHARS]


def part_name(data: bytes, fmt: str = "csv") -> str:
    """The content-addressed name of a raw file: the same bytes always get the same name."""
    return f"part-{content_hash([data])}.{fmt}"


def hash_from_part_name(uri: str) -> str | None:
    """The content hash in a :func:`part_name` (None for a file named otherwise)."""
    m = _PART_NAME.match(posixpath.basename(uri))
    return m.group(1) if m else None


def raw_file_hash(storage: LakeStorage, entry: FileEntry) -> str:
    """A raw file's identity: the hash in its :func:`part_name`, else a hash of its bytes."""
    named = hash_from_part_name(entry.uri)
    if named is not None:
        return named
    with storage.fs.open_input_stream(storage.path(entry.uri)) as f:
        return content_hash(iter(lambda: f.read(1 << 22), b""))


def file_key(entry: FileEntry) -> str:
    """What tells a changed file from an unchanged one without reading it: size and mtime."""
    return f"{entry.size}:{entry.mtime_ns}"


def duck_path(settings: Settings, uri: str) -> str:
    """A lake URI as DuckDB reads it: a plain path for local lakes, the URI on object stores."""
    if settings.is_local and uri.startswith("file://"):
        return uri.removeprefix("file://")
    return uri
