"""The config page and its API: runtime values and one-click connection tests."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.responses import Response

from hearth.access.caller import identify
from hearth.audit import service as audit_service
from hearth.audit.dependencies import AuditDep
from hearth.auth.dependencies import AuthDep
from hearth.config import connections
from hearth.config.allowlist import ALLOWLIST
from hearth.config.connections import LLM_FIELDS, ConnectionTest
from hearth.config.dependencies import ConfigDep, LLMTrierDep
from hearth.config.schemas import RuntimeSettings
from hearth.config.service import ConfigService, InvalidSettings, RuntimeValues
from hearth.db.dependencies import SessionDep, SessionsDep, UnitOfWorkDep
from hearth.errors import HearthError
from hearth.health.dependencies import HealthDep
from hearth.health.service import HealthService
from hearth.log import get_logger
from hearth.log.redaction import SENSITIVE_KEY
from hearth.notify.dependencies import get_sender
from hearth.web import csrf
from hearth.web.forms import submitted_values
from hearth.web.openapi import error_responses, form_or_json
from hearth.web.operator import OperatorDep
from hearth.web.templating import TEMPLATES, flash, render, wants_html

log = get_logger(__name__)
router = APIRouter(tags=["config"])

SEEN_PREFIX = "seen_"
# Sentences shown beside fields after a redirect (a save that warned), by key.
NOTES_KEY = "config_notes"
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
    # In the form's order, as the summary and the title list them.
    order = list(ALLOWLIST)
    errors = dict(
        sorted((errors or {}).items(), key=lambda e: order.index(e[0]) if e[0] in order else 99)
    )
    context = {
        **_form_context(auth, config, values, errors=errors, submitted=submitted),
        "notes": request.session.pop(NOTES_KEY, None) or {},
        "error_title": _error_title(errors),
        "services": [name for name in health.names if name != "llm"],
        "password_configured": auth.password.configured,
        "notify_receivers": sender.labels if (sender := await get_sender(request)) else None,
    }
    return await render(request, "config.html", context, status_code=status_code)


def _form_context(
    auth: AuthDep,
    config: ConfigService,
    values: RuntimeValues,
    *,
    errors: dict[str, str],
    submitted: dict[str, str] | None,
    key_use_for: tuple[str, str] | None = None,
) -> dict[str, object]:
    """What the form's fields are drawn from (the page, and a test's fresh fields)."""
    return {
        "settings": values,
        "errors": errors,
        "submitted": submitted or {},
        "llm_fields": LLM_FIELDS,
        "labels": {name: key.label for name, key in ALLOWLIST.items()},
        "component_label": connections.label,
        "editable": auth.password.configured,
        "key_use": config.key_use(*key_use_for) if key_use_for else config.llm_api_key_use(values),
    }


def _error_title(errors: dict[str, str]) -> str:
    """What a failed save puts in the page title, by field label."""
    labels = [ALLOWLIST[name].label if name in ALLOWLIST else name for name in errors]
    if len(labels) > 2:  # noqa: PLR2004 (two names read well, more do not)
        return f"{len(labels)} values need attention"
    return f"{' and '.join(labels)} need{'s' if len(labels) == 1 else ''} attention"


def saved_message(changes: dict[str, str]) -> str:
    """The flash after a save: the labels of what changed, as the form names them."""
    if not changes:
        return "Nothing changed."
    return f"Saved: {', '.join(ALLOWLIST[name].label for name in sorted(changes))}."


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
    llm: LLMTrierDep,
) -> Response:
    """Validate every value, then save the changed ones atomically; 422 with a reason per
    key when one is refused (nothing is saved then). A saved LLM server that does not
    answer is saved all the same, with a warning for the endpoint (``warnings``)."""
    values = await submitted_values(request, required=True)
    csrf.verify(request, values.pop(csrf.FIELD, None))
    if not auth.password.configured:
        raise HearthError("Settings are read-only until ADMIN_PASSWORD is set.", status_code=403)
    seen = {k.removeprefix(SEEN_PREFIX): v for k, v in values.items() if k.startswith(SEEN_PREFIX)}
    submitted = {k: v for k, v in values.items() if not k.startswith(SEEN_PREFIX)}
    try:
        before = await config.values_in_force(unit.session)
        changes = await config.save(unit.session, submitted, seen=seen)
        # First of the after-commit actions: the LLM's recheck reads the values just saved.
        unit.after_commit(config.forget_recent)
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
    current = await config.values_in_force(unit.session)
    warnings: dict[str, str] = {}
    if LLM_KEYS & changes.keys():
        unit.after_commit(lambda: _recheck_llm(health))
        in_force = {name: item.value for name, item in current.items()}
        if warning := await connections.warning_after_save(llm, in_force):
            warnings["llm_endpoint"] = warning
    if wants_html(request):
        if warnings:
            request.session[NOTES_KEY] = warnings
            flash(request, "warning", f"{saved_message(changes)} See the note beside the field.")
        else:
            flash(request, "success", saved_message(changes))
        return RedirectResponse("/config", status_code=303)
    return JSONResponse(
        {"saved": sorted(changes), "settings": _as_json(current), "warnings": warnings}
    )


async def _recheck_llm(health: HealthService) -> None:
    """Check the LLM again with the values just committed: the banner on the next page
    tells the truth."""
    health.invalidate("llm")
    await health.run(["llm"])


@router.post(
    "/config/test/{service}",
    dependencies=[OperatorDep],
    openapi_extra=_TEST_BODY,
    responses=error_responses(401, 403, 404, 415, 422),
)
async def run_connection_test(
    service: str,
    request: Request,
    sessions: SessionsDep,
    config: ConfigDep,
    health: HealthDep,
    auth: AuthDep,
    audit: AuditDep,
    llm: LLMTrierDep,
) -> Response:
    """Check one component now, bypassing the health cache, within 5 s whatever the remote
    does; answers ``{service, status, detail, latency_ms, tested_at}`` (an HTML fragment
    for htmx). ``llm`` is tried with the values sent (``llm_provider``, ``llm_endpoint``,
    ``llm_model``, ``embedding_model``; the saved ones for those not sent), validated as
    a save validates them and saved by nothing; it answers ``models`` too, those the
    server lists, and ``unsaved``: whether the values tried differ from the saved ones."""
    values = await submitted_values(request)
    csrf.verify(request, values.pop(csrf.FIELD, None))
    if service not in health.names:
        known = ", ".join(health.names)
        raise HTTPException(404, f"No component named {service!r}; known: {known}")
    log.info("connection_test_started", service=service)
    if service == "llm":
        return await _test_llm(request, sessions, config, auth, llm, values, audit)
    tested = await connections.check_component(health, service)
    await _record(request, audit, tested)
    if wants_html(request):
        return TEMPLATES.TemplateResponse(request, "_test_result.html", {"tested": tested})
    return JSONResponse(tested.as_json())


async def _test_llm(
    request: Request,
    sessions: SessionsDep,
    config: ConfigService,
    auth: AuthDep,
    llm: LLMTrierDep,
    values: dict[str, str],
    audit: AuditDep,
) -> Response:
    # Read as the health check reads them: the environment's and defaults while the
    # database is down, so the tests still work then.
    in_force = await config.read_values(sessions)
    seen = {k.removeprefix(SEEN_PREFIX): v for k, v in values.items() if k.startswith(SEEN_PREFIX)}
    typed = {name: values[name] for name in LLM_FIELDS if name in values}
    try:
        proposed = config.proposed(in_force, typed, seen=seen)
    except InvalidSettings as exc:
        if not wants_html(request):
            raise
        context = _form_context(auth, config, in_force, errors=exc.field_errors, submitted=typed)
        return TEMPLATES.TemplateResponse(
            request, "_llm_test.html", {**context, "tested": None, "models": ()}, status_code=422
        )
    saved = {name: item.value for name, item in in_force.items()}
    tested = await connections.try_llm(llm, proposed, saved=saved)
    await _record(request, audit, tested)
    if wants_html(request):
        context = _form_context(
            auth,
            config,
            in_force,
            errors={},
            submitted=typed,
            key_use_for=(proposed["llm_provider"], proposed["llm_endpoint"]),
        )
        return TEMPLATES.TemplateResponse(
            request, "_llm_test.html", {**context, "tested": tested, "models": tested.models}
        )
    return JSONResponse(tested.as_json())


async def _record(request: Request, audit: AuditDep, tested: ConnectionTest) -> None:
    result = tested.result
    log.info(
        "connection_test_result", service=tested.service, status=result.status, detail=result.detail
    )
    await audit.record(
        "connection_tested",
        actor=(await identify(request)).actor,
        client=audit_service.client_of(request),
        service=tested.service,
        status=result.status,
    )
