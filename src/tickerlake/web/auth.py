"""Access control for ``tickerlake serve``: bearer tokens, roles, limits and the serve policy.

Tokens are random secrets shown once at creation; the lake keeps only their SHA-256 (a
fast hash is enough for 256-bit random secrets: there is nothing to brute-force) in
``catalog/access_tokens.json``, so everyone serving a shared lake shares its tokens.

Roles:

- ``read``: the dashboard pages, every GET of the API and the read-only SQL endpoint.
- ``write``: also every other non-GET route (none exist yet; new ones are covered by the
  middleware's rule and can state it with ``Depends(require_role("write"))``).

Access control is on when the lake has any token (revoked ones included, so revoking the
last token never silently reopens a server) or when the server listens beyond loopback,
where :func:`serve_policy` refuses to start without an active token. When it is off (a
loopback server on a lake without tokens) every client may do everything, as before.

Clients send ``Authorization: Bearer <token>``; browsers sign in once at ``/login``, which
puts the token in an HttpOnly, SameSite=Strict cookie (``/logout`` removes it).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import html
import ipaddress
import json
import os
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tickerlake.config import Settings
from tickerlake.errors import NotFoundError, TickerlakeError
from tickerlake.lake.contract import LakeLayout
from tickerlake.lake.storage import LakeStorage
from tickerlake.web.ratelimit import RateLimiter

__all__ = [
    "COOKIE_NAME",
    "ROLES",
    "SQL_PATHS",
    "AccessControl",
    "AccessDenied",
    "Principal",
    "ServePolicy",
    "TokenError",
    "TokenNotFound",
    "TokenRecord",
    "TokenStore",
    "describe_exposure",
    "hash_token",
    "install_access_control",
    "is_loopback",
    "needs_write",
    "new_secret",
    "require_role",
    "serve_policy",
]

#: Roles from least to most privileged.
ROLES: tuple[str, ...] = ("read", "write")
_RANK = {role: i for i, role in enumerate(ROLES)}

#: The cookie that carries a browser's token after ``/login``.
COOKIE_NAME = "tickerlake_token"

#: The SQL endpoints: POST but read-only (a ``read`` token may use them), rate-limited.
SQL_PATHS: frozenset[str] = frozenset(
    {"/api/query", "/api/query/csv", "/api/query/stream", "/api/query/cancel"}
)

#: Methods that never change anything.
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: Paths served to everyone: the sign-in flow and the public assets its page uses.
_OPEN_PATHS = frozenset({"/login", "/logout", "/favicon.ico"})
_OPEN_PREFIXES = ("/static/",)

_SECRET_PREFIX = "tlk_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})

# An object store has no cheap "did it change" probe: its token file is re-read at most
# this often, so a revocation reaches running servers within these seconds.
_REMOTE_RELOAD_S = 5.0
# A local lock older than this was left by a killed command (a tokens command takes ms).
_STALE_LOCK_S = 30.0
_LOCK_WAIT_S = 10.0


class TokenError(TickerlakeError):
    """A token command that cannot be done (bad name or role, unknown token, unreadable store)."""


class TokenNotFound(TokenError, NotFoundError):
    """A token or a lake that does not exist (exit 3, HTTP 404); still a :class:`TokenError`."""


# --------------------------------------------------------------------------- secrets


def new_secret() -> str:
    """A new token secret: a recognisable prefix and 256 random bits, URL-safe."""
    return _SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_token(secret: str) -> str:
    """The SHA-256 (hex) that the store keeps instead of the secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A token as the lake stores it (never the secret).

    Attributes:
        name: Unique name, e.g. who or what uses it.
        role: ``read`` or ``write``.
        sha256: Hex SHA-256 of the secret.
        hint: The first characters of the secret, to recognise it in a config file.
        created_at: ISO-8601 UTC creation time.
        revoked_at: ISO-8601 UTC revocation time; empty while the token is active.
    """

    name: str
    role: str
    sha256: str
    hint: str
    created_at: str
    revoked_at: str = ""

    @property
    def active(self) -> bool:
        """Whether the token is accepted."""
        return not self.revoked_at

    def public(self) -> dict[str, Any]:
        """What ``tokens list`` shows: everything but the hash."""
        return {
            "name": self.name,
            "role": self.role,
            "hint": self.hint,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at or None,
            "active": self.active,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of checking a presented secret.

    Attributes:
        record: The matching active token, or None.
        reason: Why it was refused (empty when accepted).
    """

    record: TokenRecord | None
    reason: str = ""


def verify(records: dict[str, TokenRecord], secret: str) -> Verdict:
    """Find the token a secret belongs to.

    Every stored hash is compared, in constant time, so the answer's timing says nothing
    about which (or whether any) hash came close.
    """
    presented = hash_token(secret)
    found: TokenRecord | None = None
    for record in records.values():
        if hmac.compare_digest(presented, record.sha256):
            found = record
    if found is None:
        return Verdict(None, "unknown token")
    if not found.active:
        return Verdict(None, f"token {found.name!r} was revoked")
    return Verdict(found)


# --------------------------------------------------------------------------- the store


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class TokenStore:
    """The lake's tokens in ``catalog/access_tokens.json``.

    Reads are cached and refreshed when the file changes (local lakes: its size and
    modification time, checked on every call; object stores: every few seconds). Writes
    re-read, merge one change and write the whole file atomically; on a local lake under
    a lock file, on an object store (which has no shared lock) followed by a re-read that
    re-applies the change if a concurrent writer overwrote it.

    Args:
        settings: Runtime settings; the store lives in ``settings``' lake.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.storage = LakeStorage(settings)
        self.uri = LakeLayout(self.storage).access_tokens
        self._cache: dict[str, TokenRecord] | None = None
        self._cache_key: tuple[int, ...] | float | None = None
        self._cache_lock = threading.Lock()

    # -- reading

    def load(self) -> dict[str, TokenRecord]:
        """The tokens as stored now, by name (no file: none).

        Raises:
            TokenError: The file exists but is not a token store this version understands.
        """
        try:
            data = self.storage.read_bytes(self.uri)
        except FileNotFoundError:
            return {}
        try:
            doc = json.loads(data)
            return {name: TokenRecord(**rec) for name, rec in doc["tokens"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise TokenError(f"{self.uri} is not a valid token store ({type(e).__name__}: {e})") from None

    def records(self) -> dict[str, TokenRecord]:
        """The tokens, from the cache while the file is unchanged (what each request uses)."""
        key = self._freshness()
        with self._cache_lock:
            if self._cache is not None and key is not None and key == self._cache_key:
                return self._cache
        records = self.load()
        with self._cache_lock:
            self._cache, self._cache_key = records, key
        return records

    def _freshness(self) -> tuple[int, ...] | float | None:
        """A value that changes when the file may have changed."""
        if self.settings.is_local:
            try:
                st = os.stat(self.storage.path(self.uri))
            except FileNotFoundError:
                return (-1, -1, -1)
            # Every write is a new file renamed into place: a new inode as well as a new time.
            return (st.st_ino, st.st_mtime_ns, st.st_size)
        # Object store: a time slot; a new slot forces one re-read.
        return float(int(time.monotonic() / _REMOTE_RELOAD_S))

    def _forget(self) -> None:
        with self._cache_lock:
            self._cache, self._cache_key = None, None

    # -- writing

    def create(self, name: str, role: str) -> tuple[TokenRecord, str]:
        """Add a token.

        Args:
            name: Its unique name (letters, digits, ``.``, ``_``, ``-``; up to 64).
            role: ``read`` or ``write``.

        Returns:
            The stored record and the secret, which is not stored and cannot be shown again.

        Raises:
            TokenError: A bad name or role, or an active token of that name (a revoked
                one is replaced).
        """
        if not _NAME.match(name):
            raise TokenError(
                f"bad token name {name[:70]!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        if role not in ROLES:
            raise TokenError(f"unknown role {role!r}: use {' or '.join(ROLES)}")
        secret = new_secret()
        record = TokenRecord(name, role, hash_token(secret), secret[: len(_SECRET_PREFIX) + 4], _now())

        def change(records: dict[str, TokenRecord]) -> TokenRecord:
            old = records.get(name)
            if old is not None and old.sha256 != record.sha256 and old.active:
                raise TokenError(f"a token named {name!r} exists: revoke it first or choose another name")
            records[name] = record
            return record

        return self._mutate(change), secret

    def revoke(self, name: str) -> TokenRecord:
        """Revoke a token (it stays listed, and refused, until replaced by a new one of its name).

        Raises:
            TokenNotFound: No token of that name.
        """
        stamp = _now()

        def change(records: dict[str, TokenRecord]) -> TokenRecord:
            old = records.get(name)
            if old is None:
                known = ", ".join(sorted(records)) or "none"
                raise TokenNotFound(f"no token named {name!r} (tokens: {known})")
            if old.active:
                records[name] = replace(old, revoked_at=stamp)
            return records[name]

        return self._mutate(change)

    def _mutate(self, change: Callable[[dict[str, TokenRecord]], TokenRecord]) -> TokenRecord:
        """Re-read, apply ``change``, write; repeat while a concurrent writer undid it."""
        self._require_lake()
        with self._locked():
            for _ in range(8):
                records = self.load()
                wanted = change(records)
                self._write(records)
                # Only an object store can get here with a lost update (local writers hold
                # the lock): whoever finds their change missing merges it in again.
                if self.load().get(wanted.name) == wanted:
                    self._forget()
                    return wanted
        raise TokenError(f"{self.uri} keeps changing under this command: try again")

    def _write(self, records: dict[str, TokenRecord]) -> None:
        doc = {"version": 1, "tokens": {name: asdict(records[name]) for name in sorted(records)}}
        self.storage.write_bytes(self.uri, (json.dumps(doc, indent=1) + "\n").encode())

    def _require_lake(self) -> None:
        if self.settings.is_local and not self.storage.exists(self.settings.lake_uri):
            # Writing the store would create an empty lake at a mistyped path.
            raise TokenNotFound(f"no lake at {self.settings.lake_uri}: ingest data first or pass --lake")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """An exclusive lock file beside the store, for local lakes (object stores: none)."""
        if not self.settings.is_local:
            yield
            return
        lock = self.storage.path(self.uri) + ".lock"
        os.makedirs(os.path.dirname(lock), exist_ok=True)
        deadline = time.monotonic() + _LOCK_WAIT_S
        while True:
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
                break
            except FileExistsError:
                with contextlib.suppress(FileNotFoundError):
                    if time.time() - os.stat(lock).st_mtime > _STALE_LOCK_S:
                        # Rename first so that two waiters cannot both remove a fresh lock.
                        stale = f"{lock}.{uuid.uuid4().hex}"
                        os.rename(lock, stale)
                        os.unlink(stale)
                        continue
                if time.monotonic() > deadline:
                    raise TokenError(
                        f"{lock} is held by another tokens command (remove it if none runs)"
                    ) from None
                time.sleep(0.02)
        try:
            os.write(fd, str(os.getpid()).encode())
            yield
        finally:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)


# --------------------------------------------------------------------------- serve policy


def is_loopback(host: str) -> bool:
    """Whether a bind address only accepts connections from this machine.

    ``0.0.0.0``, ``::``, other addresses and host names (but ``localhost``) are not.
    """
    name = host.strip().strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class ServePolicy:
    """How a server on one address protects the lake.

    Attributes:
        host: The bind address.
        loopback: Whether only this machine can connect.
        enforced: Whether every request needs a token.
        active: Active tokens by role.
    """

    host: str
    loopback: bool
    enforced: bool
    active: dict[str, int] = field(default_factory=dict)


def serve_policy(host: str, records: dict[str, TokenRecord]) -> ServePolicy:
    """Decide whether ``serve`` may listen on ``host`` and whether tokens are required.

    Raises:
        TokenError: A non-loopback address on a lake without an active token (one line).
    """
    loopback = is_loopback(host)
    active = {role: sum(1 for r in records.values() if r.active and r.role == role) for role in ROLES}
    if not loopback and not any(active.values()):
        raise TokenError(
            f"refusing to serve on {host}: other machines could reach it and the lake has no active "
            "access token; create one with `tickerlake tokens create NAME --role read` "
            "or serve on 127.0.0.1"
        )
    return ServePolicy(host, loopback, enforced=not loopback or bool(records), active=active)


def describe_exposure(settings: Settings, policy: ServePolicy) -> dict[str, Any]:
    """What a server exposes and to whom (printed by ``serve``)."""
    sql = f"POST /api/query[/csv] (read-only, at most {settings.query_row_limit} rows and {settings.query_timeout_s:g} s"
    if settings.sql_rate_per_s > 0:
        sql += f"; {settings.sql_rate_per_s:g}/s, burst {settings.sql_burst}, per client"
    sql += ")"
    if policy.enforced:
        access = "bearer token required ({})".format(
            ", ".join(f"{n} {role}" for role, n in policy.active.items()) or "none active"
        )
    else:
        access = "open to every local client (no tokens: `tickerlake tokens create` to require them)"
    return {
        "access": access,
        "pages": "/, /insights, /sql, /catalog, /docs (browsers sign in at /login)",
        "api": "GET /api/… (market, insights, catalog)",
        "sql": sql,
        "writes": "other non-GET routes: write role only (none exist yet)"
        if policy.enforced
        else "other non-GET routes: anyone (none exist yet)",
        "max_body_bytes": settings.max_body_bytes,
    }


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as the routes see it in ``request.state.principal``.

    Attributes:
        name: Token name; None when access control is off.
        role: The caller's role (``write`` when access control is off: anyone may do anything).
        client: Client address (for rate limits when there is no token).
    """

    name: str | None
    role: str
    client: str

    def can(self, role: str) -> bool:
        """Whether this caller has ``role`` or a stronger one."""
        return _RANK.get(self.role, -1) >= _RANK[role]

    @property
    def limit_key(self) -> str:
        """The key of this caller's rate-limit bucket."""
        return f"token:{self.name}" if self.name is not None else f"client:{self.client}"


class AccessDenied(Exception):
    """A request refused by access control: becomes a JSON 4xx.

    Args:
        status: 401, 403, 413 or 429.
        kind: The ``error`` field of the answer.
        detail: The one-line message.
        headers: Extra response headers (WWW-Authenticate, Retry-After).
    """

    def __init__(self, status: int, kind: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        """The JSON answer."""
        return JSONResponse(
            {"error": self.kind, "detail": self.detail}, status_code=self.status, headers=self.headers
        )


def _unauthorized(detail: str, invalid: bool) -> AccessDenied:
    challenge = 'Bearer realm="tickerlake"' + (', error="invalid_token"' if invalid else "")
    return AccessDenied(401, "Unauthorized", detail, {"WWW-Authenticate": challenge})


def needs_write(method: str, path: str) -> bool:
    """Whether a request needs the ``write`` role: any non-GET route but the SQL and sign-in POSTs."""
    method = method.upper()
    if method in _SAFE_METHODS:
        return False
    return not (method == "POST" and (path in SQL_PATHS or path in _OPEN_PATHS))


def require_role(role: str) -> Callable[[Request], Principal]:
    """A FastAPI dependency that refuses callers without ``role`` (403), e.g.
    ``@router.post("/saved", dependencies=[Depends(require_role("write"))])``.

    The middleware already applies :func:`needs_write`; this states it on the route and
    also covers a GET that writes.
    """
    if role not in _RANK:
        raise ValueError(f"unknown role {role!r}")

    def dependency(request: Request) -> Principal:
        principal = getattr(request.state, "principal", None)
        if not isinstance(principal, Principal):
            raise _unauthorized("access control is not installed on this app", invalid=False)
        if not principal.can(role):
            raise AccessDenied(
                403, "Forbidden", f"token {principal.name!r} has role {principal.role}; this needs {role}"
            )
        return principal

    dependency.__name__ = f"require_{role}"
    return dependency


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _presented(headers: dict[str, str]) -> tuple[str | None, str]:
    """The secret a request carries (header first, then the sign-in cookie), or why none."""
    auth = headers.get("authorization", "").strip()
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None, "use Authorization: Bearer <token>"
        return value.strip(), ""
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == COOKIE_NAME and value:
            return value, ""
    return None, "a token is required: send Authorization: Bearer <token> (browsers: sign in at /login)"


class AccessControl:
    """ASGI middleware: tokens and roles, the SQL rate limit and the body size limit.

    Runs before routing so that no route can forget it. Its refusals are JSON 4xx (the
    pages' 401 is the sign-in form), never a 5xx.

    Args:
        app: The wrapped app.
        store: The lake's tokens.
        require_auth: Demand a token even when the lake has none (non-loopback servers).
        limiter: The SQL rate limiter.
        max_body_bytes: Largest request body accepted.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        store: TokenStore,
        require_auth: bool,
        limiter: RateLimiter,
        max_body_bytes: int,
    ) -> None:
        self.app = app
        self.store = store
        self.require_auth = require_auth
        self.limiter = limiter
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            # No socket routes exist yet; one added later must not bypass the tokens.
            try:
                scope.setdefault("state", {})["principal"] = self.authenticate(scope, _headers(scope))
            except AccessDenied:
                await send({"type": "websocket.close", "code": 1008})
                return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        try:
            principal = self.authenticate(scope, headers)
            scope.setdefault("state", {})["principal"] = principal
            method, path = scope["method"], scope["path"]
            if needs_write(method, path) and not principal.can("write"):
                raise AccessDenied(
                    403,
                    "Forbidden",
                    f"token {principal.name!r} has role {principal.role}; {method} {path} needs write",
                )
            if path in SQL_PATHS and method == "POST":
                decision = self.limiter.acquire(principal.limit_key)
                if not decision.allowed:
                    raise AccessDenied(
                        429,
                        "RateLimited",
                        f"too many SQL queries from this client (at most {self.limiter.rate:g}/s, "
                        f"burst {self.limiter.burst:g}): retry in {decision.retry_after_header} s",
                        {"Retry-After": decision.retry_after_header},
                    )
            receive = await self.limit_body(scope, headers, receive)
        except AccessDenied as denied:
            await self.refuse(denied, scope, headers, send)
            return
        await self.app(scope, receive, send)

    def authenticate(self, scope: Scope, headers: dict[str, str]) -> Principal:
        """The caller, or AccessDenied(401)."""
        client = (scope.get("client") or ("unknown", 0))[0]
        path = scope["path"]
        open_path = path in _OPEN_PATHS or path.startswith(_OPEN_PREFIXES)
        try:
            records = self.store.records()
        except Exception as e:
            # An unreadable store (corrupt file, object store down) locks the server, never
            # opens it and never turns into a 5xx.
            if open_path:
                return Principal(None, "read", client)
            raise _unauthorized(f"access tokens cannot be checked: {str(e)[:200]}", invalid=False) from None
        if not (self.require_auth or records):
            return Principal(None, "write", client)
        secret, problem = _presented(headers)
        if secret is not None:
            verdict = verify(records, secret)
            if verdict.record is not None:
                return Principal(verdict.record.name, verdict.record.role, client)
            problem = verdict.reason
        if open_path:
            return Principal(None, "read", client)
        raise _unauthorized(problem, invalid=secret is not None)

    async def limit_body(self, scope: Scope, headers: dict[str, str], receive: Receive) -> Receive:
        """Read the body (at most ``max_body_bytes``) ahead of the app, or AccessDenied(413)."""
        too_big = AccessDenied(
            413, "PayloadTooLarge", f"the request body is larger than {self.max_body_bytes} bytes"
        )
        length = headers.get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                raise AccessDenied(400, "BadRequest", "invalid Content-Length header") from None
            if declared > self.max_body_bytes:
                raise too_big
        if scope["method"] in ("GET", "HEAD") and length is None and "transfer-encoding" not in headers:
            return receive
        # Buffer the (bounded) body so that a chunked upload cannot exceed the limit either.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client left: let the app see the disconnect as it would have.
                return _replay([message], receive)
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_body_bytes:
                raise too_big
            chunks.append(body)
            if not message.get("more_body", False):
                break
        return _replay([{"type": "http.request", "body": b"".join(chunks), "more_body": False}], receive)

    async def refuse(self, denied: AccessDenied, scope: Scope, headers: dict[str, str], send: Send) -> None:
        """Answer a refusal: JSON, or the sign-in page for a browser asking for a page."""
        response: Response = denied.response()
        if denied.status == 401 and _wants_page(scope, headers):
            response = _login_page(_request_target(scope), denied.detail, status=401)
            response.headers.update(denied.headers)
        await response(scope, _no_receive, send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    queue = list(messages)

    async def replay() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replay


async def _no_receive() -> Message:  # pragma: no cover - responses never read the request
    return {"type": "http.disconnect"}


def _wants_page(scope: Scope, headers: dict[str, str]) -> bool:
    path = scope["path"]
    return (
        scope["method"] in ("GET", "HEAD")
        and not path.startswith("/api")
        and path != "/openapi.json"
        and "text/html" in headers.get("accept", "")
    )


def _request_target(scope: Scope) -> str:
    query = scope.get("query_string", b"").decode("latin-1")
    return scope["path"] + (f"?{query}" if query else "")


def _safe_next(target: str) -> str:
    """A local path to go to after signing in (anything else, e.g. ``//evil``, goes home)."""
    if target.startswith("/") and not target.startswith(("//", "/\\")) and "\n" not in target:
        return target
    return "/"


# --------------------------------------------------------------------------- sign-in pages


def _login_page(target: str, problem: str = "", status: int = 200) -> HTMLResponse:
    """The minimal sign-in form (self-contained: it must work before any token is accepted)."""
    message = f'<p class="err">{html.escape(problem)}</p>' if problem else ""
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in · tickerlake</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="/favicon.ico">
<style>body{{font:15px system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}}
input{{width:100%;padding:.5rem;font:inherit;box-sizing:border-box}}button{{margin-top:.8rem;padding:.5rem 1rem;font:inherit}}
.err{{color:#b00020}}.dim{{color:#666;font-size:13px}}</style></head>
<body><h1>tickerlake</h1>
<p>This dashboard needs an access token.</p>{message}
<form method="post" action="/login">
<input type="hidden" name="next" value="{html.escape(_safe_next(target))}">
<label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button></form>
<p class="dim">Tokens come from <code>tickerlake tokens create NAME --role read</code>.
The browser keeps it in a cookie until you <a href="/logout">sign out</a>.</p>
</body></html>"""
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def _add_login_routes(app: FastAPI, store: TokenStore) -> None:
    @app.get("/login", include_in_schema=False, response_class=HTMLResponse)
    def login_form(next: str = "/") -> Response:
        return _login_page(next)

    @app.post("/login", include_in_schema=False, response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        # Parsed here: a two-field form does not justify the multipart dependency.
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        secret = (form.get("token") or [""])[0].strip()
        target = _safe_next((form.get("next") or ["/"])[0])
        try:
            verdict = verify(store.records(), secret) if secret else Verdict(None, "enter a token")
        except TokenError as e:
            verdict = Verdict(None, str(e))
        if verdict.record is None:
            page = _login_page(target, verdict.reason, status=401)
            page.headers["WWW-Authenticate"] = 'Bearer realm="tickerlake"'
            return page
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE_NAME,
            secret,
            max_age=30 * 24 * 3600,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    @app.get("/logout", include_in_schema=False)
    def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE_NAME, path="/")
        return response


def install_access_control(
    app: FastAPI,
    settings: Settings,
    store: TokenStore | None = None,
    require_auth: bool = False,
) -> TokenStore:
    """Wire tokens, roles and limits into ``app``: middleware, sign-in routes, error answers.

    Args:
        app: The app (before it starts).
        settings: Limits (``sql_rate_per_s``, ``sql_burst``, ``max_body_bytes``) and the lake.
        store: The token store (tests); by default the lake's.
        require_auth: Demand tokens even if the lake has none (set for non-loopback servers).

    Returns:
        The store in use (also ``app.state.tokens``).
    """
    store = store or TokenStore(settings)
    app.state.tokens = store
    limiter = RateLimiter(settings.sql_rate_per_s, settings.sql_burst)
    app.state.sql_limiter = limiter
    app.add_middleware(
        AccessControl,
        store=store,
        require_auth=require_auth,
        limiter=limiter,
        max_body_bytes=settings.max_body_bytes,
    )

    async def _denied(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AccessDenied)
        return exc.response()

    app.add_exception_handler(AccessDenied, _denied)
    _add_login_routes(app, store)
    return store
