"""Hearth's own tasks. Every task is idempotent: a task taken by a worker that dies runs
again on another, so running twice must have the effect of running once."""

from __future__ import annotations

import socket
import time
from typing import Any

from celery import shared_task


@shared_task(name="hearth.ping")  # type: ignore[untyped-decorator]
def ping(delay_seconds: float = 0.0) -> dict[str, Any]:
    """Prove the queue works end to end: answers ``pong`` and which worker ran it."""
    if delay_seconds > 0:
        time.sleep(min(delay_seconds, 60.0))
    return {"pong": True, "worker": socket.gethostname()}
