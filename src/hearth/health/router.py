"""Probe endpoints: ``/health`` for people and dashboards, ``/healthz``, ``/livez`` and
``/readyz`` for Docker, Kubernetes and systemd."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError

from hearth.db import migrate
from hearth.health.dependencies import RuntimeDep
from hearth.health.schemas import HealthReport, ReadinessReport

router = APIRouter(tags=["health"])

_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "Down (healthz) or not ready (readyz)"}
}


@router.get("/health", response_model=HealthReport)
async def health(runtime: RuntimeDep) -> Response:
    """Every component's status, detail and latency. Always 200: read ``status``."""
    # Serialised here rather than by FastAPI, which would dump, re-validate and dump again:
    # probes call this every few seconds and it should cost about what an empty route does.
    report = await runtime.health.report()
    return Response(report.model_dump_json(), media_type="application/json")


@router.get("/healthz", responses=_UNAVAILABLE)
async def healthz(runtime: RuntimeDep) -> JSONResponse:
    """Flat status: ``{"status": "ok", "db": "ok", "redis": "ok", ...}``; 503 when down."""
    report = await runtime.health.report()
    body: dict[str, Any] = {"status": report.status}
    body.update({name: result.status for name, result in report.checks.items()})
    return JSONResponse(body, status_code=503 if report.status == "down" else 200)


@router.get("/livez")
async def livez() -> dict[str, str]:
    """The process answers. Checks no dependency, so a database outage restarts nothing."""
    return {"status": "ok"}


@router.get("/readyz", response_model=ReadinessReport, responses=_UNAVAILABLE)
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """200 once migrations are done and every critical component is ok, else 503 and why."""
    results = await runtime.health.run(runtime.health.critical_names)
    failing = {name: r for name, r in results.items() if r.status == "unreachable"}
    reason = "; ".join(f"{name}: {r.detail}" for name, r in failing.items())
    if not reason and not runtime.migrated:
        reason = await _pending_migrations(runtime)
    report = ReadinessReport(
        status="not_ready" if reason else "ready", reason=reason, checks=results
    )
    return JSONResponse(report.model_dump(), status_code=503 if reason else 200)


async def _pending_migrations(runtime: RuntimeDep) -> str:
    """Empty once the schema is at head (then remembered), else why it is not ready."""
    if runtime.engine is None:
        return "no database"
    try:
        runtime.migrated = await migrate.schema_is_current(runtime.engine)
    except SQLAlchemyError:
        return "database schema unknown: cannot read the migration version"
    return "" if runtime.migrated else "database migrations are pending: run `hearth migrate`"
