"""All SQL of the operator sessions (the ``operator_sessions`` table)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from hearth.models import OperatorSession


async def insert_session(
    session: AsyncSession, id_hash: str, fingerprint: str, lifetime: timedelta
) -> datetime:
    """Record a new session, valid for ``lifetime`` from the database's clock; its expiry."""
    statement = (
        insert(OperatorSession)
        .values(
            id_hash=id_hash,
            password_fingerprint=fingerprint,
            expires_at=func.now() + lifetime,
        )
        .returning(OperatorSession.expires_at)
    )
    expires_at: datetime = (await session.execute(statement)).scalar_one()
    return expires_at


async def confirm(session: AsyncSession, id_hash: str, fingerprint: str) -> datetime | None:
    """The expiry of the session if it is open (not revoked, not expired, opened under the
    password in force), noting that it was seen now; None if it is not."""
    statement = (
        update(OperatorSession)
        .where(
            OperatorSession.id_hash == id_hash,
            OperatorSession.password_fingerprint == fingerprint,
            OperatorSession.revoked_at.is_(None),
            OperatorSession.expires_at > func.now(),
        )
        .values(last_seen_at=func.now())
        .returning(OperatorSession.expires_at)
    )
    expires_at: datetime | None = (await session.execute(statement)).scalar_one_or_none()
    return expires_at


async def revoke(session: AsyncSession, id_hashes: Collection[str]) -> None:
    """Mark the sessions revoked now (those not already)."""
    await session.execute(
        update(OperatorSession)
        .where(OperatorSession.id_hash.in_(id_hashes), OperatorSession.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )


async def delete_finished(session: AsyncSession) -> int:
    """Delete the sessions that can never be used again (expired or revoked); how many."""
    result = await session.execute(
        delete(OperatorSession).where(
            or_(OperatorSession.expires_at <= func.now(), OperatorSession.revoked_at.is_not(None))
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
