"""The web dashboard and JSON API (``tickerlake serve``): Market, Insights, SQL and Catalog pages.

Import :func:`tickerlake.web.app.create_app` to build the application; FastAPI, Jinja2 and
uvicorn are needed only here, so the rest of the package runs without them.
"""

from __future__ import annotations

__all__: list[str] = []
