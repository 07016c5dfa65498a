"""The web app: the dashboard pages (Market, Insights, SQL, Catalog, API reference) and the
JSON API, in one FastAPI application.

Pages are Jinja templates that lay out the controls; their scripts draw the charts with
plotly.js: a partial bundle with the three trace types the pages draw when ``make install``
could build it with npm (scripts/plotly-partial.sh), else the ``plotly`` PyPI package's own
full copy (no CDN, nothing downloaded at run time, works offline). All data comes from the ``/api``
endpoints, which call the same operations of :mod:`tickerlake.service` as the CLI. The selection (tickers, window,
measure, chosen day, anomaly, query...) lives in the URL, so a view can be shared and
reloaded.

Access control (tokens, roles, the SQL rate limit, the body size limit and the ``/login``
page) is wired in by :func:`tickerlake.web.auth.install_access_control`.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import threading
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from tickerlake import __version__
from tickerlake.config import Settings
from tickerlake.errors import TickerlakeError
from tickerlake.jsonable import jsonable
from tickerlake.service.queries import named_queries
from tickerlake.web.api import router
from tickerlake.web.auth import TokenStore, install_access_control
from tickerlake.web.data import LakeCache
from tickerlake.web.errors import install_error_handlers
from tickerlake.web.live import install_live
from tickerlake.web.queries import router as queries_router
from tickerlake.web.watch import router as watch_router

__all__ = ["PAGES", "create_app", "plotly_js_path", "render_not_found", "warm_static"]

_HERE = Path(__file__).resolve().parent
_TEMPLATES = Jinja2Templates(directory=str(_HERE / "templates"))

#: The dashboard's pages: (path, template, title).
PAGES: tuple[tuple[str, str, str], ...] = (
    ("/", "market.html", "Market"),
    ("/insights", "insights.html", "Insights"),
    ("/sql", "sql.html", "SQL"),
    ("/catalog", "catalog.html", "Catalog"),
    ("/live", "live.html", "Live"),
    ("/pipeline", "pipeline.html", "Pipeline"),
)


#: The partial plotly.js (scatter, bar, candlestick) that ``make install`` builds when npm is
#: on the machine (scripts/plotly-partial.sh): a quarter of the full bundle to fetch and compile.
PARTIAL_PLOTLY = _HERE / "vendor" / "plotly-partial.min.js"


def plotly_js_path() -> Path | None:
    """The partial plotly.js if it was built, else the ``plotly.min.js`` bundled in the
    installed ``plotly`` package, if any.

    Found without importing plotly (its import is slow and its Python API is not needed).
    """
    if PARTIAL_PLOTLY.is_file():
        return PARTIAL_PLOTLY
    spec = importlib.util.find_spec("plotly")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "package_data" / "plotly.min.js"
        if path.is_file():
            return path
    return None


def _context(request: Request, page: str, title: str, **extra: Any) -> dict[str, Any]:
    """What every page template gets: the lake's meta (or why it is unavailable)."""
    cache: LakeCache = request.app.state.cache
    meta: dict[str, Any] = {"tickers": [], "first_date": None, "last_date": None, "trading_days": 0}
    problem = None
    try:
        market = cache.market()
        meta = {
            "tickers": list(market.tickers),
            "first_date": market.first_date.isoformat() if market.first_date else None,
            "last_date": market.last_date.isoformat() if market.last_date else None,
            "trading_days": len(market.dates),
        }
        if market.empty:
            problem = "The lake holds no daily bars yet: run `tickerlake ingest sim` and `tickerlake etl`."
    except TickerlakeError as e:
        problem = str(e)
    windows = jsonable(list(cache.windows().values()))
    return {
        "request": request,
        "page": page,
        "title": title,
        "pages": PAGES,
        "version": __version__,
        "lake": cache.settings.lake_uri,
        "meta": meta,
        "windows": windows,
        "problem": problem,
        **extra,
    }


def warm_static() -> None:
    """Compress plotly.js ahead of the first page view (the server does this before it announces its URL)."""
    path = plotly_js_path()
    if path is not None:
        _gzipped(path)


def render_not_found(request: Request) -> Response:
    """The HTML 404 page."""
    ctx = _context(request, "missing", "Not found", path=request.url.path)
    return _TEMPLATES.TemplateResponse(request, "missing.html", ctx, status_code=404)


def create_app(
    settings: Settings,
    cache: LakeCache | None = None,
    tokens: TokenStore | None = None,
    require_auth: bool = False,
    live: Any = None,
) -> FastAPI:
    """The dashboard and API for one lake.

    Args:
        settings: Runtime settings (lake, query limits, SQL rate and body size limits).
        cache: A prepared cache (tests); by default a new one for ``settings``.
        tokens: A prepared token store (tests); by default the lake's.
        require_auth: Demand a token even while the lake has none (``serve`` sets it
            for addresses beyond loopback). Tokens in the lake are enforced either way.
        live: A running :class:`tickerlake.service.live.LiveFeed` (``serve --live``) for the
            Live page and ``/api/live``; without one they say how to start it.
    """
    app = FastAPI(
        title="tickerlake",
        version=__version__,
        summary="Market data, insights, read-only SQL and the catalog of a tickerlake lake.",
        description=(
            "JSON API behind the tickerlake dashboard. Every endpoint calls the same functions "
            'as the `tickerlake` CLI. Errors are `{"error": type, "detail": message}`: 400 bad input, '
            "403 refused, 404 not found, 422 invalid parameters, 503 briefly unavailable (with "
            "Retry-After), 500 a bug (details only in the server log)."
        ),
        # The stock Swagger/ReDoc pages load their scripts from a CDN; /docs is our own offline page.
        docs_url=None,
        redoc_url=None,
    )
    app.state.cache = cache or LakeCache(settings)
    install_error_handlers(app, not_found_page=render_not_found)
    install_access_control(app, settings, tokens, require_auth=require_auth)
    app.include_router(router)
    install_live(app, live)
    app.include_router(queries_router)
    app.include_router(watch_router)
    app.mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static")

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js(request: Request) -> Response:
        path = plotly_js_path()
        if path is None:
            return Response(
                "/* plotly is not installed: pip install plotly==7.1.0 */",
                status_code=404,
                media_type="application/javascript",
            )
        etag, gzipped = _gzipped(path)
        # The file only changes with the package: browsers may keep it and revalidate by ETag.
        headers = {"Cache-Control": "max-age=86400", "ETag": etag, "Vary": "Accept-Encoding"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        if "gzip" not in request.headers.get("accept-encoding", ""):
            return FileResponse(path, media_type="application/javascript", headers=headers)
        # 4.8 MB of JavaScript is 1.4 MB gzipped: compressed once, sent in one piece.
        headers["Content-Encoding"] = "gzip"
        return Response(gzipped, media_type="application/javascript", headers=headers)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return FileResponse(_HERE / "static" / "favicon.svg", media_type="image/svg+xml")

    for path, template, title in PAGES:
        _add_page(app, path, template, title)

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    def api_docs(request: Request) -> Response:
        schema = app.openapi()
        endpoints = []
        for route, methods in schema.get("paths", {}).items():
            for method, op in methods.items():
                endpoints.append(
                    {
                        "method": method.upper(),
                        "path": route,
                        "summary": op.get("summary", ""),
                        "description": op.get("description", ""),
                        "tag": (op.get("tags") or ["other"])[0],
                        "params": [
                            {
                                "name": p["name"],
                                "where": p["in"],
                                "required": p.get("required", False),
                                "type": _schema_type(p.get("schema", {})),
                                "description": p.get("description", ""),
                            }
                            for p in op.get("parameters", [])
                        ],
                        "body": "requestBody" in op,
                    }
                )
        ctx = _context(request, "docs", "API", endpoints=endpoints)
        return _TEMPLATES.TemplateResponse(request, "docs.html", ctx)

    return app


_GZIP_CACHE: dict[tuple[str, int, int], tuple[str, bytes]] = {}
_GZIP_LOCK = threading.Lock()


def _gzipped(path: Path) -> tuple[str, bytes]:
    """An ETag and the gzip-compressed bytes of a static file, computed once per file version."""
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    with _GZIP_LOCK:
        hit = _GZIP_CACHE.get(key)
        if hit is None:
            data = path.read_bytes()
            etag = '"' + hashlib.sha256(data).hexdigest()[:20] + '"'
            hit = (etag, gzip.compress(data, compresslevel=6, mtime=0))
            _GZIP_CACHE.clear()
            _GZIP_CACHE[key] = hit
        return hit


def _schema_type(schema: dict[str, Any]) -> str:
    """A short type name of an OpenAPI parameter schema."""
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"])
    if "anyOf" in schema:
        return " | ".join(_schema_type(s) for s in schema["anyOf"] if s.get("type") != "null")
    kind = schema.get("type", "")
    return f"{kind} ({schema['format']})" if "format" in schema else str(kind)


def _add_page(app: FastAPI, path: str, template: str, title: str) -> None:
    page = template.removesuffix(".html")

    def view(request: Request) -> Response:
        extra: dict[str, Any] = {}
        if page == "sql":
            extra["named"] = jsonable(named_queries())
            settings = request.app.state.cache.settings
            extra["limits"] = {"rows": settings.query_row_limit, "timeout_s": settings.query_timeout_s}
        return _TEMPLATES.TemplateResponse(request, template, _context(request, page, title, **extra))

    view.__name__ = f"page_{page}"
    app.add_api_route(path, view, methods=["GET"], include_in_schema=False, response_class=HTMLResponse)
