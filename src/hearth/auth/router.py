"""Operator login and logout."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.responses import Response

from hearth.access.caller import identify
from hearth.audit.dependencies import AuditDep
from hearth.audit.service import client_of
from hearth.auth.dependencies import AuthDep
from hearth.auth.service import login_reason
from hearth.errors import HearthError
from hearth.log import get_logger
from hearth.web import csrf
from hearth.web.forms import submitted_values
from hearth.web.openapi import error_responses, form_or_json
from hearth.web.operator import (
    SESSION_KEY,
    end_operator_session,
    is_operator,
    start_operator_session,
)
from hearth.web.templating import flash, render, wants_html

log = get_logger(__name__)
router = APIRouter(tags=["operator"])


def _safe_next(target: str | None) -> str:
    """Only paths on this site: never an open redirect to another host."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/config"


@router.get("/login")
async def login_page(request: Request, auth: AuthDep, next: str | None = None) -> Response:  # noqa: A002 (the query parameter's name)
    """The login form; for API clients, the CSRF token to send with POST /login."""
    configured = auth.password.configured
    if not wants_html(request):
        token = csrf.token_for(request.session)
        return JSONResponse(
            {
                "csrf_token": token,
                "operator": await is_operator(request),
                "password_configured": configured,
            }
        )
    # A cookie that still names an operator session the store no longer knows: it ended
    # (expired, logged out elsewhere, the password changed).
    ended = SESSION_KEY in request.session and not await is_operator(request)
    context = {
        "next": _safe_next(next),
        "password_configured": configured,
        "reason": login_reason(_safe_next(next) if next else None, ended=ended),
    }
    return await render(request, "login.html", context)


_CSRF_FIELD = "The session's CSRF token, unless sent as the X-CSRF-Token header."


@router.post(
    "/login",
    openapi_extra=form_or_json(
        {
            "password": "The operator password.",
            "csrf_token": _CSRF_FIELD,
            "next": "Where a browser goes once logged in (a path on this site).",
        },
        required=False,
    ),
    responses=error_responses(401, 403, 415, 429, 503),
)
async def login(request: Request, auth: AuthDep, audit: AuditDep) -> Response:
    """Check the operator password; on success start an operator session."""
    values = await submitted_values(request)
    csrf.verify(request, values.get(csrf.FIELD))
    client = request.client.host if request.client else "unknown"
    if not auth.password.configured:
        raise HearthError(
            "No operator password is set: set ADMIN_PASSWORD (or ADMIN_PASSWORD_FILE) and restart.",
            status_code=403,
        )
    if wait := auth.throttle.admit(client):
        log.warning("login_failed", client=client, reason="too many attempts", retry_after=wait)
        actor = (await identify(request)).actor
        await audit.record("login_throttled", actor=actor, client=client, retry_after=wait)
        raise HearthError(
            f"Too many failed logins from {client}; try again in {wait} s.",
            status_code=429,
            headers={"Retry-After": str(wait)},
        )
    password = values.get("password", "")
    if not password or not await asyncio.to_thread(auth.password.verify, password):
        log.warning("login_failed", client=client, reason="wrong password")
        actor = (await identify(request)).actor
        await audit.record("login_failed", actor=actor, client=client, reason="wrong password")
        if wants_html(request):
            context = {
                "next": _safe_next(values.get("next")),
                "password_configured": True,
                "error": "Wrong password.",
            }
            return await render(request, "login.html", context, status_code=401)
        raise HearthError("Wrong password.", status_code=401)

    auth.throttle.succeeded(client)
    await start_operator_session(request)
    token = csrf.token_for(request.session)
    log.info("login_succeeded", client=client)
    await audit.record("login_succeeded", actor="operator", client=client)
    if wants_html(request):
        return RedirectResponse(_safe_next(values.get("next")), status_code=303)
    return JSONResponse({"operator": True, "csrf_token": token})


@router.post(
    "/logout",
    openapi_extra=form_or_json({"csrf_token": _CSRF_FIELD}, required=False),
    responses=error_responses(403, 415),
)
async def logout(request: Request, audit: AuditDep) -> Response:
    """End the operator session: revoked server-side, so a copy of the cookie is worthless."""
    values = await submitted_values(request)
    csrf.verify(request, values.get(csrf.FIELD))
    actor = (await identify(request)).actor
    if await end_operator_session(request):
        log.info("logged_out")
        await audit.record("logout", actor=actor, client=client_of(request))
    if wants_html(request):
        flash(request, "success", "You are logged out.")
        return RedirectResponse("/", status_code=303)
    return JSONResponse({"operator": False})
