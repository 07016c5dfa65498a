"""Access control on the real app: tokens and roles, the sign-in cookie, the SQL rate limit,
the body size limit, and ``serve``'s refusal to expose a lake without tokens.

The app serves the session's simulated lake; its tokens live in a separate small lake
(``create_app(tokens=...)``) so that the other web tests keep an open server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import Depends
from fastapi.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from tickerlake.config import Settings
from tickerlake.web.app import create_app
from tickerlake.web.auth import COOKIE_NAME, Principal, TokenStore, require_role

pytestmark = pytest.mark.integration

SQL = {"sql": "SELECT ticker, count(*) AS n FROM market.daily_bars GROUP BY ticker ORDER BY ticker"}


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("tickerlake")
    return (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "from tickerlake.cli import main; main()"]
    )


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TICKERLAKE_")}


def _settings(sim_lake: Settings, **limits: Any) -> Settings:
    return Settings(lake=sim_lake.lake, query_timeout_s=10.0, query_row_limit=5_000, **limits)


def _token_store(tmp_path: Path) -> TokenStore:
    root = tmp_path / "token-lake"
    root.mkdir(exist_ok=True)
    return TokenStore(Settings(lake=str(root)))


def _add_write_routes(app: Any) -> None:
    """Two write routes, as the saved-queries and load endpoints will be."""

    @app.post("/api/_test/saved")
    def save() -> dict[str, str]:
        return {"saved": "yes"}

    @app.get("/api/_test/reload")
    def reload(principal: Principal = Depends(require_role("write"))) -> dict[str, str | None]:
        return {"by": principal.name}

    @app.websocket("/api/_test/socket")
    async def socket(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text(str(ws.state.principal.name))
        await ws.close()


class Secured:
    """An app with tokens: ``reader`` (read), ``writer`` (write), ``gone`` (revoked)."""

    def __init__(self, sim_lake: Settings, tmp_path: Path, **limits: Any) -> None:
        self.store = _token_store(tmp_path)
        _, self.reader = self.store.create("reader", "read")
        _, self.writer = self.store.create("writer", "write")
        _, self.gone = self.store.create("gone", "read")
        self.store.revoke("gone")
        self.app = create_app(_settings(sim_lake, **limits), tokens=self.store)
        _add_write_routes(self.app)
        self.client = TestClient(self.app, raise_server_exceptions=False, follow_redirects=False)

    @staticmethod
    def bearer(secret: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def secured(sim_lake: Settings, tmp_path: Path) -> Iterator[Secured]:
    s = Secured(sim_lake, tmp_path)
    with s.client:
        yield s


def _is_401(resp: Any, invalid: bool) -> str:
    assert resp.status_code == 401, resp.text
    challenge = resp.headers["www-authenticate"]
    assert challenge.startswith("Bearer")
    assert ('error="invalid_token"' in challenge) is invalid
    body = resp.json()
    assert body["error"] == "Unauthorized" and body["detail"]
    return body["detail"]


# --------------------------------------------------------------------------- tokens and roles


def test_no_token_is_401(secured: Secured) -> None:
    c = secured.client
    assert "token is required" in _is_401(c.get("/api/meta"), invalid=False)
    _is_401(c.post("/api/query", json=SQL), invalid=False)
    _is_401(c.get("/openapi.json"), invalid=False)


def test_unknown_or_malformed_token_is_401(secured: Secured) -> None:
    c = secured.client
    assert _is_401(c.get("/api/meta", headers=secured.bearer("tlk_nope")), invalid=True) == "unknown token"
    _is_401(c.get("/api/meta", headers=secured.bearer(secured.reader + "x")), invalid=True)
    detail = _is_401(c.get("/api/meta", headers={"Authorization": "Basic dXNlcjpwYXNz"}), invalid=False)
    assert "Bearer" in detail


def test_read_token_reads_and_queries(secured: Secured) -> None:
    c, auth = secured.client, secured.bearer(secured.reader)
    meta = c.get("/api/meta", headers=auth)
    assert meta.status_code == 200 and "AAPL" in meta.json()["tickers"]
    rows = c.post("/api/query", json=SQL, headers=auth)
    assert rows.status_code == 200, rows.text
    assert len(rows.json()["rows"]) == 8
    assert c.post("/api/query/csv", json=SQL, headers=auth).status_code == 200
    assert c.get("/", headers={**auth, "Accept": "text/html"}).status_code == 200


def test_read_token_cannot_write(secured: Secured) -> None:
    c = secured.client
    refused = c.post("/api/_test/saved", headers=secured.bearer(secured.reader))
    assert refused.status_code == 403
    assert refused.json()["error"] == "Forbidden" and "needs write" in refused.json()["detail"]
    # The dependency guards a route the method rule does not cover.
    dep = c.get("/api/_test/reload", headers=secured.bearer(secured.reader))
    assert dep.status_code == 403 and "this needs write" in dep.json()["detail"]
    assert c.post("/api/_test/saved", headers=secured.bearer(secured.writer)).json() == {"saved": "yes"}
    assert c.get("/api/_test/reload", headers=secured.bearer(secured.writer)).json() == {"by": "writer"}
    # A write route without a token is a 401, not a 403.
    _is_401(c.post("/api/_test/saved"), invalid=False)


def test_revoked_token_is_refused_from_the_next_request(secured: Secured) -> None:
    c = secured.client
    assert "revoked" in _is_401(c.get("/api/meta", headers=secured.bearer(secured.gone)), invalid=True)
    _, secret = TokenStore(secured.store.settings).create("temp", "read")
    assert c.get("/api/meta", headers=secured.bearer(secret)).status_code == 200
    # Revoked by another store, as the CLI in another process does.
    TokenStore(secured.store.settings).revoke("temp")
    assert "'temp' was revoked" in _is_401(c.get("/api/meta", headers=secured.bearer(secret)), invalid=True)


def test_an_unreadable_token_store_locks_the_server_without_a_5xx(secured: Secured) -> None:
    path = Path(secured.store.storage.path(secured.store.uri))
    path.write_text("{broken")
    resp = secured.client.get("/api/meta", headers=secured.bearer(secured.writer))
    assert "cannot be checked" in _is_401(resp, invalid=False)


# --------------------------------------------------------------------------- browsers


def test_pages_ask_browsers_to_sign_in_and_the_cookie_works(secured: Secured) -> None:
    c = secured.client
    page = c.get("/sql?q=1", headers={"Accept": "text/html"})
    assert page.status_code == 401 and page.headers["www-authenticate"].startswith("Bearer")
    assert "<form" in page.text and 'value="/sql?q=1"' in page.text
    # Public assets stay reachable for the sign-in page.
    assert c.get("/static/style.css").status_code == 200
    assert c.get("/login").status_code == 200

    wrong = c.post("/login", data={"token": "tlk_wrong", "next": "/sql"})
    assert wrong.status_code == 401 and "unknown token" in wrong.text
    assert COOKIE_NAME not in wrong.cookies

    ok = c.post("/login", data={"token": secured.reader, "next": "/sql?q=1"})
    assert ok.status_code == 303 and ok.headers["location"] == "/sql?q=1"
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    jar = {COOKIE_NAME: secured.reader}
    assert c.get("/sql", cookies=jar, headers={"Accept": "text/html"}).status_code == 200
    assert c.post("/api/query", json=SQL, cookies=jar).status_code == 200
    # The cookie carries the role too: no writes with a read token.
    assert c.post("/api/_test/saved", cookies=jar).status_code == 403

    out = c.get("/logout", cookies=jar)
    assert out.status_code == 303 and f'{COOKIE_NAME}=""' in out.headers["set-cookie"]


def test_sign_in_never_redirects_off_site(secured: Secured) -> None:
    ok = secured.client.post("/login", data={"token": secured.reader, "next": "//evil.example/x"})
    assert ok.status_code == 303 and ok.headers["location"] == "/"


# --------------------------------------------------------------------------- loopback without tokens


def test_without_tokens_the_local_server_stays_open(sim_lake: Settings, tmp_path: Path) -> None:
    app = create_app(_settings(sim_lake), tokens=_token_store(tmp_path))
    _add_write_routes(app)
    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.get("/api/meta").status_code == 200
        assert c.post("/api/query", json=SQL).status_code == 200
        assert c.post("/api/_test/saved").status_code == 200


def test_tokens_created_while_serving_are_enforced(sim_lake: Settings, tmp_path: Path) -> None:
    store = _token_store(tmp_path)
    with TestClient(create_app(_settings(sim_lake), tokens=store), raise_server_exceptions=False) as c:
        assert c.get("/api/meta").status_code == 200
        _, secret = TokenStore(store.settings).create("late", "read")
        _is_401(c.get("/api/meta"), invalid=False)
        assert c.get("/api/meta", headers={"Authorization": f"Bearer {secret}"}).status_code == 200


def test_require_auth_without_tokens_refuses_everyone(sim_lake: Settings, tmp_path: Path) -> None:
    app = create_app(_settings(sim_lake), tokens=_token_store(tmp_path), require_auth=True)
    with TestClient(app, raise_server_exceptions=False) as c:
        _is_401(c.get("/api/meta"), invalid=False)
        _is_401(c.get("/api/meta", headers={"Authorization": "Bearer tlk_any"}), invalid=True)


# --------------------------------------------------------------------------- limits


def test_sql_rate_limit_per_token(sim_lake: Settings, tmp_path: Path) -> None:
    s = Secured(sim_lake, tmp_path, sql_rate_per_s=0.01, sql_burst=3)
    with s.client as c:
        reader = s.bearer(s.reader)
        assert [c.post("/api/query", json=SQL, headers=reader).status_code for _ in range(3)] == [200] * 3
        over = c.post("/api/query/csv", json=SQL, headers=reader)
        assert over.status_code == 429
        assert int(over.headers["retry-after"]) >= 1
        assert over.json()["error"] == "RateLimited" and "0.01/s" in over.json()["detail"]
        # Another client is not starved by the first one.
        assert c.post("/api/query", json=SQL, headers=s.bearer(s.writer)).status_code == 200
        # The rest of the API is not rate-limited.
        assert c.get("/api/meta", headers=reader).status_code == 200


def test_sql_rate_limit_per_client_address_without_tokens(sim_lake: Settings, tmp_path: Path) -> None:
    app = create_app(_settings(sim_lake, sql_rate_per_s=0.01, sql_burst=2), tokens=_token_store(tmp_path))
    with (
        TestClient(app, raise_server_exceptions=False, client=("10.0.0.1", 5000)) as first,
        TestClient(app, raise_server_exceptions=False, client=("10.0.0.2", 5000)) as second,
    ):
        assert [first.post("/api/query", json=SQL).status_code for _ in range(3)] == [200, 200, 429]
        assert second.post("/api/query", json=SQL).status_code == 200


def test_oversized_bodies_are_413(sim_lake: Settings, tmp_path: Path) -> None:
    s = Secured(sim_lake, tmp_path, max_body_bytes=4096)
    with s.client as c:
        auth = {**s.bearer(s.reader), "Content-Type": "application/json"}
        big = json.dumps({"sql": "SELECT 1 -- " + "x" * 5000})
        resp = c.post("/api/query", content=big, headers=auth)
        assert resp.status_code == 413
        assert resp.json() == {
            "error": "PayloadTooLarge",
            "detail": "the request body is larger than 4096 bytes",
        }

        # A chunked upload declares no length: it is counted as it arrives.
        def chunks() -> Iterator[bytes]:
            for _ in range(10):
                yield b"x" * 1000

        assert c.post("/api/query", content=chunks(), headers=auth).status_code == 413
        # Just under the limit still works.
        small = json.dumps({"sql": "SELECT 1 AS one -- " + "x" * 3000})
        ok = c.post("/api/query", content=small, headers=auth)
        assert ok.status_code == 200 and ok.json()["rows"] == [[1]]


def test_body_limit_applies_without_tokens_too(sim_lake: Settings, tmp_path: Path) -> None:
    app = create_app(_settings(sim_lake, max_body_bytes=100), tokens=_token_store(tmp_path))
    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.post("/api/query", content=b"{" + b" " * 200 + b"}").status_code == 413


# --------------------------------------------------------------------------- the CLI


def test_serve_refuses_an_exposed_host_without_tokens(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    proc = subprocess.run(
        [*_cli(), "--lake", str(lake), "serve", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: refusing to serve on 0.0.0.0") and "tokens create" in lines[0]
    assert proc.stdout == ""


def test_tokens_cli_and_a_real_server(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    base = [*_cli(), "--lake", str(lake)]
    # Concurrent creates from separate processes: none is lost.
    procs = [
        subprocess.Popen(
            [*base, "tokens", "create", f"t{i}", "--json"], stdout=subprocess.PIPE, text=True, env=_env()
        )
        for i in range(4)
    ]
    created = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    listed = json.loads(subprocess.run([*base, "tokens", "list", "--json"], capture_output=True, text=True,
                                       timeout=60, env=_env(), check=True).stdout)  # fmt: skip
    assert sorted(t["name"] for t in listed) == ["t0", "t1", "t2", "t3"]
    assert all("token" not in t and "sha256" not in t for t in listed)
    secret = created[0]["token"]
    revoked = subprocess.run([*base, "tokens", "revoke", "t1", "--json"], capture_output=True, text=True,
                             timeout=60, env=_env(), check=True)  # fmt: skip
    assert json.loads(revoked.stdout)["active"] is False

    server = subprocess.Popen(
        [*base, "serve", "--port", "0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert server.stdout is not None
        ready = json.loads(server.stdout.readline())
        assert ready["auth"]["required"] is True and ready["auth"]["loopback"] is True
        health = ready["url"] + "api/health"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(health, timeout=10)
        assert refused.value.code == 401 and refused.value.headers["WWW-Authenticate"].startswith("Bearer")
        with pytest.raises(urllib.error.HTTPError) as gone:
            urllib.request.urlopen(
                urllib.request.Request(health, headers={"Authorization": f"Bearer {created[1]['token']}"}),
                timeout=10,
            )
        assert gone.value.code == 401
        request = urllib.request.Request(health, headers={"Authorization": f"Bearer {secret}"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert json.load(resp)["status"] == "ok"
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_websockets_need_a_token_too(secured: Secured) -> None:
    with pytest.raises(WebSocketDisconnect) as refused, secured.client.websocket_connect("/api/_test/socket"):
        pass
    assert refused.value.code == 1008
    with secured.client.websocket_connect("/api/_test/socket", headers=secured.bearer(secured.reader)) as ws:
        assert ws.receive_text() == "reader"
