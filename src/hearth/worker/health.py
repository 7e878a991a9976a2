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

# Workers that died in the last hour are named in the check's detail (at most three).
GONE_SHOWN_SECONDS = 3600.0
GONE_SHOWN_MAX = 3


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
                gone = await repository.gone(connection, self.window, GONE_SHOWN_SECONDS)
        except SQLAlchemyError as exc:
            reason = first_line(exc)
            return CheckResult.timed("unreachable", f"cannot read heartbeats: {reason}", started)
        # A worker that stopped without a clean stop (killed, out of memory, host lost): the
        # live workers hand its tasks back to the queue (orphans.py); the operator sees it here.
        lost = "".join(
            f"; {name} stopped reporting {seconds:.0f} s ago, its tasks go to live workers"
            for name, seconds in gone[:GONE_SHOWN_MAX]
        )
        if not workers:
            detail = f"no worker reported in the last {self.window:g} s; start one: hearth worker"
            return CheckResult.timed("unreachable", detail + lost, started)
        names = ", ".join(f"{name} ({seconds:.0f} s ago)" for name, seconds in workers)
        noun = "worker" if len(workers) == 1 else "workers"
        return CheckResult.timed("ok", f"{len(workers)} {noun}: {names}{lost}", started)
