"""Errors as JSON for API clients: a status, a reason, the request id; never a traceback."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, TypeVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from hearth.errors import HearthError
from hearth.web.operator import NotLoggedIn
from hearth.web.templating import render_error, wants_html

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}
# What ``error`` holds for a status missing from the table above.
_OTHER = "error"
# When a client should try again after a 503 that names no time of its own: about the time a
# restarted database or broker needs, and a few health-check rounds (each at most 2 s).
RETRY_AFTER_SECONDS = 5

ResponseT = TypeVar("ResponseT", bound=Response)


def _kinds(schema: dict[str, Any]) -> None:
    schema["enum"] = sorted({*_CODES.values(), _OTHER})


class FieldError(BaseModel):
    """One refused input: where it was and why."""

    field: str = Field(description="The input, e.g. `body.text` or `llm_endpoint`.")
    message: str = Field(description="Why it was refused.")


class ErrorBody(BaseModel):
    """What ``error_response`` sends, for the OpenAPI schema (``hearth.web.openapi``)."""

    error: str = Field(
        description="The kind of error, for programs.",
        json_schema_extra=_kinds,
    )
    detail: str = Field(description="What went wrong, for people.")
    request_id: str | None = Field(description="The X-Request-ID of the request, for the logs.")
    errors: list[FieldError] = Field(
        default_factory=list, description="Each refused input, when the error names inputs."
    )


def error_response(
    status: int, detail: str, *, errors: list[dict[str, Any]] | None = None
) -> JSONResponse:
    """The one error shape: ``{"error", "detail", "request_id"[, "errors"]}``."""
    body: dict[str, Any] = {
        "error": _CODES.get(status, _OTHER),
        "detail": detail,
        "request_id": structlog.contextvars.get_contextvars().get("request_id"),
    }
    if errors:
        body["errors"] = errors
    return _with_retry_after(JSONResponse(body, status_code=status))


def _with_retry_after(response: ResponseT) -> ResponseT:
    """A 503 means a dependency is down: it says when asking again is worth it (RFC 9110),
    unless it named a time of its own."""
    if response.status_code == HTTPStatus.SERVICE_UNAVAILABLE:
        response.headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
    return response


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = str(exc.detail)
    if exc.status_code == HTTPStatus.NOT_FOUND and detail == "Not Found":
        detail = f"Nothing at {request.method} {request.url.path}"
    elif exc.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
        detail = f"{request.method} is not allowed on {request.url.path}"
    return await _respond(request, exc.status_code, detail, exc.headers)


async def _respond(
    request: Request, status: int, detail: str, headers: Mapping[str, str] | None = None
) -> Response:
    """An error page for browsers, JSON for everyone else."""
    response = (
        await render_error(request, status, detail)
        if wants_html(request)
        else error_response(status, detail)
    )
    if headers:
        response.headers.update(headers)
    return _with_retry_after(response)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Inputs are left out: they may hold a password someone typed into the wrong field.
    errors = [
        {"field": ".".join(str(part) for part in error["loc"]), "message": error["msg"]}
        for error in exc.errors()
    ]
    fields = ", ".join(error["field"] for error in errors)
    return error_response(422, f"Invalid input: {fields}", errors=errors)


async def _hearth_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HearthError)
    if isinstance(exc, NotLoggedIn) and wants_html(request):
        if request.headers.get("hx-request"):  # htmx follows this header with a full page load
            return Response(status_code=401, headers={"HX-Redirect": exc.login_url})
        return RedirectResponse(exc.login_url, status_code=303)
    if exc.field_errors and not wants_html(request):
        errors = [{"field": key, "message": reason} for key, reason in exc.field_errors.items()]
        return error_response(exc.status_code, exc.message, errors=errors)
    return await _respond(request, exc.status_code, exc.message, exc.headers)


def register_error_handlers(app: FastAPI) -> None:
    """JSON for 4xx and expected errors; unexpected ones become a logged 500 in the
    request middleware."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HearthError, _hearth_error)
