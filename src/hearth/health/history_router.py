"""The health history: ``GET /health/history`` (JSON) and the history section of /status (an
HTML fragment for htmx). Statuses are public; details follow ``/health`` (``HEALTH_DETAILS``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from starlette.responses import Response

from hearth.db.dependencies import SessionDep
from hearth.health import history
from hearth.health.dependencies import DetailsDep, HealthDep
from hearth.health.history_schemas import HistoryReport
from hearth.health.timeline import shown_age, shown_percent
from hearth.web.openapi import error_responses
from hearth.web.templating import TEMPLATES

router = APIRouter(tags=["health"])

# The longest look back a caller may ask for: the longest HEALTH_HISTORY_DAYS allows.
MAX_DAYS = 3650
MAX_EVENTS = 500
# Changes listed under the bars on /status.
PAGE_EVENTS = 10

Days = Annotated[int, Query(ge=1, le=MAX_DAYS, description="list the changes of this many days")]
Limit = Annotated[int, Query(ge=1, le=MAX_EVENTS, description="list at most this many changes")]


@router.get("/health/history", response_model=HistoryReport, responses=error_responses(422, 503))
async def health_history(
    session: SessionDep, health: HealthDep, details: DetailsDep, days: Days = 7, limit: Limit = 50
) -> Response:
    """Per component: its status and since when, availability over 24 h and 7 d, a bar of
    the last 24 h in 90 slots; and the latest changes, newest first. The details (``null``
    when withheld) need the operator or a ``read`` token, as on ``/health``."""
    recent = history.Recent(days=days, limit=limit)
    now = datetime.now(UTC)
    report = await history.report(
        session, health.names, now=now, recent=recent, details=details.shown
    )
    return Response(report.model_dump_json(), media_type="application/json")


@router.get(
    "/status/history",
    response_class=HTMLResponse,
    include_in_schema=False,
    responses=error_responses(503),
)
async def history_fragment(
    request: Request, session: SessionDep, health: HealthDep, details: DetailsDep
) -> Response:
    """The history section of /status, as an HTML fragment for htmx."""
    now = datetime.now(UTC)
    recent = history.Recent(days=7, limit=PAGE_EVENTS)
    report = await history.report(
        session, health.names, now=now, recent=recent, details=details.shown
    )
    context = {"rows": _rows(report, now), "report": report, "health_details": details}
    return TEMPLATES.TemplateResponse(request, "_history.html", context)


def _rows(report: HistoryReport, now: datetime) -> list[dict[str, Any]]:
    """What the page shows of each component, in words as well as colours."""
    slot = timedelta(seconds=report.bar_slot_seconds)
    rows = []
    for name, component in report.components.items():
        slots = []
        for index, status in enumerate(component.bar):
            start = report.bar_start + slot * index
            label = f"{_clock(start)} to {_clock(start + slot)} UTC: {_SLOT_WORDS[status]}"
            slots.append({"status": status, "label": label})
        since = component.since
        rows.append(
            {
                "name": name,
                "component": component,
                "since_iso": since.isoformat() if since else None,
                "since_exact": since.strftime("%Y-%m-%d %H:%M:%S UTC") if since else None,
                "since_age": shown_age((now - since).total_seconds()) if since else None,
                "day": shown_percent(component.availability_24h),
                "week": shown_percent(component.availability_7d),
                "slots": slots,
            }
        )
    return rows


_SLOT_WORDS = {
    "ok": "ok",
    "unreachable": "unreachable",
    "unconfigured": "unconfigured",
    "none": "no data",
}


def _clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M")
