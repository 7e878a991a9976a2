"""Probe endpoints: ``/health`` for people and dashboards, ``/healthz``, ``/livez`` and
``/readyz`` for Docker, Kubernetes and systemd."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from hearth.health.dependencies import DetailsDep, HealthDep, LivenessDep, ReadinessDep
from hearth.health.schemas import HealthReport, ReadinessReport

router = APIRouter(tags=["health"])

_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "Down (healthz) or not ready (readyz)"}
}


@router.get("/health", response_model=HealthReport)
async def health(health: HealthDep, details: DetailsDep) -> Response:
    """Every component's status, latency and detail. Always 200: read ``status``. The
    details (``null`` when withheld) need the operator or a ``read`` token, unless
    ``HEALTH_DETAILS`` says otherwise."""
    # Serialised here rather than by FastAPI, which would dump, re-validate and dump again:
    # probes call this every few seconds and it should cost about what an empty route does.
    report = await health.report(details=details.shown)
    return Response(report.model_dump_json(), media_type="application/json")


@router.get("/healthz", responses=_UNAVAILABLE)
async def healthz(health: HealthDep) -> JSONResponse:
    """Flat status: ``{"status": "ok", "db": "ok", "redis": "ok", ...}``; 503 when down."""
    report = await health.report()
    body: dict[str, Any] = {"status": report.status}
    body.update({name: result.status for name, result in report.checks.items()})
    return JSONResponse(body, status_code=503 if report.status == "down" else 200)


_FAILING: dict[int | str, dict[str, Any]] = {
    503: {"description": "The process gave up on something only a restart mends; see reason"}
}


@router.get("/livez", responses=_FAILING)
async def livez(liveness: LivenessDep) -> JSONResponse:
    """The process answers. Checks no dependency, so a database outage restarts nothing;
    503 with the reason once the process has given up (the embedded PostgreSQL would not
    come back), so that a supervisor restarts it."""
    if liveness.alive:
        return JSONResponse({"status": "ok"})
    return JSONResponse({"status": "failing", "reason": liveness.reason}, status_code=503)


@router.get("/readyz", response_model=ReadinessReport, responses=_UNAVAILABLE)
async def readyz(readiness: ReadinessDep, details: DetailsDep) -> JSONResponse:
    """200 once migrations are done and every critical component is ok, else 503 and why
    (the checks' details only for a caller who may read them, as on ``/health``)."""
    report = await readiness.report(details=details.shown)
    return JSONResponse(report.model_dump(), status_code=200 if report.status == "ready" else 503)
