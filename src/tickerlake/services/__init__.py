"""Dev services: the Apache Kafka broker, the S3Proxy server and a PostgreSQL catalog server.

:func:`up`, :func:`down` and :func:`status` start, stop and check them; state lives in
``<state dir>/services/``. Java 17+ runs Kafka and S3Proxy and Maven fetches their jars on first use;
PostgreSQL is Debian's package.
The names below are loaded on first use, so ``python -m tickerlake.services.jars`` does
not import the launcher first.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "SERVICES",
    "S3Endpoint",
    "ServiceRecord",
    "ServiceStatus",
    "bootstrap_servers",
    "dev_s3",
    "down",
    "status",
    "up",
]

_HOME = {name: "tickerlake.services.launcher" for name in __all__} | {
    "S3Endpoint": "tickerlake.services.s3proxy"
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
