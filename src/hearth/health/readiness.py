"""Readiness (``/readyz``): the critical checks pass and the schema is at the newest
migration, which this process applied at start-up or someone else did since."""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from hearth.db import migrate
from hearth.health.schemas import ComponentHealth, ReadinessReport
from hearth.health.service import HealthService


class Readiness:
    """Whether this process should take traffic, and if not, why."""

    def __init__(self, health: HealthService, engine: AsyncEngine | None) -> None:
        self.health = health
        self.engine = engine
        self.migrated = False

    async def report(self, *, details: bool = True) -> ReadinessReport:
        """``ready``, or ``not_ready`` with the reason: the failing checks (with their
        details if ``details``, else their status alone) or the pending migrations."""
        results = await self.health.run(self.health.critical_names)
        failing = {name: r for name, r in results.items() if r.status == "unreachable"}
        reason = "; ".join(
            f"{name}: {r.detail if details else r.status}" for name, r in failing.items()
        )
        if not reason and not self.migrated:
            # Hearth's own words, no host or error text: every caller may read them.
            reason = await self._pending_migrations()
        checks = {name: ComponentHealth.of(r, details=details) for name, r in results.items()}
        return ReadinessReport(
            status="not_ready" if reason else "ready", reason=reason, checks=checks
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
