"""The config page and its API: runtime values and one-click connection tests."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.responses import Response

from hearth.access.caller import identify
from hearth.audit import service as audit_service
from hearth.audit.dependencies import AuditDep
from hearth.auth.dependencies import AuthDep
from hearth.config.dependencies import ConfigDep
from hearth.config.schemas import RuntimeSettings
from hearth.config.service import ConfigService, InvalidSettings, RuntimeValues
from hearth.db.dependencies import SessionDep, UnitOfWorkDep
from hearth.errors import HearthError
from hearth.health.dependencies import HealthDep
from hearth.health.service import HealthService
from hearth.kit.checks import CheckResult
from hearth.log import get_logger
from hearth.log.redaction import SENSITIVE_KEY
from hearth.web import csrf
from hearth.web.forms import submitted_values
from hearth.web.openapi import error_responses, form_or_json
from hearth.web.operator import OperatorDep
from hearth.web.templating import TEMPLATES, flash, render, wants_html

log = get_logger(__name__)
router = APIRouter(tags=["config"])

# An explicit connection test may take longer than a health probe's budget.
TEST_TIMEOUT_SECONDS = 5.0
SEEN_PREFIX = "seen_"
# Keys whose change makes the ``llm`` check's cached result wrong.
LLM_KEYS = frozenset({"llm_provider", "llm_endpoint"})

_SETTINGS_BODY = form_or_json(
    {"csrf_token": "The session's CSRF token, unless sent as the X-CSRF-Token header."},
    required=True,
    example={"llm_endpoint": "http://127.0.0.1:11434", "llm_model": "llama3.2"},
)
_TEST_BODY = form_or_json(
    {"csrf_token": "The session's CSRF token, unless sent as the X-CSRF-Token header."},
    required=False,
)


def _as_json(values: RuntimeValues) -> dict[str, dict[str, object]]:
    return {name: item.model_dump() for name, item in RuntimeSettings.of(values).settings.items()}


async def _page(
    request: Request,
    health: HealthService,
    auth: AuthDep,
    config: ConfigService,
    values: RuntimeValues,
    *,
    errors: dict[str, str] | None = None,
    submitted: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "settings": values,
        "errors": errors or {},
        "submitted": submitted or {},
        "services": health.names,
        "password_configured": auth.password.configured,
        "editable": auth.password.configured,
        "key_use": config.llm_api_key_use(values),
    }
    return await render(request, "config.html", context, status_code=status_code)


@router.get("/config", dependencies=[OperatorDep], responses=error_responses(401, 503))
async def config_page(
    request: Request,
    session: SessionDep,
    config: ConfigDep,
    health: HealthDep,
    auth: AuthDep,
) -> Response:
    """Every runtime value with its source (environment, database or default); keys set
    in the environment are read-only. ``llm_api_key`` says whether LLM_API_KEY goes to the
    endpoint in force, and why (null: no key or no endpoint). 503 while the database is
    down: the values stored there cannot be shown, and defaults shown instead would lie."""
    values = await config.values_in_force(session)
    if wants_html(request):
        return await _page(request, health, auth, config, values)
    return JSONResponse(
        {
            "settings": _as_json(values),
            "llm_api_key": _key_use(config, values),
            "csrf_token": csrf.token_for(request.session),
        }
    )


def _key_use(config: ConfigService, values: RuntimeValues) -> dict[str, object] | None:
    use = config.llm_api_key_use(values)
    return None if use is None else {"sent": use.sent, "reason": use.reason}


@router.post(
    "/config",
    dependencies=[OperatorDep],
    openapi_extra=_SETTINGS_BODY,
    responses=error_responses(401, 403, 415, 503),
)
async def save_config(
    request: Request,
    unit: UnitOfWorkDep,
    config: ConfigDep,
    health: HealthDep,
    auth: AuthDep,
    audit: AuditDep,
) -> Response:
    """Validate every value, then save the changed ones atomically; 422 with a reason per
    key when one is refused (nothing is saved then)."""
    values = await submitted_values(request, required=True)
    csrf.verify(request, values.pop(csrf.FIELD, None))
    if not auth.password.configured:
        raise HearthError("Settings are read-only until ADMIN_PASSWORD is set.", status_code=403)
    seen = {k.removeprefix(SEEN_PREFIX): v for k, v in values.items() if k.startswith(SEEN_PREFIX)}
    submitted = {k: v for k, v in values.items() if not k.startswith(SEEN_PREFIX)}
    try:
        before = await config.values_in_force(unit.session)
        changes = await config.save(unit.session, submitted, seen=seen)
    except InvalidSettings as exc:
        if not wants_html(request):
            raise
        current = await config.values_in_force(unit.session)
        return await _page(
            request,
            health,
            auth,
            config,
            current,
            errors=exc.field_errors,
            submitted=submitted,
            status_code=422,
        )
    # Values of sensitive-looking keys are never logged; the allowlist holds none anyway.
    log.info(
        "config_saved",
        changed=sorted(changes),
        values={k: v for k, v in changes.items() if not SENSITIVE_KEY.search(k)},
    )
    if changes:  # in the save's transaction: the change and its record commit together
        await audit.record(
            "settings_saved",
            actor=(await identify(request)).actor,
            client=audit_service.client_of(request),
            within=unit,
            changes=audit_service.changes(
                {name: item.value for name, item in before.items()}, changes
            ),
        )
    if LLM_KEYS & changes.keys():
        unit.after_commit(lambda: _recheck_llm(health))
    if wants_html(request):
        flash(
            request,
            "success",
            f"Saved: {', '.join(sorted(changes))}." if changes else "Nothing changed.",
        )
        return RedirectResponse("/config", status_code=303)
    current = await config.values_in_force(unit.session)
    return JSONResponse({"saved": sorted(changes), "settings": _as_json(current)})


async def _recheck_llm(health: HealthService) -> None:
    """Check the LLM again with the values just committed: the banner on the next page
    tells the truth."""
    health.invalidate("llm")
    await health.run(["llm"])


@router.post(
    "/config/test/{service}",
    dependencies=[OperatorDep],
    openapi_extra=_TEST_BODY,
    responses=error_responses(401, 403, 404, 415),
)
async def run_connection_test(
    service: str, request: Request, health: HealthDep, audit: AuditDep
) -> Response:
    """Check one component now, bypassing the health cache, within 5 s whatever the remote
    does; answers ``{service, status, detail}`` (an HTML fragment for htmx)."""
    values = await submitted_values(request)
    csrf.verify(request, values.get(csrf.FIELD))
    if service not in health.names:
        known = ", ".join(health.names)
        raise HTTPException(404, f"No component named {service!r}; known: {known}")
    log.info("connection_test_started", service=service)
    try:
        result = await asyncio.wait_for(health.check_now(service), TEST_TIMEOUT_SECONDS)
    except TimeoutError:
        result = CheckResult(
            status="unreachable",
            detail=f"no answer within {TEST_TIMEOUT_SECONDS:g} s",
            latency_ms=TEST_TIMEOUT_SECONDS * 1000,
        )
    log.info("connection_test_result", service=service, status=result.status, detail=result.detail)
    await audit.record(
        "connection_tested",
        actor=(await identify(request)).actor,
        client=audit_service.client_of(request),
        service=service,
        status=result.status,
    )
    if wants_html(request):
        return TEMPLATES.TemplateResponse(request, "_test_result.html", {"result": result})
    return JSONResponse({"service": service, **result.model_dump()})
