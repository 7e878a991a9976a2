"""``GET /diagnostics``: the report as a page with one copyable text for the operator's
browser, and as JSON for programs (``hearth diagnose`` reads the server's log ring here)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from hearth.access.dependencies import require
from hearth.diagnostics.dependencies import DiagnosticsDep
from hearth.diagnostics.schemas import Diagnostics
from hearth.diagnostics.service import own_log
from hearth.web.openapi import error_responses
from hearth.web.templating import render, wants_html

router = APIRouter(tags=["diagnostics"])


@router.get(
    "/diagnostics",
    dependencies=[require("read", login_page=True)],
    response_model=Diagnostics,
    responses=error_responses(401, 403, 503),
)
async def diagnostics(request: Request, service: DiagnosticsDep) -> Response:
    """Version, platform, settings and their sources, health with details, migrations,
    queues, workers and this server's last 200 warnings and errors, secrets masked; ``text``
    holds the same as one text for a bug report."""
    report = await service.gather(
        generated_by="GET /diagnostics (hearth serve)", logs=[own_log("this server")]
    )
    if not wants_html(request):
        return JSONResponse(report.model_dump(mode="json"))
    return await render(request, "diagnostics.html", {"report": report})
