"""``GET /metrics``: Prometheus text, or OpenMetrics when the Accept header asks for it;
an API token with the ``metrics`` scope (or the operator's session) reads it."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from hearth.access.dependencies import require
from hearth.metrics.dependencies import MetricsServiceDep
from hearth.web.openapi import error_responses

router = APIRouter(tags=["metrics"])

_FORMATS: dict[str, dict[str, object]] = {"text/plain": {}, "application/openmetrics-text": {}}


@router.get(
    "/metrics",
    dependencies=[require("metrics")],
    response_class=Response,
    summary="Prometheus metrics",
    responses={200: {"content": _FORMATS}, **error_responses(401, 403)},
)
async def metrics(request: Request, service: MetricsServiceDep) -> Response:
    """Every hearth_* metric; OpenMetrics when ``Accept`` names it."""
    # Read from the request rather than declared: it chooses a format, it is not an input.
    body, content_type = await service.scrape(request.headers.get("accept"))
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})
