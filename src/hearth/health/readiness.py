"""Readiness (``/readyz``): the critical checks pass and the schema is at the newest
migration, which this process applied at start-up or someone else did since."""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from hearth.db import migrate
from hearth.health.schemas import ReadinessReport
from hearth.health.service import HealthService


class Readiness:
    """Whether this process should take traffic, and if not, why."""

    def __init__(self, health: HealthService, engine: AsyncEngine | None) -> None:
        self.health = health
        self.engine = engine
        self.migrated = False

    async def report(self) -> ReadinessReport:
        """``ready``, or ``not_ready`` with the failing checks' details or the pending
        migrations as the reason."""
        results = await self.health.run(self.health.critical_names)
        failing = {name: r for name, r in results.items() if r.status == "unreachable"}
        reason = "; ".join(f"{name}: {r.detail}" for name, r in failing.items())
        if not reason and not self.migrated:
            reason = await self._pending_migrations()
        return ReadinessReport(
            status="not_ready" if reason else "ready", reason=reason, checks=results
        )

    async def _pending_migrations(self) -> str:
        """Empty once the schema is at head (then remembered), else why it is not ready."""
        if self.engine is None:
            return "no database"
        try:
            self.migrated = await migrate.schema_is_current(self.engine)
        except SQLAlchemyError:
            return "database schema unknown: cannot read the migration version"
        return "" if self.migrated else "database migrations are pending: run `hearth migrate`"
