"""The pages anyone on the LAN may read: the dashboard and the health view (the checks'
details only for a caller who may read them)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.responses import Response

from hearth.health.dependencies import DetailsDep, HealthDep
from hearth.web.templating import TEMPLATES, render

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def dashboard(request: Request) -> Response:
    """The dashboard: health at a glance (loaded by htmx) and the way to the config page."""
    return await render(request, "dashboard.html")


@router.get("/status", response_class=HTMLResponse)
async def status_page(request: Request, health: HealthDep, details: DetailsDep) -> Response:
    """Every check with its badge, detail and latency, as a page (``/health`` is JSON)."""
    report = await health.report(details=details.shown)
    return await render(request, "status.html", {"report": report, "health_details": details})


@router.get("/health/fragment", response_class=HTMLResponse)
async def health_fragment(request: Request, health: HealthDep, details: DetailsDep) -> Response:
    """The checks as an HTML fragment, for htmx to place in the dashboard."""
    report = await health.report(details=details.shown)
    return TEMPLATES.TemplateResponse(
        request, "health_fragment.html", {"report": report, "health_details": details}
    )
