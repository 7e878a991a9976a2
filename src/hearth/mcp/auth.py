"""The bearer-token check in front of ``/mcp``.

A plain ASGI wrapper rather than FastMCP's token verifiers: Hearth has one static token, not
an OAuth server, and this way a refused request gets Hearth's JSON error (with its
``request_id``) and a message that names ``MCP_TOKEN``, instead of OAuth advice to
"re-register" that no MCP client can follow here.
"""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from hearth.log import get_logger
from hearth.web.errors import error_response

log = get_logger(__name__)


def bearer_token(scope: Scope) -> bytes | None:
    """The credentials of an ``Authorization: Bearer …`` header, if the request has one."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, credentials = value.partition(b" ")
            # RFC 6750: the scheme is case-insensitive.
            return (credentials.strip() or None) if scheme.lower() == b"bearer" else None
    return None


class BearerTokenGuard:
    """Passes a request to ``app`` only with ``Authorization: Bearer <token>``; answers
    401 (JSON, ``WWW-Authenticate: Bearer``) otherwise."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Let an HTTP request through only with the token; pass anything else straight on."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        presented = bearer_token(scope)
        # compare_digest: the time taken must not tell how much of a guess was right.
        if presented is not None and hmac.compare_digest(presented, self._token):
            await self.app(scope, receive, send)
            return
        reason = "no bearer token" if presented is None else "wrong bearer token"
        log.warning("mcp_unauthorized", reason=reason)
        response = error_response(
            401, f"The MCP endpoint needs Authorization: Bearer <MCP_TOKEN> ({reason})."
        )
        challenge = 'Bearer realm="hearth"'
        if presented is not None:
            challenge += ', error="invalid_token"'  # RFC 6750 §3.1: only when one was sent
        response.headers["WWW-Authenticate"] = challenge
        await response(scope, receive, send)
