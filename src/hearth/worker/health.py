"""The ``worker`` health check: is a worker alive? Read from the heartbeats the workers write
(see ``heartbeat.py``). Imports no Celery, so the web app stays light."""

from __future__ import annotations

import time

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from hearth.kit.checks import CheckResult
from hearth.kit.text import first_line
from hearth.worker import repository
from hearth.worker.identity import MISSED_BEATS


class WorkerCheck:
    """The ``worker`` check: ``ok`` when a worker reported recently."""

    def __init__(self, engine: AsyncEngine | None, interval: float) -> None:
        self.engine = engine
        self.window = interval * MISSED_BEATS

    async def check(self) -> CheckResult:
        """``ok`` naming the live workers, or ``unreachable`` saying how to start one."""
        started = time.perf_counter()
        if self.engine is None:
            return CheckResult(status="unreachable", detail="no database to read heartbeats from")
        try:
            async with self.engine.connect() as connection:
                workers = await repository.alive(connection, self.window)
        except SQLAlchemyError as exc:
            reason = first_line(exc)
            return CheckResult.timed("unreachable", f"cannot read heartbeats: {reason}", started)
        if not workers:
            detail = f"no worker reported in the last {self.window:g} s; start one: hearth worker"
            return CheckResult.timed("unreachable", detail, started)
        names = ", ".join(f"{name} ({seconds:.0f} s ago)" for name, seconds in workers)
        noun = "worker" if len(workers) == 1 else "workers"
        return CheckResult.timed("ok", f"{len(workers)} {noun}: {names}", started)
