"""The access decision a route declares: ``dependencies=[require("read")]``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, params

from hearth.access.caller import Caller, Scope, identify
from hearth.errors import HearthError

REALM = 'Bearer realm="hearth"'
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


def require(scope: Scope) -> params.Depends:
    """For a route's ``dependencies=[...]``: only a caller holding ``scope`` (an API token
    with it, or the operator's session) gets through."""

    # Through ``CallerDep``: a test swaps ``identify`` to stand in for any caller.
    async def holds_scope(caller: CallerDep) -> Caller:
        check(caller, scope)
        return caller

    holds_scope.__name__ = f"require_{scope}"
    return params.Depends(holds_scope)
