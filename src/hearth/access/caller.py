"""The caller of a request, found once: the operator's browser session, an API token
(``Authorization: Bearer …``) with its scopes, or nobody."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from hearth.access import service as token_service
from hearth.access.cache import get_grant_cache
from hearth.access.tokens import SCOPES, Scope
from hearth.db.dependencies import get_sessions
from hearth.web.operator import is_operator

__all__ = ["ANONYMOUS", "SCOPES", "Caller", "Scope", "bearer_credentials", "identify"]


@dataclass(frozen=True)
class Caller:
    """Who sent a request. The operator may do everything; a token what its scopes allow.
    ``refused`` says why a bearer token the request presented was not accepted."""

    operator: bool = False
    token: str | None = None  # the token's name, never its secret
    scopes: frozenset[str] = field(default_factory=frozenset)
    refused: str | None = None

    def may(self, scope: Scope) -> bool:
        """Whether this caller holds ``scope``."""
        return self.operator or scope in self.scopes

    @property
    def actor(self) -> str:
        """How the audit trail names the caller: ``operator``, ``token:NAME`` or ``anonymous``."""
        if self.operator:
            return "operator"
        return f"token:{self.token}" if self.token else "anonymous"


ANONYMOUS = Caller()


def bearer_credentials(authorization: str | None) -> str | None:
    """The credentials of an ``Authorization: Bearer …`` header; None for no header or
    another scheme (RFC 6750: the scheme is case-insensitive)."""
    if authorization is None:
        return None
    scheme, _, credentials = authorization.partition(" ")
    return (credentials.strip() or None) if scheme.lower() == "bearer" else None


async def identify(request: Request) -> Caller:
    """The caller of ``request``, looked up once and kept on ``request.state``. A bearer
    token costs one indexed query unless this process verified it a few seconds ago;
    ``DatabaseUnavailable`` (503) when it cannot be made."""
    known: Caller | None = getattr(request.state, "caller", None)
    if known is None:
        known = await _find(request)
        request.state.caller = known
    return known


async def _find(request: Request) -> Caller:
    if await is_operator(request):
        return Caller(operator=True)
    presented = bearer_credentials(request.headers.get("authorization"))
    if presented is None:
        return ANONYMOUS
    try:
        grant = await token_service.authenticate(
            await get_sessions(request), presented, await get_grant_cache(request)
        )
    except token_service.RefusedToken as refusal:
        return Caller(refused=refusal.reason)
    return Caller(token=grant.name, scopes=grant.scopes)
