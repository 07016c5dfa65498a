"""The one settings object: lake location, catalog, object store, Kafka and web server.

Values come from (highest first) explicit keyword arguments, ``TICKERLAKE_*``
environment variables and defaults. Secrets are ``SecretStr`` so they never reach logs
or ``repr``.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_TICKERS", "LAKE_SCHEMES", "Settings"]

#: The FANGMANT tickers the project is about, in their customary order.
DEFAULT_TICKERS: tuple[str, ...] = ("META", "AAPL", "NFLX", "GOOGL", "MSFT", "AMZN", "NVDA", "TSLA")
#: URI schemes of lakes beyond the local filesystem (paths and ``file://``) that the storage layer speaks.
LAKE_SCHEMES: tuple[str, ...] = ("s3", "s3a")


class Settings(BaseSettings):
    """Frozen runtime configuration.

    Attributes:
        lake: Warehouse root (a path, ``file://`` or ``s3://`` URI) holding the raw zone,
            the Iceberg warehouse and, for local lakes, the catalog database.
        catalog_uri: SQLAlchemy URI of the Iceberg SQL catalog; defaults to SQLite inside
            the lake (for object-store lakes, one SQLite file per lake URI under
            ``state_dir/catalogs/``, so two lakes never share tables by accident).
        catalog_name: Name of the Iceberg catalog.
        state_dir: Local folder for pid files, logs and catalog of object-store lakes.
        s3_endpoint: Endpoint URL for S3-compatible stores (empty for AWS).
        s3_region: Region for S3.
        s3_access_key_id: Access key id for S3.
        s3_secret_access_key: Secret key for S3.
        bootstrap_servers: Kafka bootstrap servers; empty means the embedded dev broker.
        kafka_security_protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
        kafka_sasl_mechanism: SASL mechanism (PLAIN, SCRAM-SHA-256, ...).
        kafka_sasl_username: SASL user name.
        kafka_sasl_password: SASL password.
        kafka_ssl_ca_location: CA bundle for TLS.
        host: Web server bind address.
        port: Web server port.
        query_timeout_s: Wall-clock limit for one SQL query.
        query_row_limit: Maximum rows returned by the query API.
        duckdb_memory_limit: DuckDB memory limit for ETL and queries.
        derived_layer: Whether ``etl`` keeps the insight-ready tables (``market.daily_by_date``...).
        recession_windows: User-defined analysis windows for ``insights recessions``:
            ``name=YYYY-MM-DD..YYYY-MM-DD[:label]; ...``.
        sql_rate_per_s: SQL queries per second each web client (token, or address when
            access control is off) may sustain; ``0`` disables the limit.
        sql_burst: SQL queries a web client may send at once before the rate applies.
        max_body_bytes: Largest request body the web server accepts (larger: 413).
    """

    model_config = SettingsConfigDict(env_prefix="TICKERLAKE_", frozen=True, extra="ignore")

    lake: str = "./lake"
    catalog_uri: str = ""
    catalog_name: str = "tickerlake"
    state_dir: str = ""
    s3_endpoint: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: SecretStr = SecretStr("")
    bootstrap_servers: str = ""
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = ""
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    kafka_ssl_ca_location: str = ""
    host: str = "127.0.0.1"
    port: int = 8050
    query_timeout_s: float = 30.0
    query_row_limit: int = 10_000
    duckdb_memory_limit: str = "3GB"
    derived_layer: bool = True
    recession_windows: str = ""
    sql_rate_per_s: float = 5.0
    sql_burst: int = 20
    max_body_bytes: int = 1_048_576

    @field_validator("lake")
    @classmethod
    def _lake_scheme(cls, value: str) -> str:
        """Refuse a lake no storage layer can open (``ftp://``, ``gs://``, ``s3://`` without a bucket)
        here, as one clear line, rather than deep inside the first file operation."""
        if "://" not in value or value.startswith("file://"):
            return value
        scheme, _, rest = value.partition("://")
        if scheme not in LAKE_SCHEMES:
            raise ValueError(f"unsupported lake scheme {scheme!r} in {value!r}: use a path, file:// or s3://")
        if not rest.split("/", 1)[0]:
            raise ValueError(f"{value!r} names no bucket: use {scheme}://BUCKET[/PREFIX]")
        return value

    @cached_property
    def is_local(self) -> bool:
        """Whether the lake lives on the local filesystem."""
        return "://" not in self.lake or self.lake.startswith("file://")

    @cached_property
    def lake_uri(self) -> str:
        """The lake root as a URI without trailing slash (``file:///abs`` or ``s3://b/p``)."""
        if self.is_local:
            path = self.lake.removeprefix("file://")
            return "file://" + str(Path(path).expanduser().resolve())
        return self.lake.rstrip("/")

    @cached_property
    def local_state_dir(self) -> Path:
        """Folder for local state: pids, logs, catalog DB of remote lakes."""
        if self.state_dir:
            return Path(self.state_dir).expanduser().resolve()
        if self.is_local:
            # Imported here, not at the top: the contract's layout imports this module, and
            # importing the settings must stay cheap (no pyarrow/pyiceberg).
            from tickerlake.lake.contract.layout import STATE_DIR

            return Path(self.lake_uri.removeprefix("file://")) / STATE_DIR
        return Path.home() / ".tickerlake"

    @cached_property
    def resolved_catalog_uri(self) -> str:
        """SQLAlchemy URI of the catalog database."""
        if self.catalog_uri:
            return self.catalog_uri
        from tickerlake.lake.contract.layout import CATALOG_DB_FILE  # lazily, as above

        if self.is_local:
            return f"sqlite:///{self.lake_uri.removeprefix('file://')}/{CATALOG_DB_FILE}"
        # One file per lake: a single file for every object-store lake would hand one lake's
        # tables (same names, other warehouse) to the next.
        import hashlib

        lake_id = hashlib.sha256(self.lake_uri.encode()).hexdigest()[:16]
        return f"sqlite:///{self.local_state_dir}/catalogs/{lake_id}/{CATALOG_DB_FILE}"
