"""What the token API answers: a token's public facts, and a new one's secret, once."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from hearth.models import ApiToken


class TokenOut(BaseModel):
    """A token as the operator sees it later: never its secret."""

    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: ApiToken) -> TokenOut:
        """The public facts of ``row``."""
        return cls(
            name=row.name,
            prefix=row.prefix,
            scopes=list(row.scopes),
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
        )


class TokenCreated(TokenOut):
    """A token just created, with its secret: shown this once, stored only as a hash."""

    token: str
