"""FastAPI dependencies of the task queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from hearth.worker.queue import TaskQueue


async def get_queue(request: Request) -> TaskQueue:
    """The task queue the app was started with."""
    queue: TaskQueue = request.app.state.queue
    return queue


QueueDep = Annotated[TaskQueue, Depends(get_queue)]
