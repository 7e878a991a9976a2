"""The task API: start the ``ping`` task, read any task's state."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, HTTPException, status

from hearth.access.dependencies import require
from hearth.web.openapi import error_responses
from hearth.worker import service
from hearth.worker.dependencies import QueueDep
from hearth.worker.schemas import TaskAccepted, TaskState

router = APIRouter(prefix="/tasks", tags=["tasks"])

MAX_PING_DELAY_SECONDS = 60


@router.post(
    "/ping",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskAccepted,
    dependencies=[require("write")],
    responses=error_responses(401, 403, 503),
)
async def start_ping(queue: QueueDep, delay_seconds: float = 0.0) -> TaskAccepted:
    """Queue the ``ping`` task; 503 with the reason when the queue is down (then nothing
    was queued)."""
    if not 0 <= delay_seconds <= MAX_PING_DELAY_SECONDS:
        raise HTTPException(422, f"delay_seconds must be between 0 and {MAX_PING_DELAY_SECONDS}")
    return TaskAccepted(id=await service.start_ping(queue, delay_seconds))


@router.get(
    "/{task_id}",
    response_model=TaskState,
    dependencies=[require("read")],
    responses=error_responses(401, 403, 503),
)
async def task_state(task_id: str, queue: QueueDep) -> TaskState:
    """A task's state (PENDING, STARTED, SUCCESS, FAILURE, RETRY) and its result."""
    try:
        uuid.UUID(task_id)
    except ValueError:
        raise HTTPException(422, f"{task_id!r} is not a task id (a UUID)") from None
    return await service.state(queue, task_id)
