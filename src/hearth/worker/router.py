"""The task API: start the ``ping`` task, read any task's state."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel

from hearth.health.dependencies import RuntimeDep
from hearth.web.transaction import TransactionDep

router = APIRouter(prefix="/tasks", tags=["tasks"])


class TaskAccepted(BaseModel):
    id: str
    state: str = "PENDING"


class TaskState(BaseModel):
    id: str
    state: str
    result: Any = None
    error: str | None = None


@router.post("/ping", status_code=status.HTTP_202_ACCEPTED, response_model=TaskAccepted)
async def start_ping(transaction: TransactionDep, delay_seconds: float = 0.0) -> TaskAccepted:
    """Queue the ``ping`` task; 503 with the reason when the queue is down."""
    if not 0 <= delay_seconds <= 60:
        raise HTTPException(422, "delay_seconds must be between 0 and 60")
    return TaskAccepted(id=transaction.enqueue("hearth.ping", delay_seconds))


@router.get("/{task_id}", response_model=TaskState)
async def task_state(task_id: str, runtime: RuntimeDep) -> TaskState:
    """A task's state (PENDING, STARTED, SUCCESS, FAILURE, RETRY) and its result."""
    try:
        uuid.UUID(task_id)
    except ValueError:
        raise HTTPException(422, f"{task_id!r} is not a task id (a UUID)") from None
    return TaskState(**await runtime.task_queue().state(task_id))
