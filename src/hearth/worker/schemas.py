"""What the task API and the MCP tools answer about tasks."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class TaskAccepted(BaseModel):
    """A task queued: GET /tasks/{id} follows it."""

    id: str
    state: str = "PENDING"


class TaskState(BaseModel):
    """A task's state and, once it finished, its result or error."""

    id: str = Field(description="The Celery task id; GET /tasks/{id} reads its state later")
    state: str = Field(description="PENDING, STARTED, SUCCESS, FAILURE, RETRY or REVOKED")
    result: Any = Field(default=None, description='On SUCCESS: {"pong": true, "worker": …}')
    error: str | None = None
