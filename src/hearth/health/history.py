"""The health history: each change of a component's status stored once (not each probe, not
once per replica), read back as "since", availability and a bar, and pruned.

Changes reach ``HealthHistory.record`` from the health checks, in the event loop, and wait
in memory for a writer task: a database that is down (the database itself going away is
such a change) costs no change, which is written with its own time once the database
answers again. The queue is bounded; past that the oldest changes are dropped, and said so.
"""

from __future__ import annotations

import asyncio
from collections import deque
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, cast

from sqlalchemy.ext.asyncio import AsyncSession

from hearth.db.engine import error_reason
from hearth.db.unit import Sessions, is_unavailable
from hearth.health import repository
from hearth.health.history_schemas import ComponentHistory, HistoryEvent, HistoryReport
from hearth.health.timeline import BAR_SPAN, SLOT, Change, availability, bar
from hearth.kit.checks import CheckResult, CheckStatus
from hearth.kit.urls import mask_urls
from hearth.log import get_logger

if TYPE_CHECKING:
    import psycopg

log = get_logger(__name__)

# Changes kept in memory while the database cannot take them: hours of a flapping component.
MAX_PENDING = 1000
# How often the writer tries again while the database is away.
RETRY_SECONDS = 5.0
# A stored detail is a line or two for people, not a traceback.
MAX_DETAIL = 500


@dataclass(frozen=True)
class PendingChange:
    """A change waiting to be written, with the time it happened."""

    component: str
    status: str
    detail: str
    at: datetime


class HealthHistory:
    """Records this process's status changes in ``health_events``."""

    def __init__(
        self,
        sessions: Sessions | None,
        *,
        max_pending: int = MAX_PENDING,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self.sessions = sessions
        self.max_pending = max_pending
        self.retry_seconds = retry_seconds
        self.dropped = 0
        self._pending: deque[PendingChange] = deque()
        self._wake = asyncio.Event()

    @property
    def pending(self) -> int:
        """How many changes wait to be written."""
        return len(self._pending)

    def record(
        self, name: str, _previous: CheckResult | None, result: CheckResult, at: float
    ) -> None:
        """Queue a change for writing (a ``HealthService`` change listener: never blocks,
        never raises). ``starting`` is not a change worth keeping: a start is recorded by
        the status it ends in (``ok``, or ``unreachable`` once its window is over), so a
        normal restart adds no row and no notice."""
        if self.sessions is None:
            return  # no database configured: nowhere to keep a history
        if result.status == "starting":
            return
        if len(self._pending) >= self.max_pending:
            lost = self._pending.popleft()
            self.dropped += 1
            log.warning("health_change_dropped", component=lost.component, status=lost.status)
        detail = mask_urls(result.detail).replace("\x00", "\ufffd")[:MAX_DETAIL]
        moment = datetime.fromtimestamp(at, UTC)
        self._pending.append(PendingChange(name, result.status, detail, moment))
        self._wake.set()

    async def flush(self) -> int:
        """Write the waiting changes in order; stop at one the database cannot take now (it
        stays first in line). Returns how many still wait."""
        while self._pending and self.sessions is not None:
            change = self._pending[0]
            try:
                async with self.sessions() as session, session.begin():
                    written = await repository.record_change(
                        session,
                        component=change.component,
                        status=change.status,
                        detail=change.detail,
                        changed_at=change.at,
                    )
            except Exception as exc:
                if is_unavailable(exc):
                    return len(self._pending)
                # Refused, not unreachable: retrying would refuse it forever.
                log.warning(
                    "health_change_not_recorded",
                    component=change.component,
                    reason=error_reason(exc),
                    exc_info=True,
                )
                written = False
            self._pending.popleft()
            if written:
                log.info("health_change_recorded", component=change.component, status=change.status)
        return len(self._pending)

    async def run(self) -> None:
        """Write changes as they come, retrying while the database is away; until
        cancelled."""
        said_waiting = False
        while True:
            if not self._pending:
                await self._wake.wait()
            self._wake.clear()
            try:
                remaining = await self.flush()
            except Exception:  # the writer must outlive any failure
                log.warning("health_history_write_failed", exc_info=True)
                remaining = len(self._pending)
            if not remaining:
                if said_waiting:
                    log.info("health_changes_caught_up")
                said_waiting = False
                continue
            if not said_waiting:
                log.warning("health_changes_waiting_for_database", pending=remaining)
                said_waiting = True
            # A new change (the database back, say) wakes the writer before the retry is due.
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.retry_seconds)


@dataclass(frozen=True)
class Recent:
    """Which changes a report lists: at most ``limit``, of the last ``days`` days."""

    days: int
    limit: int


async def report(
    session: AsyncSession, components: list[str], *, now: datetime, recent: Recent, details: bool
) -> HistoryReport:
    """Per component its status since when, availability over 24 h and 7 d and the bar of
    the last 24 h; and the ``recent`` changes, newest first. Details left out (null) unless
    ``details``."""
    week = now - timedelta(days=7)
    changes: dict[str, list[Change]] = {name: [] for name in components}
    for component, status, at in await repository.changes_since(session, components, week):
        changes[component].append(Change(status, at))
    latest = {
        event.component: event for event in await repository.latest_of_each(session, components)
    }
    shown = {}
    for name, timeline in changes.items():
        last = latest.get(name)
        shown[name] = ComponentHistory(
            status=cast("CheckStatus", last.status) if last else None,
            since=last.changed_at.astimezone(UTC) if last else None,
            detail=last.detail if last and details else None,
            availability_24h=availability(timeline, now - BAR_SPAN, now),
            availability_7d=availability(timeline, week, now),
            bar=[slot.status for slot in bar(timeline, now)],
        )
    latest_changes = await repository.latest_changes(
        session, components, since=now - timedelta(days=recent.days), limit=recent.limit
    )
    return HistoryReport(
        generated_at=now,
        bar_start=now - BAR_SPAN,
        bar_slot_seconds=int(SLOT.total_seconds()),
        components=shown,
        events=[HistoryEvent.of(event, details=details) for event in latest_changes],
    )


def prune(connection: psycopg.Connection, *, keep_days: int, now: datetime | None = None) -> int:
    """Delete the changes older than ``keep_days``, keeping each component's latest; returns
    how many went."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=keep_days)
    deleted = repository.delete_older_than(connection, cutoff)
    log.info("health_history_pruned", deleted=deleted, keep_days=keep_days)
    return deleted
