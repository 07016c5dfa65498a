"""``tickerlake serve``: the web dashboard and JSON API on the lake (QuickSight, the Athena
console and the Glue catalog view in one local server).

FastAPI and uvicorn are imported inside the command so that every other command starts
without them.

Listening beyond loopback needs an active access token in the lake (``tickerlake tokens
create``); the server then requires tokens and prints what it exposes. On loopback it
stays open while the lake has no token, and enforces the tokens as soon as it has one.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

import typer
from rich.markup import escape

from tickerlake.cli._app import app
from tickerlake.cli._common import JsonOpt, console, fail, settings_of, user_errors
from tickerlake.config import Settings

__all__ = ["serve"]


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket, bound before the URL is printed so that the URL is true.

    Raises:
        typer.Exit: The address cannot be bound (after a one-line error).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise fail(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    family, kind, proto, _, address = infos[0]
    # The protocol must be IPPROTO_TCP (not 0): asyncio only sets TCP_NODELAY on accepted
    # sockets that say so, and without it small answers wait ~40 ms for delayed ACKs.
    sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise fail(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.set_inheritable(True)
    return sock


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: str = typer.Option(None, "--host", help="Bind address [default: 127.0.0.1, TICKERLAKE_HOST]."),
    port: int = typer.Option(
        None, "--port", help="Port, 0 for any free one [default: 8050, TICKERLAKE_PORT]."
    ),
    live: bool = typer.Option(
        False, "--live", help="Also read a tick topic live: the Live page and /api/live (see `stream live`)."
    ),
    live_topic: str = typer.Option("ticks", "--live-topic", help="With --live: the tick topic."),
    live_from: str = typer.Option(
        "300", "--live-from", help="With --live: earliest, latest or seconds to look back (300, 5m)."
    ),
    bootstrap: str = typer.Option(
        None,
        "--bootstrap-servers",
        envvar="TICKERLAKE_BOOTSTRAP_SERVERS",
        help="With --live: Kafka bootstrap servers [default: settings, else the dev broker].",
    ),
    watch: bool = typer.Option(
        False, "--watch", help="Also crawl + ETL when raw files land (see `tickerlake watch`)."
    ),
    schedule: list[str] = typer.Option(
        None,
        "--schedule",
        help="With --watch: a scheduled ingest 'CRON=ingest SOURCE [options]' (repeatable).",
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Serve the dashboard (Market, Insights, SQL, Catalog, Live, Pipeline) and the JSON API until Ctrl+C."""
    settings = settings_of(ctx)
    host = host or settings.host
    port = settings.port if port is None else port
    start = _live_start(live_from)
    try:
        import uvicorn

        from tickerlake.web.app import create_app, warm_static
        from tickerlake.web.auth import TokenStore, describe_exposure, serve_policy
    except ModuleNotFoundError as e:
        raise fail(f"the web server needs {e.name}, a dependency of tickerlake: pip install -e .") from None
    # Decide access before binding: an address reachable from other machines is never
    # opened, not even for a moment, without tokens to protect it.
    tokens = TokenStore(settings)
    with user_errors():
        policy = serve_policy(host, tokens.load())
    exposure = describe_exposure(settings, policy)
    # Bind first: a busy port is reported at once, not after the lake has been read.
    sock = _listen(host, port)
    try:
        with user_errors():
            feed = _live_feed(settings, live_topic, start, bootstrap) if live else None
            web = create_app(settings, tokens=tokens, require_auth=not policy.loopback, live=feed)
            # Read the bars and open the SQL engine before announcing the URL: the first pages
            # then draw at full speed, and a lake that cannot be read is reported here, in one line.
            web.state.cache.market()
            watcher = _watcher(settings, schedule or []) if watch or schedule else None
        # Counting the raw tables scans the raw zone (seconds on a universe): in the
        # background, so the first answer does not wait for it.
        threading.Thread(
            target=_warm_engine, args=(settings, web.state.cache.idle_s), name="warm-sql", daemon=True
        ).start()
        warm_static()
    except BaseException:
        sock.close()
        raise
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}/"
    if as_json:
        sys.stdout.write(
            json.dumps(
                {
                    "url": url,
                    "lake": settings.lake_uri,
                    "api": url + "api/",
                    "pid": _pid(),
                    "live": {"topic": live_topic} if live else None,
                    "watch": {"schedules": watcher.next_runs()} if watcher else None,
                    "auth": {"required": policy.enforced, "loopback": policy.loopback, **exposure},
                }
            )
            + "\n"
        )
        sys.stdout.flush()
    else:
        console.print(
            f"tickerlake dashboard on [bold]{settings.lake_uri.removeprefix('file://')}[/]",
            highlight=False,
            soft_wrap=True,
        )
        console.print(
            f"  open  [bold cyan]{url}[/]   (API: {url}api/… · OpenAPI: {url}openapi.json)",
            highlight=False,
            soft_wrap=True,
        )
        console.print(f"  access  {escape(exposure['access'])}", highlight=False, soft_wrap=True)
        if not policy.loopback:
            # Say plainly what other machines can now reach.
            console.print(
                f"  [bold yellow]exposed beyond this machine on {escape(host)}[/]: "
                + escape(
                    f"pages {exposure['pages']}; API {exposure['api']}; SQL {exposure['sql']}; {exposure['writes']}"
                ),
                highlight=False,
                soft_wrap=True,
            )
        if live:
            console.print(
                f"  live  {url}live reading topic [bold]{escape(live_topic)}[/] · pipeline {url}pipeline",
                highlight=False,
                soft_wrap=True,
            )
        if watcher is not None:
            console.print(
                "  watch  raw files are crawled and loaded as they land", highlight=False, soft_wrap=True
            )
        console.print("  press Ctrl+C to stop", style="dim", highlight=False, soft_wrap=True)
    config = uvicorn.Config(
        web, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=3
    )
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        if feed is not None:
            feed.stop()
        if watcher is not None:
            watcher.stop()


def _live_start(value: str) -> str | float:
    from tickerlake.stream.live.consumer import parse_start

    try:
        return parse_start(value)
    except ValueError:
        raise fail(f"--live-from: {value!r} is not earliest, latest or a number of seconds") from None


def _live_feed(settings: Settings, topic: str, start: str | float, bootstrap: str | None) -> Any:
    """A started live feed (its reader waits for the broker and the topic by itself)."""
    from tickerlake.service.live import LiveFeed, LiveOptions

    return LiveFeed(settings, LiveOptions(topic=topic, start=start, bootstrap=bootstrap)).start()


def _watcher(settings: Settings, schedules: list[str]) -> Any:
    """A started watcher of the lake (crawl + ETL on new raw files, scheduled ingests)."""
    from tickerlake.service.watch import start_watch

    return start_watch(settings, schedules)


#: Seconds without an answer being computed before ``serve`` counts the raw tables.
WARM_IDLE_S = 2.0
# A short pause between requests, enough for the warm-up's next step of a few hundred ms.
_BREATHER_S = 0.3


def _warm_engine(settings: Settings, idle_s: Callable[[], float] | None = None) -> None:
    """Import pandas; then, in pauses between answers (``idle_s``), open the SQL engine and
    build the exchange calendar, and once no answer has been computed for
    :data:`WARM_IDLE_S`, count the raw tables (what the catalog page asks first).

    The count scans the raw zone: tens of seconds and a few hundred megabytes on a
    universe, which on top of a universe-wide insight's own would take ``serve`` past a
    gigabyte; so it waits for a pause between requests. A failure is not fatal here: the
    market pages do not need the engine, and the SQL and catalog endpoints report the
    same error to whoever asks.
    """
    # First, at normal priority (a request that needs it meanwhile waits on this import):
    # pandas, for the insights' rolling statistics; serve does not import it to start
    # (about a second), and neither should the first anomaly.
    import os
    import time

    import pandas  # noqa: F401

    from tickerlake.calendar import FIRST_DAY, next_trading_days
    from tickerlake.query.engine import get_engine

    # Lowest CPU priority for the rest of this thread and the engine's threads it starts
    # (Linux threads carry their own nice value), and only between requests: a thread
    # holding the GIL slows the request threads whatever its priority.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)

    def pause(seconds: float) -> None:
        while idle_s is not None and idle_s() < seconds:
            time.sleep(0.05)

    pause(_BREATHER_S)
    with contextlib.suppress(Exception):
        get_engine(settings)
    # A forecast's future days need the exchange calendar (a quarter of a second to build).
    pause(_BREATHER_S)
    with contextlib.suppress(Exception):
        next_trading_days(FIRST_DAY, 1)
    pause(WARM_IDLE_S)
    with contextlib.suppress(Exception):
        get_engine(settings).tables(row_counts=True)


def _pid() -> int:
    import os

    return os.getpid()
