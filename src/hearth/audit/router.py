"""The Activity page: the audit trail, newest first, for the operator only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from hearth.audit import service
from hearth.audit.schemas import AuditEntry, AuditPage
from hearth.db.dependencies import SessionDep
from hearth.web.openapi import error_responses
from hearth.web.operator import OperatorDep
from hearth.web.templating import render, wants_html

router = APIRouter(tags=["activity"])

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
_MAX_ID = 2**63 - 1  # the column is a bigint: a larger ``before`` is refused, not a 500


@router.get(
    "/activity",
    dependencies=[OperatorDep],
    response_model=AuditPage,
    responses=error_responses(401, 503),
)
async def activity_page(
    request: Request,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="events per page")] = PAGE_SIZE,
    before: Annotated[
        int | None, Query(ge=1, le=_MAX_ID, description="only events older than this id")
    ] = None,
) -> Response:
    """Logins, logouts, saves, imports, connection tests and tokens, newest first, with
    actor, client address and time; ``older`` leads to the next page."""
    events = await service.newest(session, limit=limit + 1, before=before)
    older = events[limit - 1].id if len(events) > limit else None
    shown = [AuditEntry.of(event) for event in events[:limit]]
    if not wants_html(request):
        return JSONResponse(AuditPage(events=shown, older=older).model_dump(mode="json"))
    rows = [(entry, service.describe(entry.details)) for entry in shown]
    context = {"rows": rows, "older": older, "limit": limit, "paged": before is not None}
    return await render(request, "activity.html", context)
