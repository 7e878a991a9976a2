"""The task queue's own work, for the API and the MCP tools: the ``ping`` round trip."""

from __future__ import annotations

import asyncio
import time

from hearth.worker.queue import PendingTask, TaskQueue
from hearth.worker.schemas import TaskState

PING_TASK = "hearth.ping"
PING_POLL_SECONDS = 0.1
_FINISHED = frozenset({"SUCCESS", "FAILURE", "REVOKED"})


async def start_ping(queue: TaskQueue, delay_seconds: float = 0.0) -> str:
    """Send ``hearth.ping``; its id. ``QueueUnavailable`` (503) when it was not queued."""
    task = PendingTask(PING_TASK, (delay_seconds,) if delay_seconds else ())
    await queue.send(task)
    return task.id


async def state(queue: TaskQueue, task_id: str) -> TaskState:
    """A task's state; an unknown id reads as PENDING (Celery cannot tell)."""
    return TaskState(**await queue.state(task_id))


async def ping(queue: TaskQueue, wait_seconds: float) -> TaskState:
    """Send ``hearth.ping`` and wait up to ``wait_seconds`` for a worker to finish it."""
    task_id = await start_ping(queue)
    current = TaskState(id=task_id, state="PENDING")
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        current = await state(queue, task_id)
        if current.state in _FINISHED:
            break
        await asyncio.sleep(PING_POLL_SECONDS)
    return current
