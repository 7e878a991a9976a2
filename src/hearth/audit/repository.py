"""All SQL of the audit trail: the ``audit_events`` table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from hearth.models import AuditEvent


def add(
    session: AsyncSession, *, action: str, actor: str, client: str | None, details: dict[str, Any]
) -> None:
    """Add one event to the session; it is written with the session's next flush."""
    session.add(AuditEvent(action=action, actor=actor, client=client, details=details))


async def delete_older_than(session: AsyncSession, cutoff: datetime) -> int:
    """Delete the events recorded before ``cutoff``; returns how many there were."""
    result = await session.execute(delete(AuditEvent).where(AuditEvent.at < cutoff))
    return cast("CursorResult[Any]", result).rowcount


async def newest(session: AsyncSession, *, limit: int, before: int | None) -> Sequence[AuditEvent]:
    """At most ``limit`` events, newest first; only those older than event ``before``."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    return (await session.scalars(query)).all()
