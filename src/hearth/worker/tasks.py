"""Hearth's own tasks. Every task is idempotent: a task taken by a worker that dies runs
again on another, so running twice must have the effect of running once."""

from __future__ import annotations

import socket
import time
from typing import Any

from celery import shared_task

from hearth.db import driver
from hearth.worker import repository

PRUNE_TASK_RUNS_TASK = "hearth.prune_task_runs"
# The Tasks page shows a week of runs, and never more than this many: a flood of tiny tasks
# (thousands an hour) must not grow the table without bound before the week is up.
KEEP_RUN_DAYS = 7
KEEP_RUN_ROWS = 50_000


@shared_task(name="hearth.ping")  # type: ignore[untyped-decorator]
def ping(delay_seconds: float = 0.0) -> dict[str, Any]:
    """Prove the queue works end to end: answers ``pong`` and which worker ran it."""
    if delay_seconds > 0:
        time.sleep(min(delay_seconds, 60.0))
    return {"pong": True, "worker": socket.gethostname()}


@shared_task(name=PRUNE_TASK_RUNS_TASK, bind=True)  # type: ignore[untyped-decorator]
def prune_task_runs(self: Any) -> dict[str, int]:  # noqa: ANN401 (Celery is untyped: the bound task)
    """Forget task runs older than a week, and all but the newest ``KEEP_RUN_ROWS``;
    returns how many went. A second run finds nothing to delete."""
    with driver.connect(self.app.conf.hearth_database_url) as connection:
        deleted = repository.prune_runs(connection, days=KEEP_RUN_DAYS, rows=KEEP_RUN_ROWS)
    return {"deleted": deleted}
