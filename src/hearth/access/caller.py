"""The caller of a request, found once: the operator's browser session, an API token
(``Authorization: Bearer …``) with its scopes, or nobody."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from fastapi import Request

from hearth.web.operator import is_operator

Scope = Literal["read", "write", "metrics"]
SCOPES: tuple[Scope, ...] = ("read", "write", "metrics")


@dataclass(frozen=True)
class Caller:
    """Who sent a request. The operator may do everything; a token what its scopes allow."""

    operator: bool = False
    token: str | None = None  # the token's name, never its secret
    scopes: frozenset[str] = field(default_factory=frozenset)

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


async def identify(request: Request) -> Caller:
    """The caller of ``request``, looked up once and kept on ``request.state``."""
    known: Caller | None = getattr(request.state, "caller", None)
    if known is None:
        # The bearer-token lookup joins here (issue 10's API tokens).
        known = Caller(operator=True) if await is_operator(request) else ANONYMOUS
        request.state.caller = known
    return known
