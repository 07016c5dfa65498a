"""The one mapping from errors to HTTP statuses and JSON bodies, installed on the web app.

==========================================================  ======  =========================
error (see :mod:`tickerlake.errors`)                        status  body ``detail``
==========================================================  ======  =========================
``UserError`` (``InputFileError``, ``QueryError``...)       400     the error's one line
``RefusedError`` (``QueryRefused``)                         403     the error's one line
``NotFoundError``                                           404     the error's one line
request validation (FastAPI)                                422     the first problems
``TransientError``                                          503     one line + ``Retry-After``
``InternalError`` and any other exception                   500     generic, with a log id
==========================================================  ======  =========================

Bodies are ``{"error": type name, "detail": one line}``. A bare ``TickerlakeError`` is a
user error (400). Unexpected errors never show their text or a traceback to the client:
the details go to the server log under an id that the body quotes.

This module imports nothing of the app or the API (the HTML 404 page is passed in), so
``web.app`` → ``web.api`` has no cycle.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tickerlake.errors import (
    TickerlakeError,
    TransientError,
    outcome_of,
)
from tickerlake.retry import first_line

__all__ = ["DEFAULT_RETRY_AFTER_S", "error_response", "install_error_handlers", "status_for"]

#: ``Retry-After`` seconds for a :class:`TransientError` that gives no hint of its own.
DEFAULT_RETRY_AFTER_S = 5

_log = logging.getLogger("tickerlake.web")


def status_for(exc: BaseException) -> int:
    """The HTTP status of an error, by its class alone (:data:`tickerlake.errors.OUTCOMES`)."""
    return outcome_of(exc)[1]


def _body(kind: str, detail: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": kind, "detail": detail}, status_code=status, headers=headers)


def error_response(exc: BaseException, where: str = "") -> JSONResponse:
    """The JSON answer for an exception: status by :func:`status_for`, one-line detail.

    Args:
        exc: The error.
        where: The request (method and path), for the log line of a 500.
    """
    status = status_for(exc)
    if status == 500:
        # The message of an unexpected error may hold paths, SQL or secrets: log it, show an id.
        ref = uuid.uuid4().hex[:12]
        _log.error("internal error %s at %s", ref, where or "?", exc_info=exc)
        return _body("InternalError", f"internal error (reference {ref}); see the server log", 500)
    headers = None
    if isinstance(exc, TransientError):
        after = exc.retry_after_s if exc.retry_after_s is not None else DEFAULT_RETRY_AFTER_S
        headers = {"Retry-After": str(max(1, math.ceil(after)))}
    return _body(type(exc).__name__, first_line(exc, limit=2000), status, headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "body", "path")]
        where = ".".join(loc) or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI, not_found_page: Callable[[Request], Response] | None = None) -> None:
    """Install the mapping as the app's exception handlers.

    Args:
        app: The FastAPI application.
        not_found_page: Renders the HTML 404 page for unknown non-API paths; without it
            they get the JSON body too.
    """

    @app.exception_handler(TickerlakeError)
    async def _tickerlake(request: Request, exc: TickerlakeError) -> JSONResponse:
        return error_response(exc, f"{request.method} {request.url.path}")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _body("ValidationError", _validation_message(exc), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and not_found_page is not None and not request.url.path.startswith("/api"):
            return not_found_page(request)
        return _body("HTTPError", str(exc.detail), exc.status_code, dict(exc.headers or {}) or None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return error_response(exc, f"{request.method} {request.url.path}")
