"""The access decision a route declares: ``dependencies=[require("read")]``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, params

from hearth.access.caller import ANONYMOUS, Caller, Scope, identify
from hearth.errors import HearthError
from hearth.web import csrf
from hearth.web.forms import submitted_values
from hearth.web.operator import NotLoggedIn
from hearth.web.templating import wants_html

REALM = 'Bearer realm="hearth"'
# Methods that change nothing: no CSRF token asked of them.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
INVALID_TOKEN = f'{REALM}, error="invalid_token"'  # RFC 6750 §3.1: only when one was sent


class NotAuthenticated(HearthError):
    """No credential, or one that was refused: 401 with the ``WWW-Authenticate`` challenge."""

    status_code = 401


class MissingScope(HearthError):
    """A valid token that may not do this: 403 naming the scope it lacks."""

    status_code = 403


CallerDep = Annotated[Caller, Depends(identify)]


def check(caller: Caller, scope: Scope) -> None:
    """Raise ``NotAuthenticated`` or ``MissingScope`` unless ``caller`` holds ``scope``."""
    if caller.may(scope):
        return
    if caller.refused is not None:
        raise NotAuthenticated(
            f"The bearer token was refused: {caller.refused}.",
            headers={"WWW-Authenticate": INVALID_TOKEN},
        )
    if caller.token is None:
        raise NotAuthenticated(
            f"This needs an API token with the {scope!r} scope: send "
            "Authorization: Bearer hth_… (create one with `hearth token create` or on the "
            "Tokens page).",
            headers={"WWW-Authenticate": REALM},
        )
    raise MissingScope(
        f"The token {caller.token!r} lacks the {scope!r} scope; "
        f"it has: {', '.join(sorted(caller.scopes)) or 'none'}."
    )


def require(scope: Scope, *, login_page: bool = False) -> params.Depends:
    """For a route's ``dependencies=[...]``: only a caller holding ``scope`` (an API token
    with it, or the operator's session) gets through. ``login_page``: a console page, to
    which a browser without any credential is sent to log in first, as to /config."""

    # Through ``CallerDep``: a test swaps ``identify`` to stand in for any caller.
    async def holds_scope(request: Request, caller: CallerDep) -> Caller:
        if login_page and caller == ANONYMOUS and wants_html(request):
            raise NotLoggedIn(request.url.path)
        check(caller, scope)
        if caller.operator and request.method not in SAFE_METHODS:
            await verify_session_write(request)
        return caller

    holds_scope.__name__ = f"require_{scope}"
    return params.Depends(holds_scope)


async def verify_session_write(request: Request) -> None:
    """A write made with the operator's session cookie carries the session's CSRF token, in
    the ``X-CSRF-Token`` header or a form's ``csrf_token`` field (``CsrfError``, 403,
    otherwise): the data API as much as the console. A bearer token cannot be sent by another
    site, so it needs none."""
    submitted = None
    if request.headers.get(csrf.HEADER) is None and request.headers.get(
        "content-type", ""
    ).startswith(FORM_TYPES):
        # Parsed as every form is (the same limits); Starlette keeps it for the route.
        submitted = (await submitted_values(request)).get(csrf.FIELD)
    csrf.verify(request, submitted)
