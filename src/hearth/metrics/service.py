"""One scrape: gather what the metrics read from outside the process (health states, the
broker, the database), each source on its own and within a bound, then render it beside
what the app recorded. A source that fails is left out of the answer and logged once, when
it starts failing; the scrape still answers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from hearth.kit.text import first_line
from hearth.log import get_logger
from hearth.metrics import collectors, repository, snapshot
from hearth.metrics.collectors import Scrape

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncEngine

    from hearth.health.service import HealthService
    from hearth.metrics.registry import AppMetrics

log = get_logger(__name__)

# The task queues (hearth.worker.app's DEFAULT_QUEUE and EMBEDDING_QUEUE, named here so the
# web app does not import Celery for them).
QUEUES = ("celery", "embedding")
# Each source answers within this or is left out of this scrape (Prometheus waits 10 s).
SOURCE_TIMEOUT_SECONDS = 2.0


class MetricsService:
    """Gathers and renders ``/metrics`` for one app."""

    def __init__(
        self,
        metrics: AppMetrics,
        health: HealthService,
        engine: AsyncEngine | None,
        redis: Redis | None,
        worker_window: float,
    ) -> None:
        """``worker_window``: how recent a worker's heartbeat must be for it to count."""
        self.metrics = metrics
        self.health = health
        self.engine = engine
        self.redis = redis
        self.worker_window = worker_window
        self._failing: set[str] = set()

    async def scrape(self, accept: str | None) -> tuple[bytes, str]:
        """The exposition of every metric, in the format ``accept`` asks for, and its
        content type."""
        found = await self.gather()
        families = collectors.merged(
            [
                self.metrics.registry.collect(),
                collectors.families(found),
                *(found.workers or {}).values(),
            ]
        )
        return collectors.exposition(families, accept)

    async def gather(self) -> Scrape:
        """What the sources say now; a source that fails or hangs is None in the result."""
        if set(self.health.states()) != set(self.health.names):
            # Nothing checked some component yet (the monitor checks them all, later).
            await self.health.run()
        found = Scrape(components=self.health.states())
        sources: dict[str, Callable[[], Awaitable[Any]]] = {}
        if self.redis is not None:
            sources["queues"] = self._redis_queues
        elif self.engine is not None:
            sources["queues"] = self._database_queues
        if self.engine is not None:
            sources["documents"] = self._documents
            sources["workers"] = self._workers
        results = await asyncio.gather(*(self._read(name, read) for name, read in sources.items()))
        values = dict(zip(sources, results, strict=True))
        found.queues = values.get("queues")
        found.documents = values.get("documents")
        found.workers = values.get("workers")
        found.sources = {name: values[name] is None for name in sources}
        return found

    async def _read(self, name: str, read: Callable[[], Awaitable[Any]]) -> Any:  # noqa: ANN401 (each source its own type)
        try:
            value = await asyncio.wait_for(read(), SOURCE_TIMEOUT_SECONDS)
        except Exception as exc:  # noqa: BLE001 (a source's errors are many: Redis, SQL, OS, timeout)
            if name not in self._failing:
                self._failing.add(name)
                reason = first_line(exc) or type(exc).__name__
                log.warning("metrics_source_failed", source=name, reason=reason)
            return None
        if name in self._failing:
            self._failing.discard(name)
            log.info("metrics_source_recovered", source=name)
        return value

    async def _redis_queues(self) -> dict[str, int]:
        assert self.redis is not None
        return await repository.redis_depths(self.redis, QUEUES)

    async def _database_queues(self) -> dict[str, int]:
        assert self.engine is not None
        async with self.engine.connect() as connection:
            return await repository.broker_depths(connection, QUEUES)

    async def _documents(self) -> dict[str, int]:
        assert self.engine is not None
        async with self.engine.connect() as connection:
            return await repository.documents_by_status(connection)

    async def _workers(self) -> dict[str, list[Metric]]:
        assert self.engine is not None
        async with self.engine.connect() as connection:
            rows = await repository.live_workers(connection, self.worker_window)
        return {name: snapshot.decode(metrics) for name, metrics in rows}
