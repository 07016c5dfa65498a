"""Access control under load: tokens, roles and the per-client SQL rate limit while users work.

A lake with tokens (one per load user, a greedy client's, a read-only one, a revoked one)
is served with the default SQL rate limit. Locust users, each with its own token, run the
dashboard's calls including SQL, while a greedy client sends SQL as fast as it can with
its own token. The limit must hold for the greedy client (its 200s stay within burst +
rate x time, the rest are 429 with Retry-After) without costing the other users one
failed request; and the doors stay shut: no token, a revoked token → 401, a read token on
a write route → 403.
"""

from __future__ import annotations

import json
import threading
import time

from reliability.core import Context, Outcome, scenario
from reliability.scenarios.http import _build_lake, _request, _run_locust, serve

__all__: list[str] = []

_RATE, _BURST = 5.0, 20


@scenario(
    "http-auth-under-load",
    "tokens + SQL rate limit: locust users with own tokens, one greedy SQL client, revoked/read-only tokens",
    short=False,
)
def http_auth_under_load(ctx: Context) -> Outcome:
    from tickerlake.web.auth import TokenStore

    out = Outcome()
    users, seconds = (5, 10) if ctx.short else (50, 60)
    lake = ctx.root / "lake"
    env = ctx.env(lake, TICKERLAKE_SQL_RATE_PER_S=str(_RATE), TICKERLAKE_SQL_BURST=str(_BURST))
    _build_lake(ctx, lake, env)
    store = TokenStore(ctx.settings(env))
    user_tokens = [store.create(f"user-{i}", "read")[1] for i in range(users)]
    greedy = store.create("greedy", "read")[1]
    reader = store.create("reader", "read")[1]
    revoked = store.create("gone", "write")[1]
    store.revoke("gone")
    sql = json.dumps({"sql": "SELECT count(*) AS n FROM market.daily_bars"}).encode()
    json_headers = {"Content-Type": "application/json"}

    with serve(ctx, env) as server:

        def call(method: str, path: str, token: str | None, body: bytes | None = None) -> int:
            headers = dict(json_headers)
            if token:
                headers["Authorization"] = f"Bearer {token}"
            return _request(server.host, server.port, method, path, body, headers, timeout=30)[0]

        doors = {
            "no token": (call("GET", "/api/health", None), 401),
            "no token, SQL": (call("POST", "/api/query", None, sql), 401),
            "revoked token": (call("GET", "/api/health", revoked), 401),
            "read token, write route": (call("POST", "/api/bars", reader, b"{}"), 403),
            "read token, read route": (call("GET", "/api/health", reader), 200),
        }
        greedy_codes: list[int] = []
        stop = threading.Event()

        def hammer() -> None:
            while not stop.is_set():
                greedy_codes.append(call("POST", "/api/query", greedy, sql))

        started = time.monotonic()
        thread = threading.Thread(target=hammer, daemon=True)
        thread.start()
        code, fig = _run_locust(
            ctx, server, users, seconds, "load", {"TL_LOAD_TOKENS": ",".join(user_tokens)}
        )
        stop.set()
        thread.join(60)
        greedy_s = time.monotonic() - started

    for label, (got, want) in doors.items():
        out.check(got == want, f"{label}: {got}, want {want}")
    ok = greedy_codes.count(200)
    limited = greedy_codes.count(429)
    other = len(greedy_codes) - ok - limited
    allowed = _BURST + _RATE * greedy_s + 2
    out.rows_in = int(fig.get("requests", 0)) + len(greedy_codes)
    out.rows_out = int(fig.get("requests", 0)) - int(fig.get("failures", 0)) + ok + limited
    out.errors = fig.get("failure_kinds", [])
    out.check(
        fig.get("failures", 0) == 0, f"{fig.get('failures')} failed requests of the users with own tokens"
    )
    out.check(code == 0, f"locust exited with {code}")
    out.check(limited > 0, "the greedy client was never limited")
    out.check(
        ok <= allowed, f"the greedy client got {ok} answers in {greedy_s:.0f} s (limit allows {allowed:.0f})"
    )
    out.check(other == 0, f"the greedy client got {other} answers that are neither 200 nor 429")
    out.details = {
        "users": users,
        "seconds": seconds,
        "greedy": {"sent": len(greedy_codes), "ok": ok, "limited": limited, "allowed": round(allowed)},
        "doors": {k: v[0] for k, v in doors.items()},
        **{k: fig.get(k) for k in ("requests", "failures", "p50_ms", "p99_ms", "rps")},
    }
    out.reason = out.reason or (
        f"users: {fig.get('requests')} requests, 0 failed, p50 {fig.get('p50_ms')} ms, p99 {fig.get('p99_ms')} ms; "
        f"greedy: {ok} ok / {limited} limited of {len(greedy_codes)}"
    )
    return out
