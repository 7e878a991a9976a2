"""The config page and its API: runtime settings and one-click connection tests."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.responses import Response

from hearth.auth import csrf
from hearth.auth.dependencies import AuthDep, require_operator
from hearth.config.service import EffectiveSetting, InvalidSettings
from hearth.errors import HearthError
from hearth.health.dependencies import RuntimeDep
from hearth.health.schemas import CheckResult
from hearth.log import get_logger
from hearth.log.redaction import SENSITIVE_KEY
from hearth.web.forms import submitted_values
from hearth.web.templating import TEMPLATES, flash, render, wants_html

log = get_logger(__name__)
router = APIRouter(tags=["config"])
OPERATOR = Depends(require_operator)

# An explicit connection test may take longer than a health probe's budget.
TEST_TIMEOUT_SECONDS = 5.0
SEEN_PREFIX = "seen_"

_SETTINGS_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {"type": "object", "additionalProperties": {"type": "string"}},
            "example": {"llm_endpoint": "http://127.0.0.1:11434", "llm_model": "llama3.2"},
        },
        "application/x-www-form-urlencoded": {
            "schema": {"type": "object", "additionalProperties": {"type": "string"}}
        },
    },
}


def _as_json(settings: dict[str, EffectiveSetting]) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "value": item.value,
            "source": item.source,
            "locked": item.locked,
            "variable": item.set_by or item.key.variable,
            "default": item.key.default,
            "description": item.key.description,
        }
        for name, item in settings.items()
    }


async def _page(
    request: Request,
    runtime: RuntimeDep,
    auth: AuthDep,
    settings: dict[str, EffectiveSetting],
    *,
    errors: dict[str, str] | None = None,
    submitted: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "settings": settings,
        "errors": errors or {},
        "submitted": submitted or {},
        "services": runtime.health.names,
        "password_configured": auth.password.configured,
        "editable": auth.password.configured,
    }
    return await render(request, "config.html", context, status_code=status_code)


@router.get("/config", dependencies=[OPERATOR])
async def config_page(request: Request, runtime: RuntimeDep, auth: AuthDep) -> Response:
    """Every runtime setting with its value and its source (environment, database or
    default); keys set in the environment are read-only."""
    settings = await runtime.runtime_settings()
    if wants_html(request):
        return await _page(request, runtime, auth, settings)
    return JSONResponse(
        {"settings": _as_json(settings), "csrf_token": csrf.token_for(request.session)}
    )


@router.post("/config", dependencies=[OPERATOR], openapi_extra={"requestBody": _SETTINGS_BODY})
async def save_config(request: Request, runtime: RuntimeDep, auth: AuthDep) -> Response:
    """Validate every value, then save the changed ones atomically; 422 with a reason per
    key when one is refused (nothing is saved then)."""
    values = await submitted_values(request)
    csrf.verify(request, values.pop(csrf.FIELD, None))
    if not auth.password.configured:
        raise HearthError("Settings are read-only until ADMIN_PASSWORD is set.", status_code=403)
    seen = {k.removeprefix(SEEN_PREFIX): v for k, v in values.items() if k.startswith(SEEN_PREFIX)}
    submitted = {k: v for k, v in values.items() if not k.startswith(SEEN_PREFIX)}
    if runtime.sessions is None:
        raise HearthError("The database is not available; nothing was saved.", status_code=503)
    try:
        async with runtime.sessions.begin() as session:
            changes = await runtime.config.save(session, submitted, seen=seen)
    except InvalidSettings as exc:
        if not wants_html(request):
            raise
        settings = await runtime.runtime_settings()
        return await _page(
            request,
            runtime,
            auth,
            settings,
            errors=exc.errors,
            submitted=submitted,
            status_code=422,
        )
    # Values of sensitive-looking keys are never logged; the allowlist holds none anyway.
    log.info(
        "config_saved",
        changed=sorted(changes),
        values={k: v for k, v in changes.items() if not SENSITIVE_KEY.search(k)},
    )
    if {"llm_provider", "llm_endpoint"} & changes.keys():
        runtime.health.invalidate("llm")
        await runtime.health.run(["llm"])  # the banner on the next page tells the truth
    settings = await runtime.runtime_settings()
    if wants_html(request):
        flash(
            request,
            "success",
            f"Saved: {', '.join(sorted(changes))}." if changes else "Nothing changed.",
        )
        return RedirectResponse("/config", status_code=303)
    return JSONResponse({"saved": sorted(changes), "settings": _as_json(settings)})


@router.post("/config/test/{service}", dependencies=[OPERATOR])
async def run_connection_test(service: str, request: Request, runtime: RuntimeDep) -> Response:
    """Check one component now, bypassing the health cache, within 5 s whatever the remote
    does; answers ``{service, status, detail}`` (an HTML fragment for htmx)."""
    values = await submitted_values(request)
    csrf.verify(request, values.get(csrf.FIELD))
    if service not in runtime.health.names:
        known = ", ".join(runtime.health.names)
        raise HTTPException(404, f"No component named {service!r}; known: {known}")
    log.info("connection_test_started", service=service)
    try:
        result = await asyncio.wait_for(runtime.health.check_now(service), TEST_TIMEOUT_SECONDS)
    except TimeoutError:
        result = CheckResult(
            status="unreachable",
            detail=f"no answer within {TEST_TIMEOUT_SECONDS:g} s",
            latency_ms=TEST_TIMEOUT_SECONDS * 1000,
        )
    log.info("connection_test_result", service=service, status=result.status, detail=result.detail)
    if wants_html(request):
        return TEMPLATES.TemplateResponse(request, "_test_result.html", {"result": result})
    return JSONResponse({"service": service, **result.model_dump()})
