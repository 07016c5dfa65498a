"""The web app's error mapping end to end: 404 from NotFoundError, 503 with Retry-After,
generic 500s (see :mod:`tickerlake.web.errors`)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tickerlake.errors import TransientError

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("method", "path", "body", "detail"),
    [
        ("get", "/api/catalog/tables/market.nothing", None, "no table 'market.nothing'"),
        ("post", "/api/query", {"named": "nothing"}, "unknown named query 'nothing'"),
    ],
)
def test_missing_things_are_404_from_not_found_error(
    client: Any, method: str, path: str, body: dict[str, Any] | None, detail: str
) -> None:
    resp = client.post(path, json=body) if method == "post" else client.get(path)
    assert resp.status_code == 404
    payload = resp.json()
    # The class name: NotFoundError or a subclass of it (an unknown named query says so).
    assert payload["error"] in {"NotFoundError", "UnknownNamedQuery"}
    assert payload["detail"].startswith(detail) and "\n" not in payload["detail"]


def test_a_briefly_unreachable_lake_is_503_with_retry_after(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(settings: Any) -> Any:
        raise TransientError(
            "loading market.daily_bars: the object store did not answer for 60 s (curlCode: 7)"
        )

    monkeypatch.setattr("tickerlake.query.engine.get_engine", down)
    resp = client.get("/api/catalog")
    assert resp.status_code == 503
    assert resp.headers["retry-after"] == "5"
    assert resp.json() == {
        "error": "TransientError",
        "detail": "loading market.daily_bars: the object store did not answer for 60 s (curlCode: 7)",
    }


def test_a_bug_is_a_generic_500_and_the_details_stay_in_the_log(
    client: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(settings: Any) -> Any:
        raise KeyError("secret_access_key=abc123 at /srv/lake/catalog.db")

    monkeypatch.setattr("tickerlake.query.engine.get_engine", broken)
    with caplog.at_level(logging.ERROR, logger="tickerlake.web"):
        resp = client.get("/api/catalog")
    assert resp.status_code == 500
    assert resp.json()["error"] == "InternalError"
    assert "abc123" not in resp.text and "catalog.db" not in resp.text
    assert any("GET /api/catalog" in r.getMessage() and r.exc_info for r in caplog.records)
