"""The Tokens page and its API (operator only): list, create (the secret shown once),
revoke."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.responses import Response

from hearth.access import service
from hearth.access.cache import GrantCacheDep
from hearth.access.caller import identify
from hearth.access.schemas import TokenCreated, TokenOut
from hearth.access.tokens import SCOPES
from hearth.audit.dependencies import AuditDep
from hearth.audit.service import client_of
from hearth.db.dependencies import UnitOfWorkDep
from hearth.errors import HearthError
from hearth.web import csrf
from hearth.web.openapi import error_responses, form_or_json
from hearth.web.operator import OperatorDep
from hearth.web.templating import flash, render, wants_html

router = APIRouter(tags=["tokens"])

_CREATE_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["name", "scopes"],
                "properties": {
                    "name": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
                    "scopes": {"type": "array", "items": {"enum": list(SCOPES)}},
                    "expires_days": {"type": ["integer", "null"], "minimum": 1},
                },
            },
            "example": {"name": "backup-script", "scopes": ["read"], "expires_days": 90},
        },
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "scope": {"type": "array", "items": {"enum": list(SCOPES)}},
                    "expires_days": {"type": "string"},
                },
            }
        },
    },
}


async def _page(
    request: Request,
    unit: UnitOfWorkDep,
    *,
    created: service.NewToken | None = None,
    errors: dict[str, str] | None = None,
    submitted: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "tokens": await service.list_tokens(unit.session),
        "scopes": SCOPES,
        "created": created,
        "errors": errors or {},
        "submitted": submitted or {},
        "now": datetime.now(UTC),
    }
    return await render(request, "tokens.html", context, status_code=status_code)


@router.get("/tokens", dependencies=[OperatorDep], responses=error_responses(401, 503))
async def tokens_page(request: Request, unit: UnitOfWorkDep) -> Response:
    """Every API token: name, scopes, shown prefix, created, last used, expiry, revocation."""
    if wants_html(request):
        return await _page(request, unit)
    rows = await service.list_tokens(unit.session)
    return JSONResponse(
        {
            "tokens": [TokenOut.of(row).model_dump(mode="json") for row in rows],
            "csrf_token": csrf.token_for(request.session),
        }
    )


@router.post(
    "/tokens",
    dependencies=[OperatorDep],
    status_code=201,
    openapi_extra={"requestBody": _CREATE_BODY},
    responses=error_responses(401, 403, 409, 415, 503),
)
async def create_token(request: Request, unit: UnitOfWorkDep, audit: AuditDep) -> Response:
    """Create a token; the answer holds its secret, which is never shown again."""
    name, scopes, days, token_field = await _creation(request)
    csrf.verify(request, token_field)
    submitted = {"name": name, "scopes": scopes, "expires_days": days}
    try:
        new = await service.create(unit.session, name, scopes, _days(days))
    except (service.InvalidToken, service.DuplicateToken) as exc:
        if not wants_html(request):
            raise
        errors = exc.field_errors or {"name": f"a token named {name!r} exists already"}
        return await _page(
            request, unit, errors=errors, submitted=submitted, status_code=exc.status_code
        )
    await audit.record(
        "token_created",
        actor=(await identify(request)).actor,
        client=client_of(request),
        within=unit,
        name=new.row.name,
        scopes=sorted(new.row.scopes),
        expires_at=new.row.expires_at.isoformat() if new.row.expires_at else None,
    )
    if wants_html(request):
        return await _page(request, unit, created=new, status_code=201)
    body = TokenCreated(**TokenOut.of(new.row).model_dump(), token=new.secret)
    return JSONResponse(body.model_dump(mode="json"), status_code=201)


@router.post(
    "/tokens/revoke",
    dependencies=[OperatorDep],
    openapi_extra=form_or_json(
        {
            "name": "The token's name.",
            "csrf_token": "The session's CSRF token, unless sent as the X-CSRF-Token header.",
        },
        required=True,
    ),
    responses=error_responses(401, 403, 404, 415, 503),
)
async def revoke_token(
    request: Request, unit: UnitOfWorkDep, audit: AuditDep, grants: GrantCacheDep
) -> Response:
    """Revoke the token named by the ``name`` field: refused from the next request on by this
    process, by others within ``API_TOKEN_CACHE_SECONDS``."""
    fields = await _fields(request)
    csrf.verify(request, _text(fields.get(csrf.FIELD)))
    name = _text(fields.get("name")) or ""
    row = await service.revoke(unit.session, name)
    fingerprint = row.token_sha256

    async def forget() -> None:
        # After the commit, before the answer: a lookup that read the row before the commit
        # cannot store it after this (GrantCache.generation).
        if grants is not None:
            grants.forget(fingerprint)

    unit.after_commit(forget)
    await audit.record(
        "token_revoked",
        actor=(await identify(request)).actor,
        client=client_of(request),
        within=unit,
        name=row.name,
    )
    if wants_html(request):
        flash(request, "success", f"Revoked the token {name!r}.")
        return RedirectResponse("/tokens", status_code=303)
    return JSONResponse(TokenOut.of(row).model_dump(mode="json"))


async def _fields(request: Request) -> dict[str, Any]:
    """The submitted fields: a form (repeated fields as lists) or a JSON object."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            data = await request.json()
        except ValueError:
            raise HearthError("The body is not valid JSON.", status_code=400) from None
        if not isinstance(data, dict):
            raise HearthError("Expected a JSON object.", status_code=422)
        return data
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form(max_fields=32, max_files=0)
        return {key: form.getlist(key) if key == "scope" else form.get(key) for key in form}
    if not content_type and not await request.body():
        return {}
    raise HearthError(
        "Send a form (application/x-www-form-urlencoded) or a JSON object (application/json).",
        status_code=415,
    )


async def _creation(request: Request) -> tuple[str, list[str], str | None, str | None]:
    """Name, scopes, expiry in days (as given) and CSRF token of a create request."""
    fields = await _fields(request)
    scopes = fields.get("scopes", fields.get("scope", []))
    if isinstance(scopes, str):
        scopes = [scopes]
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise HearthError(
            "scopes must be a list of names.", status_code=422, field_errors={"scopes": "a list"}
        )
    days = fields.get("expires_days")
    if isinstance(days, int) and not isinstance(days, bool):
        days = str(days)
    if days is not None and not isinstance(days, str):
        raise HearthError(
            "expires_days must be a whole number of days.",
            status_code=422,
            field_errors={"expires_days": "a whole number of days"},
        )
    return _text(fields.get("name")) or "", scopes, days or None, _text(fields.get(csrf.FIELD))


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) else None


def _days(given: str | None) -> int | None:
    if given is None or not given.strip():
        return None
    try:
        return int(given)
    except ValueError:
        raise service.InvalidToken(
            f"expires_days must be a whole number of days, not {given!r}.",
            field_errors={"expires_days": "a whole number of days"},
        ) from None
