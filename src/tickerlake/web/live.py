"""The live half of the API under ``/api/live``: a snapshot, the pushed update stream, pipeline health.

Updates are pushed with Server-Sent Events (``text/event-stream``): one long response per
client that the browser's ``EventSource`` reopens by itself after a dropped connection or
a server restart (the stream asks for a 1 s retry). Every (re)connection starts with a full
snapshot, so a client never has to stitch a gap. The live feed (:class:`tickerlake.service.live.LiveFeed`)
publishes at most ten coalesced updates a second from its own thread; :class:`Hub` encodes
each update once and fans the bytes out to every connected client's bounded queue on the
event loop. A client too slow to keep up gets a fresh snapshot instead of a backlog.

Without ``serve --live`` the endpoints still answer: the snapshot and the stream say that
the live view is off and how to turn it on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from tickerlake.jsonable import jsonable

__all__ = ["Hub", "PipelinePoller", "install_live", "router"]

_QUEUE = 64
_KEEPALIVE_S = 15.0
_PIPELINE_EVERY_S = 2.0
OFF = {
    "state": "off",
    "detail": "the live view is off: start the server with `tickerlake serve --live` "
    "(and a stream with `tickerlake stream replay --speed 60x`)",
}


class Hub:
    """Fans encoded messages out from a publishing thread to the SSE clients on the event loop."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[bytes | None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    @property
    def clients(self) -> int:
        """Connected clients."""
        return len(self._queues)

    def attach(self) -> asyncio.Queue[bytes | None]:
        """A new client's queue (call on the event loop)."""
        q: asyncio.Queue[bytes | None] = asyncio.Queue(_QUEUE)
        with self._lock:
            self._loop = asyncio.get_running_loop()
            self._queues.add(q)
        return q

    def detach(self, q: asyncio.Queue[bytes | None]) -> None:
        """Forget a client."""
        with self._lock:
            self._queues.discard(q)

    def publish(self, message: dict[str, Any], event: str = "live") -> None:
        """Send a message to every client (from any thread)."""
        with self._lock:
            loop = self._loop if self._queues else None
        if loop is None or loop.is_closed():
            return
        data = sse(message, event)
        with contextlib.suppress(RuntimeError):  # the loop is shutting down
            loop.call_soon_threadsafe(self._fan_out, data)

    def _fan_out(self, data: bytes) -> None:
        for q in list(self._queues):
            if q.full():
                # A client that cannot keep up: drop its backlog, it will reload a snapshot.
                while not q.empty():
                    q.get_nowait()
                q.put_nowait(None)
            else:
                q.put_nowait(data)


def sse(message: dict[str, Any], event: str) -> bytes:
    """One Server-Sent Event."""
    body = json.dumps(jsonable(message), separators=(",", ":"), allow_nan=False)
    return f"event: {event}\ndata: {body}\n\n".encode()


class PipelinePoller:
    """Reads pipeline health every couple of seconds while someone watches, and publishes it."""

    def __init__(self, read: Callable[[], dict[str, Any]], hub: Hub) -> None:
        self.read = read
        self.hub = hub
        self.latest: dict[str, Any] | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._woken = 0.0

    def wake(self) -> None:
        """Make sure the poller runs (it stops by itself when nobody watched for 30 s)."""
        with self._lock:
            self._woken = time.monotonic()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="pipeline-poller", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        idle_since: float | None = None
        while True:
            if self.hub.clients == 0:
                idle_since = idle_since or time.monotonic()
                with self._lock:
                    # A client woke it just now and is about to attach: keep going.
                    if time.monotonic() - max(idle_since, self._woken) > 30:
                        self._thread = None
                        return
            else:
                idle_since = None
                try:
                    self.latest = {"type": "pipeline", **self.read()}
                except Exception as e:  # reported to the page; the poller keeps going
                    self.latest = {"type": "pipeline", "problem": f"{type(e).__name__}: {e}"}
                self.hub.publish(self.latest, "pipeline")
            time.sleep(_PIPELINE_EVERY_S)


# --------------------------------------------------------------------------- models (for the schema)


class LiveStatusOut(BaseModel):
    """Where the live reader stands."""

    state: str = Field(description="off, starting, waiting (no broker or topic yet), reading or stopped.")
    detail: str = Field("", description="One line on the state: what is missing, or what is read.")
    topic: str | None = None
    events_per_s: float | None = None
    lag: int | None = Field(None, description="Records the live view has not read yet.")
    idle: bool | None = Field(None, description="No record for 10 s: no stream is running.")


class LiveSnapshotOut(BaseModel):
    """The live view from scratch: quotes for the tape, bars per timeframe, alerts."""

    type: str = "snapshot"
    running: bool = Field(description="Whether this server runs a live view (`serve --live`).")
    status: dict[str, Any]
    timeframes_s: list[int] = []
    alert_z: float | None = None
    quotes: list[dict[str, Any]] = Field(
        [], description="Per ticker: last, change vs previous close, VWAP..."
    )
    bars: dict[str, dict[str, list[dict[str, Any]]]] = Field(
        {}, description="Timeframe (s) -> ticker -> bars {t (ms), o, h, l, c, v, n, vwap, final, z}."
    )
    alerts: list[dict[str, Any]] = Field([], description="Newest first.")
    rejections: list[str] = []


class PipelineOut(BaseModel):
    """Pipeline health: the stream, its sink and live view, the last crawls and ETL runs."""

    at: str = Field(description="When it was read (ISO, UTC).")
    stream: dict[str, Any] = Field(
        description="Topic, events/s in, sink and live lag (total and per partition), the sink's last "
        "commit and its age, dead letters and the latest reasons; `problem` when Kafka cannot be read."
    )
    crawls: list[dict[str, Any]] = Field(description="Newest first: files scanned, tables changed, problems.")
    etl_runs: list[dict[str, Any]] = Field(
        description="Newest first: tables, read, loaded, duplicates, quarantined and whether they reconcile."
    )
    problem: str | None = Field(None, description="Why crawls and runs could not be read.")
    live: dict[str, Any] = Field(description="The live view's reader (state `off` without `serve --live`).")


router = APIRouter(prefix="/api/live", tags=["live"])


def _feed(app: Any) -> Any:
    return getattr(app.state, "live", None)


def _snapshot(request: Request, bars: int | None) -> dict[str, Any]:
    feed = _feed(request.app)
    if feed is None:
        return {"type": "snapshot", "running": False, "status": OFF, "sent_ms": int(time.time() * 1000)}
    return {"running": True, **feed.snapshot(bars)}


Bars = Annotated[
    int | None, Query(ge=1, le=5000, description="Bars per ticker and timeframe at most (newest).")
]


@router.get("/snapshot", response_model=LiveSnapshotOut, summary="The live view: tape, bars, alerts")
def live_snapshot(request: Request, bars: Bars = None) -> Response:
    """Quotes (last, change vs previous close, VWAP, session high/low), event-time bars per
    timeframe and ticker, the newest alerts and the reader's state."""
    return Response(
        json.dumps(jsonable(_snapshot(request, bars)), allow_nan=False), media_type="application/json"
    )


async def _events(
    request: Request, hub: Hub, first: Callable[[], dict[str, Any]], event: str, once: bool
) -> AsyncIterator[bytes]:
    if once:
        # Nothing is pushed without a live view: one answer (saying so), and the browser asks again in 5 s.
        yield b"retry: 5000\n\n"
        yield sse({**await run_in_threadpool(first), "once": True}, event)
        return
    q = hub.attach()
    try:
        # EventSource reconnects after this many ms when the connection drops (server restart).
        yield b"retry: 1000\n\n"
        yield sse(await run_in_threadpool(first), event)
        while True:
            try:
                data = await asyncio.wait_for(q.get(), _KEEPALIVE_S)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield b": keepalive\n\n"
                continue
            yield data if data is not None else sse(await run_in_threadpool(first), event)
    finally:
        hub.detach(q)


_SSE_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}, "description": "An event stream."}
}


@router.get(
    "/events",
    summary="The live view, pushed (Server-Sent Events)",
    response_class=StreamingResponse,
    responses=_SSE_DOC,
)
async def live_events(request: Request, bars: Bars = 500) -> StreamingResponse:
    """``event: live`` messages (without a live view: one snapshot saying so): first a snapshot (as ``/api/live/snapshot``), then at most ten
    updates a second with the quotes of the tickers that traded, their changed bars and new
    alerts (``type: update``), and a status every second. ``produced_ms`` holds the Kafka
    record times of the oldest and newest event an update covers."""
    hub: Hub = request.app.state.live_hub
    return StreamingResponse(
        _events(request, hub, lambda: _snapshot(request, bars), "live", once=_feed(request.app) is None),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _pipeline_read(app: Any, topic: str | None) -> dict[str, Any]:
    from tickerlake.service.pipeline import pipeline_health

    feed = _feed(app)
    positions = None
    if feed is not None and (topic is None or topic == feed.options.topic):
        topic = feed.options.topic
        positions = {p: o for p, (o, _) in feed.consumer.status.partitions.items()}
    health = pipeline_health(
        app.state.cache.settings,
        topic or "ticks",
        bootstrap=feed.options.bootstrap if feed is not None else None,
        live_positions=positions or None,
    )
    out: dict[str, Any] = jsonable(health)
    out["live"] = feed.status() if feed is not None else OFF
    return out


Topic = Annotated[
    str | None, Query(max_length=249, description="Tick topic (default: the live view's, else ticks).")
]


@router.get(
    "/pipeline",
    response_model=PipelineOut,
    summary="Pipeline health: stream lag, commits, dead letters, crawls, ETL runs",
)
def live_pipeline(request: Request, topic: Topic = None) -> Response:
    """Events/s into the topic, lag per partition for the sink's and the live view's groups,
    the sink's last commit and its age, dead letters with their latest reasons, and the last
    crawls and ETL runs with their counts."""
    return Response(
        json.dumps(jsonable(_pipeline_read(request.app, topic)), allow_nan=False),
        media_type="application/json",
    )


@router.get(
    "/pipeline/events",
    summary="Pipeline health, pushed every 2 s (Server-Sent Events)",
    response_class=StreamingResponse,
    responses=_SSE_DOC,
)
async def live_pipeline_events(request: Request) -> StreamingResponse:
    """``event: pipeline`` messages with the answer of ``/api/live/pipeline``, every 2 seconds
    (without a live view, ``serve`` without ``--live``: one message, and the browser asks again)."""
    poller: PipelinePoller = request.app.state.pipeline_poller
    once = _feed(request.app) is None
    if not once:
        poller.wake()

    def first() -> dict[str, Any]:
        if once or poller.latest is None:
            return {"type": "pipeline", **_pipeline_read(request.app, None)}
        return poller.latest

    return StreamingResponse(
        _events(request, poller.hub, first, "pipeline", once),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def install_live(app: Any, feed: Any = None) -> None:
    """Add the live routes to ``app`` and connect a running :class:`~tickerlake.service.live.LiveFeed` (if any)."""
    app.state.live = feed
    app.state.live_hub = Hub()
    app.state.pipeline_poller = PipelinePoller(lambda: _pipeline_read(app, None), Hub())
    if feed is not None:
        feed.subscribe(app.state.live_hub.publish)
    app.include_router(router)
