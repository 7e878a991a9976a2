"""All SQL of the health history: the ``health_events`` table."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Row, func, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from hearth.models import HealthEvent

if TYPE_CHECKING:
    import psycopg

# The first key of the two-key pg_advisory_xact_lock taken per component while a change is
# recorded ("hlth" in ASCII); the second is the hash of the component's name. Two-key locks
# live apart from the one-key locks of migrations and sweeps.
LOCK_NAMESPACE = 0x686C7468


async def record_change(
    session: AsyncSession, *, component: str, status: str, detail: str, changed_at: datetime
) -> bool:
    """Store that ``component`` turned ``status`` at ``changed_at``, unless the history
    already says so; True when a row was added. Replicas recording the same change (each
    at its own moment) add one row between them: a lock per component serialises them."""
    await session.execute(
        select(func.pg_advisory_xact_lock(LOCK_NAMESPACE, func.hashtext(component)))
    )
    of_component = select(HealthEvent.status).where(HealthEvent.component == component)
    before = await session.scalar(
        of_component.where(HealthEvent.changed_at <= changed_at)
        .order_by(HealthEvent.changed_at.desc(), HealthEvent.id.desc())
        .limit(1)
    )
    if before == status:
        return False  # known already: a repeat, a restart's first check, another replica
    after = await session.scalar(
        of_component.where(HealthEvent.changed_at > changed_at)
        .order_by(HealthEvent.changed_at, HealthEvent.id)
        .limit(1)
    )
    if after == status:
        # Another replica saw the same change a moment later (a change written late, after
        # a database outage): one row per change, so this one adds nothing.
        return False
    session.add(
        HealthEvent(component=component, status=status, detail=detail, changed_at=changed_at)
    )
    await session.flush()
    return True


async def changes_since(
    session: AsyncSession, components: Iterable[str], since: datetime
) -> Sequence[Row[str, str, datetime]]:
    """(component, status, time) of each component's changes from ``since`` on, with the
    one in force at ``since`` (the latest before it), ordered by component and time."""
    names = list(components)
    in_force = (
        select(HealthEvent.id)
        .where(HealthEvent.component.in_(names), HealthEvent.changed_at < since)
        .ext(distinct_on(HealthEvent.component))
        .order_by(HealthEvent.component, HealthEvent.changed_at.desc(), HealthEvent.id.desc())
    )
    query = (
        select(HealthEvent.component, HealthEvent.status, HealthEvent.changed_at)
        .where(
            HealthEvent.component.in_(names),
            (HealthEvent.changed_at >= since) | HealthEvent.id.in_(in_force),
        )
        .order_by(HealthEvent.component, HealthEvent.changed_at, HealthEvent.id)
    )
    return (await session.execute(query)).all()


async def latest_of_each(session: AsyncSession, components: Iterable[str]) -> Sequence[HealthEvent]:
    """Each component's latest change (none for a component without any)."""
    query = (
        select(HealthEvent)
        .where(HealthEvent.component.in_(list(components)))
        .ext(distinct_on(HealthEvent.component))
        .order_by(HealthEvent.component, HealthEvent.changed_at.desc(), HealthEvent.id.desc())
    )
    return (await session.scalars(query)).all()


async def latest_changes(
    session: AsyncSession, components: Iterable[str], *, since: datetime, limit: int
) -> Sequence[HealthEvent]:
    """At most ``limit`` changes of ``components`` from ``since`` on, newest first."""
    query = (
        select(HealthEvent)
        .where(HealthEvent.component.in_(list(components)), HealthEvent.changed_at >= since)
        .order_by(HealthEvent.changed_at.desc(), HealthEvent.id.desc())
        .limit(limit)
    )
    return (await session.scalars(query)).all()


# Each component's latest change before the cutoff stays: the status in force at the cutoff,
# and its "since". A change is superseded when a later one (or an equal time and a larger id)
# of the same component also came before the cutoff.
_DELETE_OLDER_THAN = (
    "DELETE FROM health_events AS event WHERE event.changed_at < %(cutoff)s AND EXISTS ("
    "SELECT 1 FROM health_events AS newer WHERE newer.component = event.component"
    " AND newer.changed_at < %(cutoff)s AND (newer.changed_at > event.changed_at"
    " OR (newer.changed_at = event.changed_at AND newer.id > event.id)))"
)


def delete_older_than(connection: psycopg.Connection, cutoff: datetime) -> int:
    """Delete the changes made before ``cutoff``, except each component's latest one before
    it; returns how many went. Plain SQL through psycopg alone: the worker's hourly prune
    builds no engine and no event loop for one statement."""
    return connection.execute(_DELETE_OLDER_THAN, {"cutoff": cutoff}).rowcount
