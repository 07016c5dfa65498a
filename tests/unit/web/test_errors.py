"""The one mapping from errors to HTTP statuses and JSON bodies (:mod:`tickerlake.web.errors`)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tickerlake.errors import (
    InputFileError,
    InternalError,
    NotFoundError,
    QueryRefused,
    RefusedError,
    TickerlakeError,
    TransientError,
    UserError,
)
from tickerlake.insights import (
    BadInput,
    DateOutsideData,
    NoData,
    UnknownPeriod,
    UnknownTicker,
    WindowTooShort,
)
from tickerlake.query import NamedQueryError, QueryError
from tickerlake.query.engine import QueryTimeout
from tickerlake.web.errors import DEFAULT_RETRY_AFTER_S, install_error_handlers, status_for


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (UserError("bad"), 400),
        (InputFileError("a.csv", "empty file"), 400),
        (QueryError("Parser Error: syntax error"), 400),
        (QueryTimeout("query stopped at the 1 s time limit"), 400),
        (NamedQueryError("q: missing parameter start"), 400),
        (BadInput("bad ticker"), 400),
        (DateOutsideData("outside the data"), 400),
        (WindowTooShort("too short"), 400),
        (TickerlakeError("a bare one is a user error"), 400),
        (RefusedError("not allowed"), 403),
        (QueryRefused("refused: DROP"), 403),
        (NotFoundError("no table 'x'"), 404),
        (UnknownTicker("unknown ticker ZZZ"), 404),
        (UnknownPeriod("unknown period 'x'"), 404),
        (NoData("the lake holds no daily bars yet"), 404),
        (TransientError("store down"), 503),
        (InternalError("broken invariant"), 500),
        (RuntimeError("boom"), 500),
        (ValueError("boom"), 500),
    ],
)
def test_status_is_decided_by_class(error: BaseException, status: int) -> None:
    assert status_for(error) == status


def test_the_message_does_not_decide() -> None:
    # A user error whose text sounds like "not found" stays a 400: no message matching.
    assert status_for(NamedQueryError("unknown named query 'x' (known: a)")) == 400
    assert status_for(UserError("no such thing")) == 400


def _client(error: BaseException) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/api/fail")
    def fail() -> None:
        raise error

    @app.get("/api/ok")
    def ok() -> dict[str, Any]:
        return {"ok": True}

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (UserError("bad date 'x'\nsecond line"), 400, "UserError"),
        (QueryRefused("refused: DROP"), 403, "QueryRefused"),
        (NotFoundError("no table 'x'"), 404, "NotFoundError"),
    ],
)
def test_user_facing_errors_give_their_first_line(error: BaseException, status: int, kind: str) -> None:
    resp = _client(error).get("/api/fail")
    assert resp.status_code == status
    assert resp.json() == {"error": kind, "detail": str(error).splitlines()[0]}


def test_transient_is_503_with_retry_after() -> None:
    resp = _client(TransientError("the object store did not answer")).get("/api/fail")
    assert resp.status_code == 503
    assert resp.headers["retry-after"] == str(DEFAULT_RETRY_AFTER_S)
    assert resp.json() == {"error": "TransientError", "detail": "the object store did not answer"}
    hinted = _client(TransientError("slow down", retry_after_s=0.2)).get("/api/fail")
    assert hinted.headers["retry-after"] == "1"  # whole seconds, at least one


@pytest.mark.parametrize(
    "error", [RuntimeError("secret /etc/x password=hunter2"), InternalError("bad state s3://k")]
)
def test_unexpected_errors_are_generic_500s_logged_with_an_id(
    error: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="tickerlake.web"):
        resp = _client(error).get("/api/fail")
    assert resp.status_code == 500
    body = resp.json()
    assert body["error"] == "InternalError"
    assert str(error) not in body["detail"] and "hunter2" not in resp.text
    ref = body["detail"].split("reference ")[1].split(")")[0]
    logged = [r for r in caplog.records if ref in r.getMessage()]
    assert logged and logged[0].exc_info is not None and logged[0].exc_info[1] is error
    assert "GET /api/fail" in logged[0].getMessage()


def test_unknown_route_and_validation() -> None:
    client = _client(UserError("x"))
    missing = client.get("/api/nothing")
    assert missing.status_code == 404 and missing.json() == {"error": "HTTPError", "detail": "Not Found"}
    assert client.post("/api/ok").status_code == 405


def test_html_404_page_is_used_off_the_api_only() -> None:
    from fastapi.responses import HTMLResponse

    app = FastAPI()
    install_error_handlers(app, not_found_page=lambda request: HTMLResponse("<p>gone</p>", status_code=404))
    client = TestClient(app)
    assert client.get("/nowhere").text == "<p>gone</p>"
    assert client.get("/api/nowhere").json()["error"] == "HTTPError"


def test_web_errors_does_not_import_the_app() -> None:
    import ast
    from pathlib import Path

    import tickerlake.web.errors as mod

    tree = ast.parse(Path(mod.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    assert not {"tickerlake.web.app", "tickerlake.web.api"} & imported
