"""The config page's "Send test notification" button."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from hearth.access.caller import identify
from hearth.audit import service as audit_service
from hearth.audit.dependencies import AuditDep
from hearth.errors import HearthError
from hearth.log import get_logger
from hearth.notify.dependencies import SenderDep
from hearth.notify.service import sample_notice
from hearth.web import csrf
from hearth.web.errors import ErrorBody
from hearth.web.forms import submitted_values
from hearth.web.openapi import error_responses, form_or_json
from hearth.web.operator import OperatorDep
from hearth.web.templating import TEMPLATES, wants_html

log = get_logger(__name__)
router = APIRouter(tags=["config"])

HOW_TO_CONFIGURE = (
    "Notifications are off: set NOTIFY_URLS (or NOTIFY_URLS_FILE, a Docker secret or a "
    "systemd credential) to one or more Apprise URLs and restart Hearth; see "
    "docs/notifications.md."
)

_BODY = form_or_json(
    {"csrf_token": "The session's CSRF token, unless sent as the X-CSRF-Token header."},
    required=False,
)


@router.post(
    "/config/notifications/test",
    dependencies=[OperatorDep],
    openapi_extra=_BODY,
    responses=error_responses(401, 403, 415)
    | {409: {"model": ErrorBody, "description": "NOTIFY_URLS is unset: notifications are off."}},
)
async def send_test_notification(request: Request, sender: SenderDep, audit: AuditDep) -> Response:
    """Send a test notice to every receiver of NOTIFY_URLS now, each tried once within
    10 s; answers ``{deliveries: [{receiver, sent, reason}]}`` (an HTML fragment for htmx).
    409 when NOTIFY_URLS is unset."""
    values = await submitted_values(request)
    csrf.verify(request, values.get(csrf.FIELD))
    if sender is None:
        raise HearthError(HOW_TO_CONFIGURE, status_code=409)
    actor = (await identify(request)).actor
    deliveries = await sender.send(sample_notice(actor), retry=False)
    await audit.record(
        "notification_tested",
        actor=actor,
        client=audit_service.client_of(request),
        receivers={d.label: "sent" if d.sent else "failed" for d in deliveries},
    )
    if wants_html(request):
        return TEMPLATES.TemplateResponse(
            request, "_notify_result.html", {"deliveries": deliveries}
        )
    return JSONResponse(
        {
            "deliveries": [
                {"receiver": d.label, "sent": d.sent, "reason": d.reason} for d in deliveries
            ]
        }
    )
