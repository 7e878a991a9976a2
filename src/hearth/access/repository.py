"""All SQL about API tokens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hearth.models import ApiToken


async def add(session: AsyncSession, token: ApiToken) -> ApiToken:
    """Insert ``token`` (the caller catches a duplicate name)."""
    session.add(token)
    await session.flush()
    return token


async def by_name(session: AsyncSession, name: str) -> ApiToken | None:
    """The token called ``name``, if there is one."""
    found: ApiToken | None = await session.scalar(select(ApiToken).where(ApiToken.name == name))
    return found


async def by_fingerprint(session: AsyncSession, sha256: str) -> ApiToken | None:
    """The token whose secret hashes to ``sha256``, if there is one."""
    found: ApiToken | None = await session.scalar(
        select(ApiToken).where(ApiToken.token_sha256 == sha256)
    )
    return found


async def all_tokens(session: AsyncSession) -> Sequence[ApiToken]:
    """Every token, newest first."""
    result = await session.scalars(select(ApiToken).order_by(ApiToken.id.desc()))
    return result.all()


async def record_use(session: AsyncSession, token_id: int, now: datetime, every: timedelta) -> None:
    """Set ``last_used_at`` to ``now`` unless it was set less than ``every`` ago: replicas
    and concurrent requests that race here write it once, not once each."""
    await session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id)
        .where(or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < now - every))
        .values(last_used_at=now)
    )
