"""All SQL and Redis reads of a scrape: documents by status, the live workers' metric
snapshots (written with their heartbeats, ``hearth.worker.heartbeat``), the embedded
broker's queue depths, the task queues' depths in Redis. Constants only: nothing of a
request goes in."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncConnection

# The statuses the documents API knows (hearth.documents.schemas); each is exported, 0
# included. One pass over the table; the count of each is all it reads.
DOCUMENT_STATUSES = ("pending", "embedded")
_DOCUMENTS = (
    "SELECT CASE WHEN embedded_at IS NULL THEN 'pending' ELSE 'embedded' END, count(*) "
    "FROM documents GROUP BY 1"
)
# A worker is alive while its heartbeat is fresh, as the ``worker`` health check judges it.
_WORKERS = (
    "SELECT hostname, metrics FROM worker_heartbeats "
    "WHERE extract(epoch FROM now() - seen_at) < %(window)s ORDER BY hostname"
)
# The embedded queue (hearth.worker.pg_transport): a message waiting is one not taken; one
# delivered to a worker is taken until acknowledged (deleted) or handed back.
_BROKER_DEPTHS = (
    "SELECT queue, count(*) FROM task_messages "
    "WHERE taken_at IS NULL AND queue = ANY(%(names)s) GROUP BY queue"
)


async def documents_by_status(connection: AsyncConnection) -> dict[str, int]:
    """How many documents have each status; every status present, 0 included."""
    counts = dict.fromkeys(DOCUMENT_STATUSES, 0)
    result = await connection.exec_driver_sql(_DOCUMENTS)
    rows: list[tuple[Any, Any]] = [tuple(row) for row in result]
    for status, count in rows:
        counts[str(status)] = int(count)
    return counts


async def live_workers(connection: AsyncConnection, window: float) -> list[tuple[str, object]]:
    """The workers that reported within ``window`` seconds, each with the metrics snapshot
    its last report carried (None from a worker that keeps no metrics)."""
    result = await connection.exec_driver_sql(_WORKERS, {"window": window})
    rows: list[tuple[Any, Any]] = [tuple(row) for row in result]
    return [(str(name), metrics) for name, metrics in rows]


async def broker_depths(connection: AsyncConnection, queues: Sequence[str]) -> dict[str, int]:
    """Messages waiting in each of ``queues`` of the embedded broker (0 for a queue nothing
    waits in)."""
    depths = dict.fromkeys(queues, 0)
    result = await connection.exec_driver_sql(_BROKER_DEPTHS, {"names": list(queues)})
    rows: list[tuple[Any, Any]] = [tuple(row) for row in result]
    for name, count in rows:
        depths[str(name)] = int(count)
    return depths


async def redis_depths(redis: Redis, queues: Sequence[str]) -> dict[str, int]:
    """Messages waiting in each of ``queues`` on the Redis broker (kombu keeps a list per
    queue), read in one round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        for name in queues:
            pipe.llen(name)
        lengths = await pipe.execute()
    return {name: int(length) for name, length in zip(queues, lengths, strict=True)}
