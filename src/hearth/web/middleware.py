"""Request id and access log: one pure ASGI middleware, so every log line a request causes
carries its ``request_id``."""

from __future__ import annotations

import re
import time
import uuid
from http import HTTPStatus

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hearth.log import get_logger
from hearth.web.errors import error_response
from hearth.web.templating import render_error, wants_html

log = get_logger("hearth.access")

REQUEST_ID_HEADER = "x-request-id"
# An incoming id is reused only if it is short and plain, so it cannot forge log content.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# Probes (and the dashboard's refresh) arrive every few seconds: DEBUG; the rest INFO.
_PROBE_PATHS = frozenset({"/health", "/healthz", "/livez", "/readyz", "/health/fragment"})


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _VALID_REQUEST_ID.match(candidate) else None
    return None


async def _internal_error(scope: Scope) -> Response:
    """The 500 answer: a page for browsers, JSON otherwise; never the exception itself."""
    request = Request(scope)
    if "session" in scope and wants_html(request):
        try:
            return await render_error(request, 500, "Hearth hit an unexpected error; see its logs.")
        except Exception:  # the page itself failed: fall back to the plain answer
            log.exception("error_page_failed")
    return error_response(500, "Internal server error")


class RequestContextMiddleware:
    """Binds ``request_id`` to the request's log lines, returns it as ``X-Request-ID``,
    logs ``request_finished``, and turns an unhandled exception into a logged 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Track an HTTP request from start to finish; pass anything else straight on."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        method, path = scope["method"], scope["path"]
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                log.exception("request_failed", method=method, path=path)
                if not response_started:
                    response = await _internal_error(scope)
                    await response(scope, receive, send_with_id)
            finally:
                duration_ms = round((time.perf_counter() - started) * 1000, 2)
                quiet = path in _PROBE_PATHS and status < HTTPStatus.INTERNAL_SERVER_ERROR
                emit = log.debug if quiet else log.info
                emit(
                    "request_finished",
                    method=method,
                    path=path,
                    status=status,
                    duration_ms=duration_ms,
                )
