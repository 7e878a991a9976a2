"""The bearer-token check in front of ``/mcp``: an API token with the ``write`` scope, or the
static ``MCP_TOKEN``.

A plain ASGI wrapper rather than the MCP SDK's token verifiers: Hearth is not an OAuth server,
and this way a refused request gets Hearth's JSON error (with its ``request_id``) and a
message that says which token to send, instead of OAuth advice to "re-register" that no
MCP client can follow here.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from hearth.access import service as token_service
from hearth.access.cache import get_grant_cache
from hearth.access.dependencies import INVALID_TOKEN, REALM
from hearth.access.tokens import looks_like_token
from hearth.db.dependencies import get_sessions
from hearth.db.unit import DatabaseUnavailable
from hearth.log import get_logger
from hearth.web.errors import error_response

log = get_logger(__name__)

NEEDED = "Authorization: Bearer <an API token with the write scope, or MCP_TOKEN>"


def bearer_token(scope: Scope) -> bytes | None:
    """The credentials of an ``Authorization: Bearer …`` header, if the request has one."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, credentials = value.partition(b" ")
            # RFC 6750: the scheme is case-insensitive.
            return (credentials.strip() or None) if scheme.lower() == b"bearer" else None
    return None


class BearerTokenGuard:
    """Passes a request to ``app`` only with a write-scoped API token or ``static_token``;
    answers 401 (JSON, ``WWW-Authenticate: Bearer``) or 403 otherwise."""

    def __init__(self, app: ASGIApp, static_token: str | None) -> None:
        self.app = app
        self._static = static_token.encode() if static_token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Let an HTTP request through only with an accepted token; pass anything else on."""
        refusal = await self._refusal(scope) if scope["type"] == "http" else None
        if refusal is None:
            await self.app(scope, receive, send)
        else:
            await refusal(scope, receive, send)

    async def _refusal(self, scope: Scope) -> Response | None:
        """Why the request may not pass, as the answer to give; None when it may."""
        presented = bearer_token(scope)
        if presented is None:
            return _unauthorized("no bearer token", invalid=False)
        # compare_digest: the time taken must not tell how much of a guess was right.
        if self._static is not None and hmac.compare_digest(presented, self._static):
            return None
        text = presented.decode("latin-1")
        if self._static is not None and not looks_like_token(text):
            return _unauthorized("wrong bearer token", invalid=True)
        return await _api_token_refusal(scope, text)


async def _api_token_refusal(scope: Scope, text: str) -> Response | None:
    """Why an API token may not pass (unknown, revoked, expired, no write scope); None
    when it may."""
    try:
        request = Request(scope)
        grant = await token_service.authenticate(
            await get_sessions(request), text, await get_grant_cache(request)
        )
    except token_service.RefusedToken as refusal:
        return _unauthorized(refusal.reason, invalid=True)
    except DatabaseUnavailable as exc:
        return error_response(503, exc.message)
    if "write" not in grant.scopes:
        log.warning("mcp_forbidden", name=grant.name)
        return error_response(
            403, f"The token {grant.name!r} lacks the 'write' scope that /mcp needs."
        )
    return None


def _unauthorized(reason: str, *, invalid: bool) -> Response:
    log.warning("mcp_unauthorized", reason=reason)
    response = error_response(401, f"The MCP endpoint needs {NEEDED} ({reason}).")
    # RFC 6750 §3.1: error="invalid_token" only when a token was sent.
    response.headers["WWW-Authenticate"] = INVALID_TOKEN if invalid else REALM
    return response
