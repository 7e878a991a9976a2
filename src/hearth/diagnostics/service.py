"""Gathering the report: each section on its own and within a bound, a section that cannot
be read saying why instead of failing the report (it is most wanted when something is down);
then every string of it scrubbed of this configuration's secrets once more, whatever path
a value took to get there."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from hearth.config.service import ConfigService
from hearth.db.migrate import HEAD_REVISION, known_revisions
from hearth.diagnostics import host, repository, sources, text
from hearth.diagnostics.schemas import (
    Diagnostics,
    LogSection,
    MigrationsSection,
    QueuesSection,
    SettingsSection,
    WorkerInfo,
    WorkersSection,
)
from hearth.kit.text import first_line
from hearth.log import recent_events
from hearth.log.redaction import Redactor
from hearth.log.setup import log_ring
from hearth.version import hearth_version

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncEngine

    from hearth.config.settings import Settings
    from hearth.health.service import HealthService

# Each section answers within this or says it did not (the health checks keep their own 2 s).
SECTION_TIMEOUT_SECONDS = 3.0
_NO_DATABASE = "no database to read (see the db check above)"

T = TypeVar("T")


class DiagnosticsService:
    """Gathers the diagnostics of one process from the resources it was started with."""

    def __init__(  # noqa: PLR0913 (keyword-only: the resources one report reads)
        self,
        *,
        settings: Settings,
        health: HealthService,
        engine: AsyncEngine | None,
        redis: Redis | None,
        worker_window: float,
        health_details: bool = True,
    ) -> None:
        """``worker_window``: how recent a heartbeat must be for its worker to be alive;
        ``health_details``: whether the checks' details are shown (``HEALTH_DETAILS``)."""
        self.settings = settings
        self.health = health
        self.engine = engine
        self.redis = redis
        self.worker_window = worker_window
        self.health_details = health_details
        self.config = ConfigService(settings)
        self._redactor = Redactor(settings.secret_values())

    async def gather(self, *, generated_by: str, logs: list[LogSection]) -> Diagnostics:
        """The report, ``logs`` last; ``text`` filled in; every secret masked."""
        health, migrations, queues, workers, runtime = await asyncio.gather(
            self.health.report(details=self.health_details),
            _bounded(
                self._migrations(),
                lambda e: MigrationsSection(head=HEAD_REVISION, status="unread", error=e),
            ),
            _bounded(self._queues(), lambda e: QueuesSection(broker=self._broker(), error=e)),
            _bounded(
                self._workers(),
                lambda e: WorkersSection(window_seconds=self.worker_window, error=e),
            ),
            _bounded(
                self._runtime(), lambda e: SettingsSection(infrastructure=[], runtime=[], error=e)
            ),
        )
        report = Diagnostics(
            generated_at=datetime.now(UTC),
            generated_by=generated_by,
            version=hearth_version(),
            platform=host.platform_info(),
            health=health,
            migrations=migrations,
            queues=queues,
            workers=workers,
            settings=SettingsSection(
                infrastructure=sources.infrastructure(self.settings),
                runtime=runtime.runtime or sources.runtime(self.config.values_without_database()),
                error=runtime.error,
            ),
            logs=logs,
        )
        scrubbed = Diagnostics.model_validate(self.scrub(report.model_dump(mode="json")))
        scrubbed.text = text.render(scrubbed)
        return scrubbed

    def scrub(self, value: Any) -> Any:  # noqa: ANN401 (any JSON value)
        """Every string in ``value`` (keys too) with URL passwords, API tokens and this
        configuration's secrets masked; structure and other types as they are."""
        if isinstance(value, str):
            return self._redactor.scrub_text(value)
        if isinstance(value, dict):
            return {self._redactor.scrub_text(str(k)): self.scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub(item) for item in value]
        return value

    def _broker(self) -> Any:  # noqa: ANN401 (the schema's Literal)
        if self.redis is not None:
            return "redis"
        return "postgresql" if self.engine is not None else "none"

    async def _migrations(self) -> MigrationsSection:
        if self.engine is None:
            return MigrationsSection(head=HEAD_REVISION, status="unread", error=_NO_DATABASE)
        current = await repository.revision(self.engine)
        if current is None:
            status: Any = "no_tables"
        elif current == HEAD_REVISION:
            status = "current"
        else:
            known = await asyncio.to_thread(known_revisions)  # Alembic reads its scripts
            status = "behind" if current in known else "unknown_revision"
        return MigrationsSection(current=current, head=HEAD_REVISION, status=status)

    async def _queues(self) -> QueuesSection:
        broker = self._broker()
        if self.redis is not None:
            return QueuesSection(broker=broker, depths=await repository.redis_depths(self.redis))
        if self.engine is None:
            return QueuesSection(broker=broker, error=_NO_DATABASE)
        async with self.engine.connect() as connection:
            depths = await repository.database_depths(connection)
        return QueuesSection(broker=broker, depths=depths)

    async def _workers(self) -> WorkersSection:
        if self.engine is None:
            return WorkersSection(window_seconds=self.worker_window, error=_NO_DATABASE)
        async with self.engine.connect() as connection:
            rows = await repository.workers(connection)
        found = [
            WorkerInfo(
                name=name,
                pid=pid,
                concurrency=concurrency,
                started_at=started,
                last_report_seconds=age,
                alive=age < self.worker_window,
            )
            for name, pid, concurrency, started, age in rows
        ]
        return WorkersSection(window_seconds=self.worker_window, workers=found)

    async def _runtime(self) -> SettingsSection:
        """Only the runtime values (the infrastructure ones need no I/O)."""
        if self.engine is None:
            return SettingsSection(infrastructure=[], runtime=[], error=_NO_DATABASE)
        from sqlalchemy.ext.asyncio import AsyncSession

        async with AsyncSession(self.engine) as session:
            values = await self.config.values_in_force(session)
        return SettingsSection(infrastructure=[], runtime=sources.runtime(values))


def own_log(process: str) -> LogSection:
    """The running process's ring of warnings and errors, as a log section."""
    ring = log_ring()
    return LogSection(
        process=f"{process} (pid {os.getpid()})",
        read=True,
        capacity=ring.capacity,
        dropped=ring.dropped,
        events=recent_events(),
    )


async def _bounded(work: Awaitable[T], failed: Callable[[str], T]) -> T:
    """``work``'s result, or ``failed(reason)`` when it fails or takes too long."""
    try:
        return await asyncio.wait_for(work, SECTION_TIMEOUT_SECONDS)
    except TimeoutError:
        return failed(f"no answer within {SECTION_TIMEOUT_SECONDS:g} s")
    except Exception as exc:  # noqa: BLE001 (a section's errors are many: SQL, Redis, OS)
        return failed(first_line(exc) or type(exc).__name__)
