"""FastAPI dependencies of the task queue and the Tasks page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from hearth.worker.identity import MISSED_BEATS
from hearth.worker.queue import TaskQueue

if TYPE_CHECKING:
    from redis.asyncio import Redis


async def get_queue(request: Request) -> TaskQueue:
    """The task queue the app was started with."""
    queue: TaskQueue = request.app.state.queue
    return queue


QueueDep = Annotated[TaskQueue, Depends(get_queue)]


async def get_broker_redis(request: Request) -> Redis | None:
    """The app's Redis client, which is the broker's Redis; None with the embedded broker."""
    redis: Redis | None = request.app.state.redis
    return redis


BrokerRedisDep = Annotated["Redis | None", Depends(get_broker_redis)]


async def get_heartbeat_window(request: Request) -> float:
    """How recently a worker must have reported to count as alive, in seconds."""
    return float(request.app.state.settings.worker_heartbeat_seconds * MISSED_BEATS)


HeartbeatWindowDep = Annotated[float, Depends(get_heartbeat_window)]
