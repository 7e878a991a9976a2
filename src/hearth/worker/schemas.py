"""What the task API and the MCP tools answer about tasks, and the Tasks page's data."""

from __future__ import annotations

from datetime import datetime
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


class TaskRunOut(BaseModel):
    """A task run as its worker recorded it when it ended."""

    id: str = Field(description="The Celery task id")
    name: str
    state: str = Field(description="SUCCESS, FAILURE or RETRY (Celery will run it again)")
    worker: str
    started_at: datetime
    finished_at: datetime
    runtime_seconds: float
    error: str | None = Field(description="Why it failed: the error's type and first line")
    runs: int = Field(description="How many times this task id ran (a task handed back runs again)")
    retried_as: str | None = Field(description="The new task Retry sent in this one's place")
    retried_at: datetime | None
    retryable: bool = Field(description="Whether POST /tasks/{id}/retry would send it again")


class RunningTask(BaseModel):
    """A task a worker was running at its last heartbeat."""

    id: str
    name: str
    started_at: datetime | None


class WorkerOut(BaseModel):
    """A worker, as its last heartbeat described it."""

    name: str = Field(description="The worker's node name, hearth-<run>@<host>")
    host: str
    pid: int
    concurrency: int
    started_at: datetime
    last_heartbeat: datetime
    seconds_since_heartbeat: float
    alive: bool = Field(description="Whether it reported within three heartbeat intervals")
    running: list[RunningTask] = Field(description="What it was running at its last heartbeat")


class TasksOverview(BaseModel):
    """The Tasks page's data: queues, workers, recent runs and failures."""

    broker: str = Field(description="redis, or postgresql (the embedded broker)")
    queues: dict[str, int] | None = Field(
        description="Tasks waiting in each queue; null when the broker could not be read"
    )
    queues_error: str | None = Field(default=None, description="Why the queues are null")
    workers: list[WorkerOut]
    recent: list[TaskRunOut] = Field(description="The latest runs, latest first")
    failures: list[TaskRunOut] = Field(description="The latest failed runs, latest first")


class TaskRetried(BaseModel):
    """A failed task sent again as a new task."""

    id: str = Field(description="The new task's id: GET /tasks/{id} follows it")
    state: str = "PENDING"
    retry_of: str = Field(description="The failed task it replaces")
