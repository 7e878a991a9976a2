"""CSRF tokens: one per session, sent back with every state-changing request, as the
``csrf_token`` form field or the ``X-CSRF-Token`` header (which htmx adds)."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from starlette.requests import Request

from hearth.errors import HearthError

SESSION_KEY = "csrf"
HEADER = "x-csrf-token"
FIELD = "csrf_token"


class CsrfError(HearthError):
    """The CSRF token is missing or does not match the session's: 403."""

    status_code = 403


def token_for(session: dict[str, Any]) -> str:
    """The session's token, created on first use."""
    token = session.get(SESSION_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[SESSION_KEY] = token
    return token


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(errors="surrogatepass"), expected.encode())


def verify(request: Request, submitted: str | None) -> None:
    """Raise ``CsrfError`` unless ``submitted`` (or the header) matches the session's token."""
    expected = request.session.get(SESSION_KEY)
    given = request.headers.get(HEADER) or submitted
    # Compared as bytes: compare_digest refuses str with non-ASCII characters (was a 500).
    if not isinstance(expected, str) or not given or not _same(given, expected):
        raise CsrfError(
            "Missing or invalid CSRF token: reload the page and try again "
            "(API clients: send the csrf_token from GET /login as the X-CSRF-Token header)."
        )
