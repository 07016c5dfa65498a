"""Apache Spark (pyspark, local mode) on the lake's Iceberg tables: what a Glue job would see.

Spark opens the same catalog database as pyiceberg through Iceberg's JDBC catalog
(``type=jdbc``, ``jdbc.schema-version=V1``, the tables pyiceberg's ``SqlCatalog`` keeps),
under the same catalog name (pyiceberg's ``catalog_name`` column: with another name
Spark sees no namespaces), made Spark's default catalog so ``market.daily_bars`` resolves.
Iceberg's Spark runtime and the JDBC drivers are the ``spark`` profile of
``services/pom.xml``; pyspark comes with the ``spark`` extra.

On an ``s3://`` lake the catalog reads and writes files through Iceberg's own ``S3FileIO``
(``iceberg-aws-bundle``) with the lake's endpoint and credentials, so no Hadoop S3A jars are
needed: the way Glue and EMR jobs open Iceberg tables on S3.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tickerlake.config import Settings
from tickerlake.errors import UserError
from tickerlake.services.jars import ensure_jars, java_executable, lib_dir

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["jdbc_catalog_properties", "spark_session"]


def jdbc_catalog_properties(settings: Settings) -> dict[str, str]:
    """Iceberg's JDBC-catalog properties for the lake's SQL catalog (without the ``spark.sql.catalog.<name>.`` prefix).

    Raises:
        UserError: The catalog is not a SQL database (REST and Glue have Spark catalogs of
            their own).
    """
    from tickerlake.lake.catalog import catalog_kind, sqlalchemy_uri
    from tickerlake.lake.contract import LakeLayout

    uri = settings.resolved_catalog_uri
    kind = catalog_kind(uri)
    props = {
        "type": "jdbc",
        "jdbc.schema-version": "V1",
        "warehouse": LakeLayout.of(settings).warehouse,
        **_s3_file_io(settings),
    }
    if kind == "sqlite":
        # sqlite:////abs/path (or sqlite:///relative) → jdbc:sqlite:/abs/path
        props["uri"] = "jdbc:sqlite:" + str(Path(uri.removeprefix("sqlite:///")).resolve())
        return props
    if kind == "postgresql":
        parts = urllib.parse.urlsplit(sqlalchemy_uri(uri))
        props["uri"] = f"jdbc:postgresql://{parts.hostname}:{parts.port or 5432}{parts.path}"
        if parts.username:
            props["jdbc.user"] = urllib.parse.unquote(parts.username)
        if parts.password:
            props["jdbc.password"] = urllib.parse.unquote(parts.password)
        return props
    raise UserError(f"Spark is set up here for SQLite and PostgreSQL catalogs, not {kind}")


def _s3_file_io(settings: Settings) -> dict[str, str]:
    """Iceberg S3FileIO properties for an ``s3://`` lake (none for a local one)."""
    if settings.is_local:
        return {}
    props = {"io-impl": "org.apache.iceberg.aws.s3.S3FileIO", "client.region": settings.s3_region}
    if settings.s3_endpoint:
        # S3-compatible stores (S3Proxy, MinIO) answer on one host: path-style addressing.
        props.update({"s3.endpoint": settings.s3_endpoint, "s3.path-style-access": "true"})
    if settings.s3_access_key_id:
        props["s3.access-key-id"] = settings.s3_access_key_id
        props["s3.secret-access-key"] = settings.s3_secret_access_key.get_secret_value()
    return props


def spark_session(settings: Settings, app_name: str = "tickerlake") -> SparkSession:
    """A local Spark session whose default catalog is the lake's Iceberg catalog.

    Raises:
        UserError: pyspark, Java 17 or the jars are missing, or the catalog/lake is not supported.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise UserError("Spark needs pyspark: pip install 'tickerlake[spark]'") from None
    import os

    java = java_executable()
    os.environ.setdefault("JAVA_HOME", os.path.dirname(os.path.dirname(os.path.realpath(java))))
    ensure_jars(["spark"])
    jars = ",".join(str(p) for p in sorted(lib_dir("spark").glob("*.jar")))
    name = settings.catalog_name
    builder: Any = (
        SparkSession.builder.appName(app_name)
        .master("local[2]")
        .config("spark.jars", jars)
        .config("spark.sql.extensions", "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions")
        .config(f"spark.sql.catalog.{name}", "org.apache.iceberg.spark.SparkCatalog")
        .config("spark.sql.defaultCatalog", name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.shuffle.partitions", "4")
    )
    for key, value in jdbc_catalog_properties(settings).items():
        builder = builder.config(f"spark.sql.catalog.{name}.{key}", value)
    session: SparkSession = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session
