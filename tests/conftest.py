"""Suite-wide rule: no test passes by skipping.

A test that skips because a component is absent (a missing package, browser or service)
would let a broken install look green, so any skip is reported as a failure with its
reason. Expected failures (``xfail``) are not skips and are unaffected.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped tests are failures here: {reason}"
