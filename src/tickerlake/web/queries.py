"""The query console's API beyond running SQL: saved queries, the query history, cancelling
a running query, and results streamed page by page.

Thin shells over :mod:`tickerlake.service.queries`, the functions ``tickerlake query
--save/--delete/--history`` calls. Saving, changing and deleting a saved query or the
history are writes (the ``write`` role when access control is on); listing is a read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from tickerlake.errors import TickerlakeError
from tickerlake.jsonable import jsonable
from tickerlake.query.history import HistoryEntry
from tickerlake.query.saved import MAX_DESCRIPTION, MAX_SQL, SavedQuery
from tickerlake.service import queries
from tickerlake.web.api import _QUERY_ERRORS, QueryIn, caller
from tickerlake.web.data import LakeCache, dumps

__all__ = ["router"]

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api", tags=["query"])

SavedName = Annotated[str, Path(max_length=100, description="The saved query's name.")]


class ParamIn(BaseModel):
    """A declared parameter of a saved query."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=63, description="Its name: $name in the SQL.")
    type: Literal["date", "text", "int", "float", "tickers"] = "text"
    optional: bool = False
    doc: str = Field("", max_length=200)


class SavedIn(BaseModel):
    """A query to save."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=100, description="Lower-case letters, digits and _, starting with a letter.")
    sql: str = Field(max_length=MAX_SQL, description="One read-only statement; parameters as $name.")
    description: str = Field("", max_length=MAX_DESCRIPTION)
    params: list[ParamIn] = Field(default_factory=list, max_length=20)
    replace: bool = Field(False, description="Change the saved query of that name (else: 400 if it exists).")


class CancelIn(BaseModel):
    """Which running query to stop."""

    model_config = ConfigDict(extra="forbid")

    cancel_key: str = Field(
        pattern=r"^[A-Za-z0-9_-]{1,64}$", description="The key the query was started with."
    )


def _settings(request: Request) -> Any:
    cache: LakeCache = request.app.state.cache
    return cache.settings


def _json(body: bytes) -> Response:
    return Response(content=body, media_type="application/json")


@router.get("/saved", response_model=list[SavedQuery], summary="Saved queries")
def saved_list(request: Request) -> Response:
    """The queries saved in the lake, shared by everyone who uses it (built-in ones: /api/named)."""
    return _json(dumps(queries.saved_queries(_settings(request))))


@router.get("/saved/{name}", response_model=SavedQuery, responses=_QUERY_ERRORS, summary="One saved query")
def saved_get(request: Request, name: SavedName) -> Response:
    """A saved query with its SQL and parameters; run it with POST /api/query {"named": name}."""
    return _json(dumps(queries.get_saved(_settings(request), name)))


@router.post("/saved", response_model=SavedQuery, responses=_QUERY_ERRORS, summary="Save a query")
def saved_save(request: Request, body: Annotated[SavedIn, Body()]) -> Response:
    """Save a query in the lake (or change one, with ``replace``). The SQL must pass the
    read-only guard (403 otherwise), and passes it again on every run."""
    saved = queries.save_query(
        _settings(request),
        body.name,
        body.sql,
        body.description,
        [p.model_dump() for p in body.params],
        replace=body.replace,
    )
    return _json(dumps(saved))


@router.delete(
    "/saved/{name}", response_model=SavedQuery, responses=_QUERY_ERRORS, summary="Delete a saved query"
)
def saved_delete(request: Request, name: SavedName) -> Response:
    """Delete a saved query; answers what it was."""
    return _json(dumps(queries.delete_saved(_settings(request), name)))


@router.get("/history", response_model=list[HistoryEntry], summary="Query history")
def history(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=500, description="How many runs, newest first.")] = 50,
    status: Annotated[
        Literal["ok", "error", "refused", "timeout", "cancelled"] | None,
        Query(description="Only runs with this status."),
    ] = None,
) -> Response:
    """The lake's recent query runs (CLI and web): status, duration, rows, the error of failed ones."""
    return _json(dumps(queries.history(_settings(request), limit, status)))


@router.delete("/history", summary="Clear the query history")
def history_clear(request: Request) -> dict[str, int]:
    """Delete the lake's query history."""
    return {"deleted": queries.clear_history(_settings(request))}


@router.post("/query/cancel", summary="Cancel a running query")
def cancel(request: Request, body: Annotated[CancelIn, Body()]) -> dict[str, bool]:
    """Stop the caller's running query started with this ``cancel_key`` (it then answers 400
    "query cancelled"); ``cancelled`` is false when none runs under that key."""
    _, prefix = caller(request)
    return {"cancelled": queries.cancel(prefix + body.cancel_key)}


@router.post(
    "/query/stream",
    responses={**_QUERY_ERRORS, 200: {"content": {"application/x-ndjson": {}}, "description": "JSON lines."}},
    summary="Run read-only SQL, answer rows page by page as they come",
)
def query_stream(request: Request, body: Annotated[QueryIn, Body()]) -> Response:
    """The same query as ``POST /api/query``, answered as JSON lines while it runs: first the
    columns (``{"columns", "types", "sql", "limit", "run_id"}``), then ``{"rows": [...]}``
    pages of at most 500 rows as the engine produces them, then ``{"done": true, "row_count",
    "truncated", "elapsed_ms"}``. A refused or failing statement answers its error status
    before any line; an error while rows flow (time limit, cancel) ends the stream with
    ``{"error": type, "detail": message}``."""
    import time

    from tickerlake.retry import first_line

    user, prefix = caller(request)
    key = prefix + body.cancel_key if body.cancel_key else None
    req = queries.QueryRequest(body.sql, body.named, body.params, body.limit, body.timeout_s, key)
    started = time.perf_counter()
    running = queries.stream(_settings(request), req, capped=True, source="web", user=user)
    head = {"columns": running.columns, "types": running.types, "sql": running.sql, "limit": running.limit,
            "run_id": running.run_id}  # fmt: skip

    def lines() -> Iterator[bytes]:
        yield json.dumps(head, default=str).encode() + b"\n"
        try:
            for page in running.pages:
                rows = [[jsonable(v) for v in row] for row in page]
                yield json.dumps({"rows": rows}, separators=(",", ":"), default=str).encode() + b"\n"
        except Exception as e:  # the status line is sent: the error becomes the last line
            if isinstance(e, TickerlakeError):
                problem = {"error": type(e).__name__, "detail": first_line(e, limit=500)}
            else:  # a bug: the details go to the server's log only, as for any 500
                log.exception("query stream failed")
                problem = {"error": "InternalError", "detail": "internal error (see the server log)"}
            yield json.dumps(problem).encode() + b"\n"
            return
        done = {"done": True, **running.state, "elapsed_ms": round((time.perf_counter() - started) * 1000, 3)}
        yield json.dumps(done).encode() + b"\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")
