"""Security headers on every answer: what a browser may load, frame or send along.

Pages get a strict Content-Security-Policy: scripts, styles and everything else from this
origin only, no inline script, no framing. Answers of the app are never cached (pages hold
the session's CSRF token); the packaged static files are. HSTS when the session cookie is
HTTPS-only (``SESSION_COOKIE_SECURE``), since then Hearth is served over HTTPS.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# htmx runs from /static and is told (base.html) to add no inline style of its own.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
STATIC_PREFIX = "/static/"
HSTS = "max-age=31536000"


class SecurityHeaders:
    """Adds the headers to every HTTP answer that does not set them itself."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the headers to the answer's start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                headers.setdefault("X-Frame-Options", "DENY")
                if not path.startswith(STATIC_PREFIX):
                    headers.setdefault("Cache-Control", "no-store")
                # Every page, /docs (Swagger UI, served from the package) included.
                is_page = headers.get("content-type", "").startswith("text/html")
                if is_page:
                    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
                if self.https:
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, with_headers)
