"""The task queue's own work, for the API, the MCP tools and the Tasks page: the ``ping``
round trip; queues, workers and recent runs; Retry of a failed task."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hearth.errors import HearthError
from hearth.kit.text import first_line
from hearth.metrics import repository as metrics_repository
from hearth.worker import repository
from hearth.worker.queue import PendingTask, TaskQueue
from hearth.worker.schemas import (
    RunningTask,
    TaskRetried,
    TaskRunOut,
    TasksOverview,
    TaskState,
    WorkerOut,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncConnection

PING_TASK = "hearth.ping"
PING_POLL_SECONDS = 0.1
_FINISHED = frozenset({"SUCCESS", "FAILURE", "REVOKED"})
# hearth.worker.app's DEFAULT_QUEUE and EMBEDDING_QUEUE, named here so that the web app
# does not import Celery for them.
QUEUES = ("celery", "embedding")
RECENT_RUNS = 50
FAILED_RUNS = 20
# The broker's Redis answers within this, or the page shows the queues as unreadable.
QUEUE_READ_TIMEOUT_SECONDS = 2.0


class TaskNotFound(HearthError):
    """No run of this task is recorded: 404."""

    status_code = 404


class TaskNotRetryable(HearthError):
    """The task did not fail, was retried already, or its arguments were not kept: 409."""

    status_code = 409


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


async def overview(
    connection: AsyncConnection, redis: Redis | None, window: float
) -> TasksOverview:
    """What the Tasks page shows: each queue's depth (from Redis, or from the embedded
    broker's tables), every worker's last report, the latest runs and failures. A broker
    that cannot be read leaves the queues null with the reason; the rest is the database's."""
    queues, queues_error = await _queue_depths(connection, redis)
    workers = [_worker(row, window) for row in await repository.workers(connection)]
    recent = [_run(row) for row in await repository.recent_runs(connection, RECENT_RUNS)]
    failures = [_run(row) for row in await repository.failed_runs(connection, FAILED_RUNS)]
    return TasksOverview(
        broker="redis" if redis is not None else "postgresql",
        queues=queues,
        queues_error=queues_error,
        workers=workers,
        recent=recent,
        failures=failures,
    )


async def retry(connection: AsyncConnection, queue: TaskQueue, task_id: str) -> TaskRetried:
    """Send a failed task again, by name with its stored arguments, as a new task, and mark
    the failed one retried. 404 for a task with no recorded run, 409 for one that did not
    fail, was retried already or whose arguments were not kept; ``QueueUnavailable`` (503)
    when the broker did not take it (then the failed task stays as it was)."""
    run = await repository.run_for_update(connection, task_id)
    if run is None:
        raise TaskNotFound(
            f"No run of task {task_id!r} is recorded: workers record a run when it ends, "
            "and runs are kept a week."
        )
    refusal = _why_not_retryable(run)
    if refusal is not None:
        raise TaskNotRetryable(f"Task {task_id!r} cannot be retried: {refusal}.")
    arguments: dict[str, Any] = run["arguments"]
    task = PendingTask(run["name"], tuple(arguments["args"]), dict(arguments["kwargs"]))
    # Sent inside the transaction that holds the run's row: a second Retry waits, then finds
    # it retried. Should the commit fail after the send, the task runs while the failure
    # still shows as not retried; tasks are idempotent, so a second Retry does no harm,
    # whereas sending after the commit could mark as retried a task that was never sent.
    await queue.send(task)
    await repository.mark_retried(connection, task_id, task.id)
    return TaskRetried(id=task.id, retry_of=task_id)


def _why_not_retryable(run: dict[str, Any]) -> str | None:
    if run["state"] != "FAILURE":
        return f"it did not fail (its last run ended {run['state']})"
    if run["retried_as"] is not None:
        return f"it was retried already, as {run['retried_as']}"
    arguments = run["arguments"]
    if not isinstance(arguments, dict) or not {"args", "kwargs"} <= arguments.keys():
        return "its arguments were not kept (too large, or a keyword that looks like a secret)"
    return None


async def _queue_depths(
    connection: AsyncConnection, redis: Redis | None
) -> tuple[dict[str, int] | None, str | None]:
    if redis is None:
        return await metrics_repository.broker_depths(connection, QUEUES), None
    try:
        depths = await asyncio.wait_for(
            metrics_repository.redis_depths(redis, QUEUES), QUEUE_READ_TIMEOUT_SECONDS
        )
    except Exception as exc:  # noqa: BLE001 (redis-py's errors are many; the page still answers)
        return None, f"the broker's Redis could not be read: {first_line(exc)}"
    return depths, None


def _run(row: dict[str, Any]) -> TaskRunOut:
    return TaskRunOut(
        id=row["task_id"],
        name=row["name"],
        state=row["state"],
        worker=row["worker"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        runtime_seconds=row["runtime_seconds"],
        error=row["error"],
        runs=row["runs"],
        retried_as=row["retried_as"],
        retried_at=row["retried_at"],
        retryable=_why_not_retryable(row) is None,
    )


def _worker(row: dict[str, Any], window: float) -> WorkerOut:
    name = str(row["hostname"])
    age = float(row["age"])
    running = row["running"] if isinstance(row["running"], list) else []
    return WorkerOut(
        name=name,
        host=name.partition("@")[2] or name,
        pid=row["pid"],
        concurrency=row["concurrency"],
        started_at=row["started_at"],
        last_heartbeat=row["seen_at"],
        seconds_since_heartbeat=age,
        alive=age < window,
        running=[_running(item) for item in running if isinstance(item, dict)],
    )


def _running(item: dict[str, Any]) -> RunningTask:
    started = item.get("started")
    return RunningTask(
        id=str(item.get("id")),
        name=str(item.get("name")),
        started_at=(
            datetime.fromtimestamp(started, UTC) if isinstance(started, int | float) else None
        ),
    )
