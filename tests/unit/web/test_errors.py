"""How user errors map to HTTP statuses."""

from __future__ import annotations

import pytest

from tickerlake.errors import QueryRefused, TickerlakeError
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
from tickerlake.web.api import NotFound, status_for


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (QueryRefused("refused: DROP"), 403),
        (UnknownTicker("unknown ticker ZZZ"), 404),
        (UnknownPeriod("unknown period 'x'"), 404),
        (NoData("the lake holds no daily bars yet"), 404),
        (NotFound("no table 'x'"), 404),
        (NamedQueryError("unknown named query 'x' (known: a)"), 404),
        (NamedQueryError("q: missing parameter start"), 400),
        (QueryError("Parser Error: syntax error"), 400),
        (QueryTimeout("query stopped at the 1 s time limit"), 400),
        (BadInput("bad ticker"), 400),
        (DateOutsideData("outside the data"), 400),
        (WindowTooShort("too short"), 400),
        (TickerlakeError("anything else"), 400),
    ],
)
def test_status_for(error: TickerlakeError, status: int) -> None:
    assert status_for(error) == status
