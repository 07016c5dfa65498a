"""A bounded schemathesis pass over the served OpenAPI schema: whatever parameters the
schema allows (and many it does not), the API answers without a server error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tickerlake.config import Settings
from tickerlake.web.app import create_app
from tickerlake.web.data import LakeCache

pytestmark = pytest.mark.integration

# The schema is loaded when the module is collected, before the session's lake exists;
# producing the schema does not read the lake, and the fixture below points the app at
# the simulated lake before any case runs. (schemathesis' lazy fixture loader does not
# work with this pytest version.)
APP = create_app(Settings(lake="/nonexistent/until-the-fixture-sets-it"))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def _serve_the_sim_lake(sim_lake: Settings) -> Iterator[None]:
    APP.state.cache = LakeCache(sim_lake)
    yield


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: Any) -> None:
    case.call_and_validate(checks=[not_a_server_error])
