"""The SQL of notifications: what ``health_events`` says each component needs, and the claim
that lets one replica, and only one, send a notice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# Per component: its latest change if nobody has sent its notice yet, the latest change
# whose notice was sent (a "down" or a "recovered"), and whether it has been ok since that.
# The database's clock decides the grace period and the horizon, one clock for every replica.
_PENDING = text(
    """
    WITH latest AS (
        SELECT DISTINCT ON (component) id, component, status, detail, changed_at, notified_at
        FROM health_events
        ORDER BY component, changed_at DESC, id DESC
    ), notice AS (
        SELECT DISTINCT ON (component) component, status, changed_at
        FROM health_events
        WHERE notified_at IS NOT NULL
        ORDER BY component, changed_at DESC, id DESC
    )
    SELECT l.id, l.component, l.status, l.detail, l.changed_at,
           l.changed_at <= now() - make_interval(secs => :grace) AS past_grace,
           n.status AS notice_status, n.changed_at AS notice_changed_at,
           EXISTS (
               SELECT 1 FROM health_events o
               WHERE o.component = l.component AND o.status = 'ok'
                 AND o.changed_at > n.changed_at
           ) AS ok_since_notice
    FROM latest l LEFT JOIN notice n USING (component)
    WHERE l.notified_at IS NULL
      AND l.changed_at >= now() - make_interval(secs => :horizon)
      AND l.component <> ALL(:skip)
    ORDER BY l.component
    """
)

# Only the latest change of its component can be claimed: one that has been followed by
# another while this replica was deciding is left alone.
_CLAIM = text(
    """
    UPDATE health_events AS e SET notified_at = now()
    WHERE e.id = :id AND e.notified_at IS NULL
      AND NOT EXISTS (
          SELECT 1 FROM health_events newer
          WHERE newer.component = e.component
            AND (newer.changed_at, newer.id) > (e.changed_at, e.id)
      )
    RETURNING e.id
    """
)


@dataclass(frozen=True)
class Pending:
    """A component's latest change that no notice has been sent for."""

    id: int
    component: str
    status: str
    detail: str
    changed_at: datetime
    past_grace: bool
    notice_status: str | None
    notice_changed_at: datetime | None
    ok_since_notice: bool


async def pending(
    session: AsyncSession, *, grace: float, horizon: float, skip: tuple[str, ...] = ()
) -> list[Pending]:
    """Each component's latest change not yet notified, changed within ``horizon`` seconds,
    with what was last notified for it; components in ``skip`` left out."""
    rows = await session.execute(_PENDING, {"grace": grace, "horizon": horizon, "skip": list(skip)})
    return [Pending(**row._mapping) for row in rows]  # noqa: SLF001 (SQLAlchemy's public row API)


async def claim(session: AsyncSession, event_id: int) -> bool:
    """Mark the change ``event_id`` as notified; True for the one caller that did it."""
    claimed = await session.execute(_CLAIM, {"id": event_id})
    return claimed.scalar_one_or_none() is not None
