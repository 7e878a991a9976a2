"""All SQL and Redis reads of the diagnostics: the workers' heartbeats, the migration the
database is at, and the task queues' depths (the latter two through the modules that own
them: ``hearth.db.migrate``, ``hearth.metrics.repository``). Constants only."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from hearth.db import migrate
from hearth.metrics import repository as queue_reads

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

# The task queues (hearth.worker.app's DEFAULT_QUEUE and EMBEDDING_QUEUE, named here so the
# web app does not import Celery for them, as hearth.metrics.service does).
QUEUES = ("celery", "embedding")
# Every worker that still has a row, newest report first: a clean stop removes the row, so
# one that is here but not alive stopped without saying so (the worker prunes them later).
_WORKERS = (
    "SELECT hostname, pid, concurrency, started_at, extract(epoch FROM now() - seen_at) "
    "FROM worker_heartbeats ORDER BY seen_at DESC LIMIT 50"
)


async def workers(connection: AsyncConnection) -> list[tuple[str, int, int, datetime, float]]:
    """(name, pid, concurrency, started at, seconds since its last report) of each worker."""
    result = await connection.exec_driver_sql(_WORKERS)
    rows: list[tuple[Any, ...]] = [tuple(row) for row in result]
    return [(str(n), int(p), int(c), s, float(age)) for n, p, c, s, age in rows]


async def revision(engine: AsyncEngine) -> str | None:
    """The migration the database is at; None before the first."""
    return await migrate.current_revision(engine)


async def database_depths(connection: AsyncConnection) -> dict[str, int]:
    """Messages waiting in each task queue of the embedded broker (PostgreSQL)."""
    return await queue_reads.broker_depths(connection, QUEUES)


async def redis_depths(redis: Redis) -> dict[str, int]:
    """Messages waiting in each task queue on the Redis broker."""
    return await queue_reads.redis_depths(redis, QUEUES)
