"""Redis: the client Hearth shares, and the ``redis`` health check.

redis-py is imported only when ``REDIS_URL`` is set: it adds a quarter of a second and
several megabytes to a start-up that does not use it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from hearth.kit.checks import CheckResult
from hearth.kit.text import first_line
from hearth.kit.urls import mask_url

if TYPE_CHECKING:
    from redis.asyncio import Redis

TIMEOUT_SECONDS = 1.5


def create_client(url: str) -> Redis:
    """A client that gives up quickly, so an unreachable Redis cannot stall a request."""
    from redis.asyncio import Redis

    return Redis.from_url(
        url,
        socket_connect_timeout=TIMEOUT_SECONDS,
        socket_timeout=TIMEOUT_SECONDS,
        health_check_interval=30,
    )


class RedisAdapter:
    """The ``redis`` check: a PING. ``unconfigured`` when ``REDIS_URL`` is unset."""

    def __init__(self, client: Redis | None, url: str | None) -> None:
        self.client = client
        self.location = mask_url(url) if url else ""

    async def check(self) -> CheckResult:
        """``ok`` when Redis answers PING, else ``unreachable`` with the reason."""
        if self.client is None:
            return CheckResult(status="unconfigured", detail="REDIS_URL is not set")
        from redis.exceptions import RedisError

        started = time.perf_counter()
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            reason = first_line(exc)
            return CheckResult.timed("unreachable", f"{self.location}: {reason}", started)
        return CheckResult.timed("ok", f"PING answered by {self.location}", started)
