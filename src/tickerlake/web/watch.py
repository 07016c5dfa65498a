"""``GET /api/watch/runs``: the runs of ``tickerlake watch`` / ``serve --watch`` on this lake
(what triggered each, its status and counts), for the pipeline view."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from tickerlake.service.watch import watch_runs
from tickerlake.web.data import LakeCache, dumps

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["pipeline"])


@router.get("/watch/runs", summary="Watch runs (crawl + ETL on new raw files, scheduled ingests)")
def runs(
    request: Request, limit: Annotated[int, Query(ge=1, le=200, description="How many, newest first.")] = 20
) -> Response:
    """The lake's recent watch runs: trigger, status, duration, files, crawled tables and each
    curated table's counts (read, inserted, updated, duplicates, quarantined)."""
    cache: LakeCache = request.app.state.cache
    answer = [{**dataclasses.asdict(r), "loaded": r.loaded} for r in watch_runs(cache.settings, limit)]
    return Response(content=dumps(answer), media_type="application/json")
