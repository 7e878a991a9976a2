"""The pages anyone on the LAN may read: the dashboard and the health view (the checks'
details only for a caller who may read them), and the fragment that keeps them live.

Both pages are complete without JavaScript: the table, the overall status, the LLM banner
and the time of the oldest check are drawn from one set of results. With htmx the page asks
``/health/fragment`` every ``HEALTH_MONITOR_SECONDS``; its answer replaces the table and, out
of band, the freshness line, the overall status and the banner, so they never disagree.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from starlette.responses import Response

from hearth.health import console
from hearth.health.dependencies import Details, DetailsDep, HealthDep
from hearth.web.operator import is_operator
from hearth.web.templating import TEMPLATES, render

router = APIRouter(include_in_schema=False)

# The pages the fragment refreshes; its links (log in, then come back) lead to one of them.
LIVE_PAGES = ("/", "/status")
# What a page last drew, as it sends it back (``console.banner_key``, an overall status).
Seen = Annotated[str | None, Query(max_length=64)]


@router.get("/", response_class=HTMLResponse)
async def dashboard(request: Request, health: HealthDep, details: DetailsDep) -> Response:
    """The dashboard: health at a glance from the last results, without waiting for a slow
    check (htmx asks for fresh ones once the page is shown), and the way to the config page."""
    snapshot = await console.last_known(health, details=details.shown)
    context = _live(request, snapshot, details, first="load, ")
    return await render(request, "dashboard.html", context)


@router.get("/status", response_class=HTMLResponse)
async def status_page(request: Request, health: HealthDep, details: DetailsDep) -> Response:
    """Every check with its badge, detail and latency, as a page (``/health`` is JSON)."""
    snapshot = await console.current(health, details=details.shown)
    return await render(request, "status.html", _live(request, snapshot, details))


@router.get("/health/fragment", response_class=HTMLResponse)
async def health_fragment(
    request: Request,
    health: HealthDep,
    details: DetailsDep,
    banner_seen: Seen = None,
    overall_seen: Seen = None,
) -> Response:
    """The checks as an HTML fragment for htmx: the table, and out of band the freshness
    line, plus the overall status and the banner when they differ from what the page shows."""
    snapshot = await console.current(health, details=details.shown)
    context = {
        **_live(request, snapshot, details),
        "path": _page_path(request),
        "llm": snapshot.llm,
        "operator": await is_operator(request),  # the banner's link: to the fix, or the login
        "banner_changed": banner_seen != snapshot.banner_key,
        "overall_changed": overall_seen != snapshot.report.status,
    }
    return TEMPLATES.TemplateResponse(request, "health_fragment.html", context)


def _live(
    request: Request, snapshot: console.Snapshot, details: Details, *, first: str = ""
) -> dict[str, Any]:
    # The settings object, not imported here: config's pages already import health.
    period: float = request.app.state.settings.health_monitor_seconds
    return {
        "report": snapshot.report,
        "snapshot": snapshot,
        "health_details": details,
        # The page's banner from the same results as its table, not the page context's own.
        "llm": snapshot.llm,
        # One setting says how fresh health is kept: the monitor's checks and the console's.
        "refresh_trigger": f"{first}every {period:g}s",
    }


def _page_path(request: Request) -> str:
    """The page the fragment is drawn into (htmx names it in ``HX-Current-URL``)."""
    path = urlsplit(request.headers.get("hx-current-url", "")).path
    return path if path in LIVE_PAGES else "/"
