"""Hostile HTTP and load against a real ``tickerlake serve``.

Three scenarios, each on its own small simulated lake and its own server process bound to
127.0.0.1 on a free port:

* ``http-hostile``: every write/DDL form, comment and case tricks, file-reading functions
  aimed outside the lake, several statements, runaway queries, oversized and malformed
  bodies, wrong content types and garbage parameters on every API route. Each must get a
  4xx with a JSON message, the server must stay responsive during runaway queries and
  answer ``/api/health`` at the end, and nothing forbidden may have happened (no file
  written outside the lake, no secret read, the table unchanged).
* ``http-load``: locust, headless, on the bars, insights and SQL endpoints; 0 failed
  requests is the bar; p50/p99 and requests/s are reported.
* ``http-load-during-etl``: the same load while ``ingest sim`` + ``etl`` commit new data;
  a one-statement count+checksum of ``market.daily_bars`` must always be the old or the new
  snapshot's value (anything else is a mix), and answers must switch to the new one.
"""

from __future__ import annotations

import csv
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reliability.core import Context, Outcome, scenario
from tickerlake.query.engine import MAX_RESULT_BYTES

__all__ = ["HostileCase", "hostile_cases", "locust_figures"]

_LOCUSTFILE = Path(__file__).resolve().parent.parent / "load" / "locustfile.py"
# The server's limits during the hostile scenario: short enough that runaway queries end
# quickly, and a row limit small enough that "bounded" answers are cheap to check.
_TIMEOUT_S = 3.0
_ROW_LIMIT = 1000
# One statement: the table's row count and an order-independent checksum of its content,
# so that an answer computed half on one snapshot and half on another is detectable.
CHECKSUM_SQL = (
    "SELECT count(*) AS n, "
    "sum(hash(ticker, date, close, volume) % 1000000007) AS checksum "
    "FROM market.daily_bars"
)
# The SQL endpoint's per-client rate limit: 0 turns it off (a generous burst in case a
# server version reads 0 differently).
_NO_RATE_LIMIT = {"TICKERLAKE_SQL_RATE_PER_S": "0", "TICKERLAKE_SQL_BURST": "1000000"}
# Small lakes: a few tickers over a few years (seconds to build, still every table).
_LAKE_TICKERS = "AAPL,MSFT,NVDA"
_LAKE_START, _LAKE_END = "2006-01-01", "2010-12-31"


# --------------------------------------------------------------------------- server


@dataclass
class Server:
    """A running ``tickerlake serve``.

    Attributes:
        proc: The server process.
        host: Loopback address.
        port: Port it listens on.
    """

    proc: subprocess.Popen[bytes]
    host: str
    port: int

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"


def _free_port() -> int:
    """A free loopback port (the server binds it right after; a race is reported clearly)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _request(
    host: str,
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP request (http.client sends paths and headers exactly as given)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def _healthy(host: str, port: int, timeout: float = 5.0) -> bool:
    try:
        status, _, _ = _request(host, port, "GET", "/api/health", timeout=timeout)
    except OSError:
        return False
    # 401: a server with access control answering a request without a token.
    return status in (200, 401)


@contextmanager
def serve(ctx: Context, env: dict[str, str], log: str = "serve", wait_s: float = 60.0) -> Iterator[Server]:
    """Start ``tickerlake serve`` on a free loopback port; stop it (by pid) on exit."""
    port = _free_port()
    proc = ctx.popen(["serve", "--host", "127.0.0.1", "--port", str(port), "--json"], env, log)
    server = Server(proc, "127.0.0.1", port)
    try:
        deadline = time.monotonic() + wait_s
        while not _healthy(server.host, port, timeout=2.0):
            if proc.poll() is not None:
                tail = (ctx.root / f"{log}.log").read_text(errors="replace")[-800:]
                raise RuntimeError(f"tickerlake serve exited with {proc.returncode}: {tail}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"tickerlake serve did not answer /api/health within {wait_s:g} s")
            time.sleep(0.2)
        yield server
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[Any], grace_s: float = 10.0) -> None:
    """SIGINT (the server's Ctrl+C), then SIGKILL if it does not stop in time."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(grace_s)


def _build_lake(ctx: Context, lake: Path, env: dict[str, str]) -> None:
    """A small simulated lake: ``ingest sim --seed 1`` of a few tickers, then ``etl``."""
    for args in (
        [
            "ingest",
            "sim",
            "--seed",
            "1",
            "--tickers",
            _LAKE_TICKERS,
            "--start",
            _LAKE_START,
            "--end",
            _LAKE_END,
        ],
        ["etl"],
    ):
        proc = ctx.run([*args, "--json"], env, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"tickerlake {' '.join(args)} failed: {proc.stderr.strip()[-800:]}")


def _checksum(server: Server) -> tuple[int, int]:
    """``CHECKSUM_SQL`` through the API (the same statement the load runs)."""
    status, _, data = _request(
        server.host,
        server.port,
        "POST",
        "/api/query",
        json.dumps({"sql": CHECKSUM_SQL}).encode(),
        {"Content-Type": "application/json"},
    )
    if status != 200:
        raise RuntimeError(f"checksum query answered {status}: {data[:300]!r}")
    n, checksum = json.loads(data)["rows"][0]
    return int(n), int(checksum)


# --------------------------------------------------------------------------- hostile cases


@dataclass(frozen=True)
class HostileCase:
    """One hostile request and what a correct answer is.

    Attributes:
        label: What it tries, for the report.
        method: HTTP method.
        path: Path with query string, sent as is.
        body: Request body.
        headers: Request headers.
        bounded: A runaway query: a 4xx, or a 200 within the row limit, are both correct.
    """

    label: str
    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    bounded: bool = False


def _sql(label: str, sql: str, path: str = "/api/query", **extra: Any) -> HostileCase:
    body = json.dumps({"sql": sql, **extra}).encode()
    return HostileCase(label, "POST", path, body, {"Content-Type": "application/json"})


def _forbidden_sql(lake: str, outside: str, secret: str) -> list[tuple[str, str]]:
    """(label, SQL) of statements that must be refused.

    Args:
        lake: The lake folder (for ``..`` escapes and sibling folders).
        outside: A scratch folder outside the lake (where nothing may be written).
        secret: A file outside the lake holding a marker (which must never be read).
    """
    t = "market.daily_bars"
    return [
        # writes and DDL
        ("insert", f"INSERT INTO {t} SELECT * FROM {t} LIMIT 1"),
        ("insert or replace", f"INSERT OR REPLACE INTO {t} SELECT * FROM {t} LIMIT 1"),
        ("update", f"UPDATE {t} SET close = 0"),
        ("delete", f"DELETE FROM {t}"),
        ("truncate", f"TRUNCATE {t}"),
        ("merge", f"MERGE INTO {t} AS d USING {t} AS s ON d.ticker = s.ticker WHEN MATCHED THEN DELETE"),
        ("create table", "CREATE TABLE x AS SELECT 1"),
        ("create temp table", "CREATE TEMP TABLE x (a INT)"),
        ("replace a lake view", f"CREATE OR REPLACE VIEW {t} AS SELECT 1 AS close"),
        ("create schema", "CREATE SCHEMA evil"),
        ("create macro", "CREATE MACRO m(a) AS a + 1"),
        ("create function", "CREATE FUNCTION f(a) AS a"),
        ("create sequence", "CREATE SEQUENCE s"),
        ("create type", "CREATE TYPE mood AS ENUM ('a', 'b')"),
        ("create index", f"CREATE INDEX i ON {t} (ticker)"),
        ("create secret", "CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')"),
        ("create persistent secret", "CREATE PERSISTENT SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')"),
        ("drop view", f"DROP VIEW {t}"),
        ("drop table", f"DROP TABLE {t}"),
        ("drop schema cascade", "DROP SCHEMA market CASCADE"),
        ("drop secret", "DROP SECRET s"),
        ("alter view", f"ALTER VIEW {t} RENAME TO gone"),
        ("alter table", f"ALTER TABLE {t} ADD COLUMN x INT"),
        ("comment on", f"COMMENT ON VIEW {t} IS 'x'"),
        ("copy to outside", f"COPY (SELECT * FROM {t}) TO '{outside}/copy.csv'"),
        ("copy to inside the lake", f"COPY (SELECT 1) TO '{lake}/raw/evil.csv'"),
        ("copy from", f"COPY {t} FROM '{secret}'"),
        ("copy database", "COPY FROM DATABASE memory TO memory"),
        ("attach file", f"ATTACH '{outside}/attached.duckdb' AS a"),
        ("attach memory", "ATTACH ':memory:' AS a"),
        ("attach read-only", f"ATTACH '{outside}/ro.duckdb' AS a (READ_ONLY)"),
        ("detach", "DETACH memory"),
        ("use", "USE system"),
        ("install", "INSTALL httpfs"),
        ("force install", "FORCE INSTALL httpfs"),
        ("install from url", "INSTALL httpfs FROM 'http://127.0.0.1:9/'"),
        ("load", "LOAD httpfs"),
        ("load a file", f"LOAD '{outside}/evil.duckdb_extension'"),
        ("update extensions", "UPDATE EXTENSIONS"),
        ("pragma", "PRAGMA enable_profiling"),
        ("set external access", "SET enable_external_access = true"),
        ("set allowed dirs", "SET allowed_directories = ['/']"),
        ("set lock", "SET lock_configuration = false"),
        ("set global", "SET GLOBAL threads = 1"),
        ("reset", "RESET memory_limit"),
        ("set variable", "SET VARIABLE x = 1"),
        ("call", "CALL pragma_version()"),
        ("call checkpoint", "CALL checkpoint()"),
        ("checkpoint", "CHECKPOINT"),
        ("force checkpoint", "FORCE CHECKPOINT"),
        ("export database", f"EXPORT DATABASE '{outside}/export'"),
        ("import database", f"IMPORT DATABASE '{outside}/export'"),
        ("begin", "BEGIN TRANSACTION"),
        ("commit", "COMMIT"),
        ("vacuum", "VACUUM"),
        ("analyze", "ANALYZE"),
        ("prepare", "PREPARE p AS SELECT 1"),
        ("execute", "EXECUTE p"),
        ("deallocate", "DEALLOCATE p"),
        ("pivot without IN (creates a type)", f"PIVOT {t} ON ticker USING sum(volume)"),
        ("explain of a write", f"EXPLAIN DELETE FROM {t}"),
        ("explain analyze of a write", f"EXPLAIN ANALYZE DROP TABLE {t}"),
        # denied functions
        ("query() runs hidden SQL", "SELECT * FROM query('DROP TABLE market.daily_bars')"),
        ("query_table()", "SELECT * FROM query_table('market.daily_bars')"),
        ("nextval", "SELECT nextval('s')"),
        ("getenv", "SELECT getenv('HOME')"),
        ("secrets", "SELECT * FROM duckdb_secrets()"),
        ("which_secret", "SELECT * FROM which_secret('s3://x/y', 's3')"),
        ("json_execute_serialized_sql", "SELECT * FROM json_execute_serialized_sql('{}')"),
        ("enable_logging", "SELECT * FROM enable_logging()"),
        # case, comment and whitespace tricks
        ("mixed case", f"dRoP tAbLe {t}"),
        ("leading comment", f"/* harmless */ DELETE FROM {t}"),
        ("line comment", f"-- SELECT\nDELETE FROM {t}"),
        ("comment inside keyword gap", f"DROP/**/TABLE/**/{t}"),
        ("tabs and newlines", f"\t\n  UPDATE\n\t{t}\nSET close=0"),
        ("unicode whitespace", f"\u00a0DROP TABLE {t}"),
        ("nested comment", f"/* /* */ */ DELETE FROM {t}"),
        ("semicolon in a string", f"SELECT ';'; DELETE FROM {t}"),
        # several statements
        ("select then drop", f"SELECT 1; DROP TABLE {t}"),
        ("select then select", "SELECT 1; SELECT 2"),
        ("comment hides a second statement", f"SELECT 1 -- x\n; DELETE FROM {t}"),
        ("empty then write", f";;DELETE FROM {t}"),
        # reading files outside the lake
        ("read_csv /etc/passwd", "SELECT * FROM read_csv('/etc/passwd')"),
        ("read_csv_auto", "SELECT * FROM read_csv_auto('/etc/passwd')"),
        ("read_text", "SELECT * FROM read_text('/etc/passwd')"),
        ("read_text environ", "SELECT * FROM read_text('/proc/self/environ')"),
        ("read_blob", "SELECT * FROM read_blob('/etc/passwd')"),
        ("read_json", f"SELECT * FROM read_json('{secret}')"),
        ("read_text secret", f"SELECT * FROM read_text('{secret}')"),
        ("read_parquet outside", f"SELECT * FROM read_parquet('{outside}/x.parquet')"),
        ("parquet_metadata", f"SELECT * FROM parquet_metadata('{outside}/x.parquet')"),
        ("sniff_csv", "SELECT * FROM sniff_csv('/etc/passwd')"),
        ("glob", "SELECT * FROM glob('/etc/*')"),
        ("glob root", "SELECT * FROM glob('/*')"),
        ("replacement scan", "SELECT * FROM '/etc/passwd'"),
        ("from-first replacement scan", "FROM '/etc/passwd'"),
        ("replacement scan csv", f"FROM '{secret}'"),
        ("dot-dot escape", f"SELECT * FROM read_text('{lake}/../secret.txt')"),
        ("dot-dot deep escape", f"SELECT * FROM read_text('{lake}/raw/../../../../../../etc/passwd')"),
        ("sibling folder", f"SELECT * FROM read_text('{lake}_old/x.csv')"),
        ("file uri", "SELECT * FROM read_text('file:///etc/passwd')"),
        ("http url", "SELECT * FROM read_csv('http://127.0.0.1:9/x.csv')"),
        ("https url", "SELECT * FROM read_parquet('https://127.0.0.1:9/x.parquet')"),
        ("s3 url", "SELECT * FROM read_parquet('s3://bucket/x.parquet')"),
        ("iceberg_scan outside", f"SELECT * FROM iceberg_scan('{outside}')"),
        ("summarize outside", "SUMMARIZE SELECT * FROM read_csv('/etc/passwd')"),
        ("describe outside", "DESCRIBE SELECT * FROM read_text('/etc/passwd')"),
        ("explain analyze outside", "EXPLAIN ANALYZE SELECT * FROM read_text('/etc/passwd')"),
        ("read in a subquery", "SELECT (SELECT content FROM read_text('/etc/passwd'))"),
        ("read in a CTE", "WITH x AS (SELECT * FROM read_blob('/etc/passwd')) SELECT * FROM x"),
        ("extension directory", "SELECT * FROM duckdb_extensions()"),
    ]


def hostile_cases(lake: str, outside: str, secret: str) -> list[HostileCase]:
    """Every hostile request of ``http-hostile`` (see :func:`_forbidden_sql` for the paths)."""
    cases = [_sql(label, sql) for label, sql in _forbidden_sql(lake, outside, secret)]
    # The CSV endpoint shares the guard: a few of the same through it.
    cases += [
        _sql(f"csv: {label}", sql, "/api/query/csv")
        for label, sql in _forbidden_sql(lake, outside, secret)
        if label in {"delete", "copy to outside", "read_text secret", "select then drop", "attach memory"}
    ]
    # File paths arriving as parameters: the engine's wall, not the guard, must stop them.
    cases += [
        _sql("path as a $parameter", "SELECT * FROM read_text($p)", params={"p": "/etc/passwd"}),
        _sql("secret as a $parameter", "SELECT * FROM read_csv($p)", params={"p": secret}),
        _sql("glob as a $parameter", "SELECT * FROM glob($p)", params={"p": "/etc/*"}),
    ]
    # Runaway queries: stopped by the time limit, or cut at the row limit.
    runaway = [
        ("huge cross join", "SELECT count(*) FROM range(100000000) a, range(100000000) b"),
        (
            "recursive CTE without end",
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT max(n) FROM r",
        ),
        (
            "self cross join of the table",
            "SELECT count(*) FROM market.daily_bars a, market.daily_bars b, market.daily_bars c",
        ),
        ("a billion rows", "SELECT * FROM range(1000000000)"),
        ("sort of a hundred million", "SELECT * FROM range(100000000) ORDER BY random()"),
        ("huge single value", "SELECT repeat('x', 100000000) AS s"),
        # 100 kB rows: the row limit alone lets ~100 MB through; the answer-size cap must not.
        ("wide rows", "SELECT repeat('y', 100000) AS s FROM range(100000)"),
        ("huge list", "SELECT list(range) FROM range(20000000)"),
    ]
    for label, sql in runaway:
        case = _sql(label, sql)
        cases.append(HostileCase(case.label, case.method, case.path, case.body, case.headers, bounded=True))
    cases.append(
        HostileCase(
            "timeout above the server's",
            "POST",
            "/api/query",
            json.dumps({"sql": runaway[0][1], "timeout_s": 10_000}).encode(),
            {"Content-Type": "application/json"},
            bounded=True,
        )
    )
    cases.append(
        HostileCase(
            "limit above the server's",
            "POST",
            "/api/query",
            json.dumps({"sql": "SELECT * FROM range(10000000)", "limit": 10**9}).encode(),
            {"Content-Type": "application/json"},
            bounded=True,
        )
    )
    cases += _body_cases()
    cases += _route_cases()
    return cases


def _body_cases() -> list[HostileCase]:
    """Oversized, malformed and mistyped request bodies."""
    j = {"Content-Type": "application/json"}
    big_sql = "SELECT 1 " + "-- padding\n" * 600_000  # ~6.6 MB
    nested = '{"sql": "SELECT 1", "params": {"a": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    return [
        HostileCase("6 MB SQL text", "POST", "/api/query", json.dumps({"sql": big_sql}).encode(), j),
        HostileCase(
            "5 MB of params",
            "POST",
            "/api/query",
            json.dumps({"sql": "SELECT 1", "params": {"p": ["x" * 1000] * 5000}}).encode(),
            j,
        ),
        HostileCase("8 MB of junk", "POST", "/api/query", b"x" * 8_000_000, j),
        HostileCase("deeply nested JSON", "POST", "/api/query", nested.encode(), j),
        HostileCase("truncated JSON", "POST", "/api/query", b'{"sql": "SELECT 1"', j),
        HostileCase("not JSON", "POST", "/api/query", b"SELECT 1", j),
        HostileCase("JSON array", "POST", "/api/query", b'["SELECT 1"]', j),
        HostileCase("JSON string", "POST", "/api/query", b'"SELECT 1"', j),
        HostileCase("JSON null", "POST", "/api/query", b"null", j),
        HostileCase("empty body", "POST", "/api/query", b"", j),
        HostileCase("empty object", "POST", "/api/query", b"{}", j),
        HostileCase("unknown field", "POST", "/api/query", b'{"sql": "SELECT 1", "evil": true}', j),
        HostileCase("sql is a number", "POST", "/api/query", b'{"sql": 1}', j),
        HostileCase("sql is an object", "POST", "/api/query", b'{"sql": {"$ne": 1}}', j),
        HostileCase("both sql and named", "POST", "/api/query", b'{"sql": "SELECT 1", "named": "x"}', j),
        HostileCase("whitespace sql", "POST", "/api/query", b'{"sql": " \\n\\t "}', j),
        HostileCase("comment-only sql", "POST", "/api/query", b'{"sql": "-- nothing"}', j),
        HostileCase("NUL in sql", "POST", "/api/query", b'{"sql": "SELECT 1\\u0000; DROP TABLE x"}', j),
        HostileCase("lone surrogate", "POST", "/api/query", b'{"sql": "SELECT \'\\ud800\'"}', j),
        HostileCase("invalid UTF-8", "POST", "/api/query", b'{"sql": "SELECT \xff\xfe"}', j),
        HostileCase("negative limit", "POST", "/api/query", b'{"sql": "SELECT 1", "limit": -1}', j),
        HostileCase("zero timeout", "POST", "/api/query", b'{"sql": "SELECT 1", "timeout_s": 0}', j),
        HostileCase("NaN timeout", "POST", "/api/query", b'{"sql": "SELECT 1", "timeout_s": NaN}', j),
        HostileCase("huge limit number", "POST", "/api/query", b'{"sql": "SELECT 1", "limit": 1e400}', j),
        HostileCase("unknown named query", "POST", "/api/query", b'{"named": "../../etc/passwd"}', j),
        HostileCase("named with bad params", "POST", "/api/query", b'{"named": "x", "params": [1, 2]}', j),
        HostileCase("unused $param", "POST", "/api/query", b'{"sql": "SELECT 1", "params": {"p": 1}}', j),
        HostileCase("missing $param", "POST", "/api/query", b'{"sql": "SELECT $p"}', j),
        HostileCase(
            "text/plain", "POST", "/api/query", b'{"sql": "SELECT 1"}', {"Content-Type": "text/plain"}
        ),
        HostileCase(
            "form-encoded",
            "POST",
            "/api/query",
            b"sql=SELECT+1",
            {"Content-Type": "application/x-www-form-urlencoded"},
        ),
        HostileCase(
            "multipart",
            "POST",
            "/api/query",
            b'--b\r\nContent-Disposition: form-data; name="sql"\r\n\r\nSELECT 1\r\n--b--\r\n',
            {"Content-Type": "multipart/form-data; boundary=b"},
        ),
        HostileCase("no content type", "POST", "/api/query", b'{"sql": "SELECT 1"}', {}),
        HostileCase("xml", "POST", "/api/query", b"<sql>SELECT 1</sql>", {"Content-Type": "application/xml"}),
        HostileCase("GET on a POST route", "GET", "/api/query?sql=SELECT+1"),
        HostileCase("PUT on a POST route", "PUT", "/api/query", b'{"sql": "SELECT 1"}', j),
        HostileCase("DELETE on a POST route", "DELETE", "/api/query/csv"),
    ]


def _route_cases() -> list[HostileCase]:
    """Missing, garbage and oversized parameters and odd paths on every other API route."""

    def get(label: str, path: str) -> HostileCase:
        return HostileCase(label, "GET", path)

    long = "A" * 5000
    cases = [
        get("unknown api route", "/api/nope"),
        get("api path traversal", "/api/../../etc/passwd"),
        get("encoded traversal", "/api/%2e%2e/%2e%2e/etc/passwd"),
        get("POST-only path with GET", "/api/query/csv"),
        HostileCase("POST on health", "POST", "/api/health", b"{}", {"Content-Type": "application/json"}),
        HostileCase("DELETE on meta", "DELETE", "/api/meta"),
        HostileCase("PUT on windows", "PUT", "/api/windows", b"[]", {"Content-Type": "application/json"}),
        HostileCase("PATCH on named", "PATCH", "/api/named", b"{}", {"Content-Type": "application/json"}),
        HostileCase("POST on catalog", "POST", "/api/catalog"),
        HostileCase("DELETE on crawl report", "DELETE", "/api/catalog/crawl"),
        # bars / ohlc
        get("bars unknown ticker", "/api/bars?tickers=ZZZZ"),
        get("bars garbage tickers", "/api/bars?tickers=%27%3B%20DROP%20TABLE%20x%3B--"),
        get("bars oversized tickers", f"/api/bars?tickers={long}"),
        get("bars unknown window", "/api/bars?window=nope"),
        get("bars bad start", "/api/bars?start=yesterday"),
        get("bars impossible date", "/api/bars?start=2021-02-30"),
        get("bars start after end", "/api/bars?start=2010-01-01&end=2001-01-01"),
        get("bars bad measure", "/api/bars?measure=password"),
        get("bars bad total", "/api/bars?total=maybe"),
        get("bars year 0", "/api/bars?start=0000-01-01"),
        get("ohlc without ticker", "/api/ohlc"),
        get("ohlc empty ticker", "/api/ohlc?ticker="),
        get("ohlc unknown ticker", "/api/ohlc?ticker=ZZZZ"),
        get("ohlc oversized ticker", f"/api/ohlc?ticker={long}"),
        get("ohlc bad measure", "/api/ohlc?ticker=AAPL&measure=volume"),
        # insights
        get("movers n=0", "/api/insights/movers?n=0"),
        get("movers n huge", "/api/insights/movers?n=100000000000000000000"),
        get("movers n not a number", "/api/insights/movers?n=abc"),
        get("movers bad date", "/api/insights/movers?date=2010-13-45"),
        get("movers day off the data", "/api/insights/movers?date=1900-01-01"),
        get("movers bad rank_by", "/api/insights/movers?rank_by=evil"),
        get("movers bad bottom", "/api/insights/movers?bottom=2"),
        get("period bad grain", "/api/insights/period?grain=century"),
        get("period unknown ticker", "/api/insights/period?tickers=ZZZZ"),
        get("period-to-date day grain", "/api/insights/period-to-date?grain=day"),
        get("growth unknown window", "/api/insights/growth?window=%00"),
        get("growth bad measure", "/api/insights/growth?measure=%27"),
        get("ranked n negative", "/api/insights/ranked?n=-5"),
        get("extremes start after end", "/api/insights/extremes?start=2010-06-01&end=2009-06-01"),
        get("anomalies sensitivity > 1", "/api/insights/anomalies?sensitivity=2"),
        get("anomalies sensitivity NaN", "/api/insights/anomalies?sensitivity=nan"),
        get("anomalies sensitivity inf", "/api/insights/anomalies?sensitivity=inf"),
        get("anomalies top_n 0", "/api/insights/anomalies?top_n=0"),
        # (no ticker at all is the total close of the selection: a valid question since forecasts
        # of a total exist, so it is not among the hostile requests)
        get("forecast origin not a date", "/api/insights/forecast?ticker=AAPL&origin=yesterday"),
        get("forecast origin before the data", "/api/insights/forecast?ticker=AAPL&origin=1900-01-02"),
        get("forecast unknown ticker", "/api/insights/forecast?ticker=ZZZZ"),
        get("forecast horizon huge", "/api/insights/forecast?ticker=AAPL&horizon=1000000"),
        get("forecast horizon 0", "/api/insights/forecast?ticker=AAPL&horizon=0"),
        get("forecast bad measure", "/api/insights/forecast?ticker=AAPL&measure=volume"),
        get("recessions unknown period", "/api/insights/recessions?period=nope"),
        get("recessions start only", "/api/insights/recessions?start=2008-01-01"),
        get("recessions oversized period", f"/api/insights/recessions?period={long}"),
        get("recessions start after end", "/api/insights/recessions?start=2009-01-01&end=2008-01-01"),
        get("recession compare bad measure", "/api/insights/recessions/compare?measure=volume"),
        get("recession compare unknown ticker", "/api/insights/recessions/compare?tickers=ZZZZ"),
        get("summary n 0", "/api/insights/summary?n=0"),
        get("summary window outside data", "/api/insights/summary?start=1900-01-01&end=1900-02-01"),
        get("unknown insight", "/api/insights/secrets"),
        # catalog
        get("unknown table", "/api/catalog/tables/nope"),
        get("table traversal", "/api/catalog/tables/..%2F..%2Fetc%2Fpasswd"),
        get("table name with SQL", "/api/catalog/tables/market.daily_bars%3B%20DROP%20TABLE%20x"),
        get("table name oversized", f"/api/catalog/tables/{'a' * 300}"),
        get("table name NUL", "/api/catalog/tables/market%00.daily_bars"),
        get("table name quote", "/api/catalog/tables/market.%22daily_bars%22"),
        get("table subpath", "/api/catalog/tables/market.daily_bars/extra"),
    ]
    # Each list-like route with every parameter garbled at once.
    garbage = "&".join(
        f"{k}={urllib.parse.quote(v)}"
        for k, v in {"n": "x", "date": "x", "start": "x", "end": "x", "measure": "x", "grain": "x"}.items()
    )
    for route in ("bars", "insights/movers", "insights/growth", "insights/summary", "insights/ranked"):
        cases.append(get(f"{route} all garbage", f"/api/{route}?{garbage}"))
    return cases


# --------------------------------------------------------------------------- judging


def _judge(
    case: HostileCase, status: int, headers: dict[str, str], data: bytes, row_limit: int
) -> str | None:
    """Why an answer is wrong, or None when it is a correct refusal (or bounded answer)."""
    if status >= 500:
        return f"{status}"
    if status in (401, 429):
        # Access control or the rate limiter answered: the request never reached the
        # code under test, so it proves nothing either way.
        return f"{status} (not judged: access control or rate limit)"
    if case.bounded and status == 200:
        try:
            body = json.loads(data)
        except ValueError:
            return "200 without JSON"
        if int(body.get("row_count", 0)) > row_limit:
            return f"200 with {body.get('row_count')} rows (limit {row_limit})"
        if len(data) > 2 * MAX_RESULT_BYTES:
            return f"200 of {len(data) / 1e6:.0f} MB (answers are capped at {MAX_RESULT_BYTES / 1e6:.0f} MB)"
        return None
    if not 400 <= status < 500:
        return f"{status} (accepted)"
    if "json" not in headers.get("content-type", ""):
        return f"{status} without JSON"
    try:
        body = json.loads(data)
    except ValueError:
        return f"{status} with unparsable JSON"
    if not isinstance(body, dict) or not str(body.get("detail") or body.get("error") or "").strip():
        return f"{status} without a message"
    return None


def _peak_rss_mb(pid: int) -> float | None:
    """The peak resident memory of a process (Linux), to show what hostile queries cost."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError):
        pass
    return None


def _send(server: Server, case: HostileCase, timeout: float) -> tuple[int, dict[str, str], bytes]:
    try:
        return _request(server.host, server.port, case.method, case.path, case.body, case.headers, timeout)
    except (OSError, http.client.HTTPException) as e:
        # A dropped connection is no answer at all: as bad as a 5xx.
        return 599, {}, f"{type(e).__name__}: {e}".encode()


@scenario("http-hostile", "hostile SQL, bodies and parameters against tickerlake serve", short=True)
def http_hostile(ctx: Context) -> Outcome:
    """Every hostile request gets a 4xx with a JSON message, and nothing forbidden happens."""
    out = Outcome()
    lake = ctx.root / "lake"
    outside = ctx.root / "outside"
    outside.mkdir()
    marker = f"tickerlake-secret-{ctx.seed}-7f3a"
    secret = ctx.root / "secret.txt"
    secret.write_text(f"name,value\n{marker},1\n")
    env = ctx.env(
        lake,
        TICKERLAKE_QUERY_TIMEOUT_S=str(_TIMEOUT_S),
        TICKERLAKE_QUERY_ROW_LIMIT=str(_ROW_LIMIT),
        # Runaway queries fill DuckDB's memory up to its limit: keep that small for CI
        # machines (and see that hitting it is a 4xx too).
        TICKERLAKE_DUCKDB_MEMORY_LIMIT="1GB",
        # Hundreds of requests in seconds: the SQL rate limit would answer most of them
        # with 429 before the guard ever saw them.
        **_NO_RATE_LIMIT,
    )
    _build_lake(ctx, lake, env)
    cases = hostile_cases(str(lake), str(outside), str(secret))
    wrong: dict[str, list[str]] = {}
    slowest_health = 0.0
    runaway_s = 0.0
    with serve(ctx, env) as server:
        before = _checksum(server)
        for case in cases:
            # Runaway queries: the server must keep answering other requests meanwhile.
            probe: list[float] = []
            stop = threading.Event()

            def _watch(stop: threading.Event = stop, probe: list[float] = probe) -> None:
                while not stop.is_set():
                    t0 = time.monotonic()
                    ok = _healthy(server.host, server.port, timeout=10.0)
                    probe.append(time.monotonic() - t0 if ok else float("inf"))
                    stop.wait(0.25)

            watcher = threading.Thread(target=_watch, daemon=True) if case.bounded else None
            if watcher:
                watcher.start()
            t0 = time.monotonic()
            status, headers, data = _send(server, case, timeout=_TIMEOUT_S * 10 + 30)
            took = time.monotonic() - t0
            if watcher:
                stop.set()
                watcher.join(15)
                runaway_s = max(runaway_s, took)
                slowest_health = max([slowest_health, *probe])
            why = _judge(case, status, headers, data, _ROW_LIMIT)
            if why is None and marker.encode() in data:
                why = f"{status} leaked the secret file"
            if why is None and case.bounded and took > _TIMEOUT_S * 3 + 10:
                why = f"took {took:.1f} s (time limit {_TIMEOUT_S:g} s)"
            out.rows_in += 1
            if why is None:
                out.rows_out += 1
            else:
                wrong.setdefault(why, []).append(case.label)
                print(f"    wrong: {case.label}: {why}: {data[:200]!r}", file=sys.stderr, flush=True)
        healthy = _healthy(server.host, server.port, timeout=10.0)
        after = _checksum(server) if healthy else None
        peak_mb = _peak_rss_mb(server.proc.pid)
    out.errors = [f"{why}: {', '.join(labels[:6])}" for why, labels in wrong.items()]
    leaked = sorted(str(p.relative_to(ctx.root)) for p in outside.rglob("*"))
    evil = sorted(str(p.relative_to(lake)) for p in lake.rglob("evil*"))
    out.check(not wrong, f"{out.rows_in - out.rows_out} of {out.rows_in} hostile requests answered wrongly")
    out.check(healthy, "the server stopped answering /api/health")
    out.check(after == before, f"market.daily_bars changed: {before} -> {after}")
    out.check(not leaked and not evil, f"files written: {leaked + evil}")
    out.check(slowest_health < 5.0, f"/api/health took {slowest_health:.1f} s during a runaway query")
    out.details = {
        "requests": out.rows_in,
        "refused_correctly": out.rows_out,
        "slowest_health_during_runaway_s": round(slowest_health, 3),
        "slowest_runaway_answer_s": round(runaway_s, 3),
        "time_limit_s": _TIMEOUT_S,
        "server_peak_rss_mb": peak_mb,
        "row_limit": _ROW_LIMIT,
        "wrong": wrong,
    }
    if out.passed:
        out.reason = (
            f"{out.rows_out}/{out.rows_in} refused with a 4xx JSON message; /api/health at most "
            f"{slowest_health:.2f} s during runaway queries"
        )
    return out


# --------------------------------------------------------------------------- load


def locust_figures(csv_prefix: Path) -> dict[str, Any]:
    """The aggregated figures of a locust ``--csv`` run (requests, failures, p50, p99, req/s)."""
    with open(f"{csv_prefix}_stats.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    figures: dict[str, Any] = {"endpoints": {}}
    for row in rows:
        entry = {
            "requests": int(row["Request Count"]),
            "failures": int(row["Failure Count"]),
            "p50_ms": float(row["50%"] or 0),
            "p99_ms": float(row["99%"] or 0),
            "rps": round(float(row["Requests/s"] or 0), 2),
        }
        if row["Name"] == "Aggregated":
            figures.update(entry)
        else:
            figures["endpoints"][f"{row['Type']} {row['Name']}"] = entry
    failures: list[str] = []
    path = Path(f"{csv_prefix}_failures.csv")
    if path.exists():
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                failures.append(
                    f"{row['Method']} {row['Name']}: {row['Error'][:160]} (x{row['Occurrences']})"
                )
    figures["failure_kinds"] = failures
    return figures


def _run_locust(
    ctx: Context, server: Server, users: int, seconds: int, name: str, extra_env: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    """Locust headless on the server; returns its exit code and figures."""
    prefix = ctx.root / name
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKERLAKE_")}
    env.update(extra_env or {})
    args = [
        sys.executable,
        "-m",
        "locust",
        "--headless",
        "-f",
        str(_LOCUSTFILE),
        "--host",
        server.base,
        "--users",
        str(users),
        "--spawn-rate",
        str(users),
        "--run-time",
        f"{seconds}s",
        "--stop-timeout",
        "10",
        "--csv",
        str(prefix),
        "--only-summary",
        "--loglevel",
        "WARNING",
        # Loopback only: no web UI, no master port.
        "--web-host",
        "127.0.0.1",
    ]
    with open(ctx.root / f"{name}.log", "ab") as log:
        proc = subprocess.run(
            args, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=seconds + 120, check=False
        )
    return proc.returncode, locust_figures(prefix)


def _load_note(fig: dict[str, Any]) -> str:
    return (
        f"{fig.get('requests', 0)} requests, {fig.get('failures', 0)} failed, "
        f"p50 {fig.get('p50_ms', 0):g} ms, p99 {fig.get('p99_ms', 0):g} ms, {fig.get('rps', 0):g} req/s"
    )


def _serve_env(ctx: Context, lake: Path) -> dict[str, str]:
    """The server's environment for load: no SQL rate limit."""
    # The load measures the server's throughput, not the SQL rate limiter.
    return ctx.env(lake, **_NO_RATE_LIMIT)


@scenario("http-load", "locust: concurrent users on bars, insights and SQL", short=True)
def http_load(ctx: Context) -> Outcome:
    """Concurrent users on the main endpoints: 0 failed requests; p50/p99 and req/s reported."""
    out = Outcome()
    users, seconds = (10, 10) if ctx.short else (50, 60)
    lake = ctx.root / "lake"
    env = _serve_env(ctx, lake)
    _build_lake(ctx, lake, env)
    with serve(ctx, env) as server:
        code, fig = _run_locust(ctx, server, users, seconds, "load")
        healthy = _healthy(server.host, server.port)
    out.rows_in = int(fig.get("requests", 0))
    out.rows_out = out.rows_in - int(fig.get("failures", 0))
    out.errors = fig["failure_kinds"]
    out.details = {"users": users, "seconds": seconds, "locust_exit": code, **fig}
    out.check(out.rows_in > 0, "locust sent no requests")
    out.check(fig.get("failures", 0) == 0, f"{fig.get('failures')} failed requests")
    out.check(code == 0, f"locust exited with {code}")
    out.check(healthy, "the server stopped answering /api/health")
    out.reason = f"{out.reason + '; ' if out.reason else ''}{users} users {seconds} s: {_load_note(fig)}"
    return out


@scenario(
    "http-load-during-etl",
    "locust load while ingest + etl commit new data (snapshot switch, no mix)",
    short=False,
)
def http_load_during_etl(ctx: Context) -> Outcome:
    """Load while new data is committed: every count+checksum is the old or the new snapshot's."""
    out = Outcome()
    users, seconds = (10, 20) if ctx.short else (50, 60)
    lake = ctx.root / "lake"
    env = _serve_env(ctx, lake)
    _build_lake(ctx, lake, env)
    observed = ctx.root / "observed.jsonl"
    with serve(ctx, env) as server:
        old = _checksum(server)
        result: dict[str, Any] = {}

        def _load() -> None:
            result["code"], result["fig"] = _run_locust(
                ctx,
                server,
                users,
                seconds,
                "load",
                {"TL_LOAD_OBSERVED": str(observed), "TL_LOAD_CHECKSUM": "1"},
            )

        loader = threading.Thread(target=_load, daemon=True)
        loader.start()
        # Let the load reach full speed on the old snapshot first.
        time.sleep(min(5.0, seconds / 4))
        etl_started = time.time()
        # Another seed rewrites the existing tickers' values; AMZN and TSLA are new rows.
        for args in (
            ["ingest", "sim", "--seed", "2", "--tickers", f"{_LAKE_TICKERS},AMZN,TSLA",
             "--start", _LAKE_START, "--end", _LAKE_END],
            ["etl"],
        ):  # fmt: skip
            proc = ctx.run([*args, "--json"], env, timeout=600)
            if proc.returncode != 0:
                raise RuntimeError(f"tickerlake {' '.join(args)} failed: {proc.stderr.strip()[-800:]}")
        etl_done = time.time()
        loader.join(seconds + 180)
        new = _checksum(server)
        healthy = _healthy(server.host, server.port)
    fig = result.get("fig", {})
    seen: list[tuple[float, tuple[int, int]]] = []
    if observed.exists():
        for line in observed.read_text().splitlines():
            rec = json.loads(line)
            seen.append((float(rec["t"]), (int(rec["n"]), int(rec["checksum"]))))
    mixes = sorted({v for _, v in seen if v not in (old, new)})
    after_switch = [v for t, v in seen if t > etl_done + 3.0]
    stale = [v for v in after_switch if v != new]
    on_new = sum(1 for _, v in seen if v == new)
    out.rows_in = len(seen)
    out.rows_out = sum(1 for _, v in seen if v in (old, new))
    out.errors = list(fig.get("failure_kinds", [])) + [
        f"mixed snapshot answer n={n} checksum={c}" for n, c in mixes
    ]
    out.details = {
        "users": users,
        "seconds": seconds,
        "locust_exit": result.get("code"),
        "old": {"n": old[0], "checksum": old[1]},
        "new": {"n": new[0], "checksum": new[1]},
        "checksum_answers": len(seen),
        "on_new": on_new,
        "stale_after_etl": len(stale),
        "etl_seconds": round(etl_done - etl_started, 2),
        **{k: v for k, v in fig.items() if k != "failure_kinds"},
    }
    out.check(new != old, "the ETL did not change market.daily_bars")
    out.check(bool(seen), "no checksum answers were recorded")
    out.check(not mixes, f"{len(mixes)} answers matched neither snapshot")
    out.check(on_new > 0, "no answer saw the new snapshot during the load")
    out.check(not stale, f"{len(stale)} answers still on the old snapshot 3 s after the ETL")
    out.check(fig.get("failures", 0) == 0, f"{fig.get('failures')} failed requests")
    out.check(healthy, "the server stopped answering /api/health")
    out.reason = (
        f"{out.reason + '; ' if out.reason else ''}{len(seen)} checksum answers "
        f"({on_new} on the new snapshot), {len(mixes)} mixed; {_load_note(fig)}"
    )
    return out
