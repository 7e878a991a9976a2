"""The ``worker`` health check: is a worker alive? Read from the heartbeats the workers write
(see ``heartbeat.py``), and, in ``hearth serve --with-worker``, from the supervisor of the
worker it started (``child.py``). Imports no Celery, so the web app stays light."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from hearth.kit.checks import CheckResult
from hearth.kit.text import first_line
from hearth.worker import repository
from hearth.worker.child import supervised_start_age
from hearth.worker.identity import MISSED_BEATS

# Workers that died in the last hour are named in the check's detail (at most three).
GONE_SHOWN_SECONDS = 3600.0
GONE_SHOWN_MAX = 3
# How long a worker `hearth serve` started may take to report before it is unreachable: a
# cold start on a Raspberry Pi (imports, waiting for the server's migrations) takes ~20 s.
START_WINDOW_SECONDS = 60.0


class WorkerCheck:
    """The ``worker`` check: ``ok`` when a worker reported recently, ``starting`` while the
    worker this process started has not reported yet (within ``start_window``)."""

    def __init__(
        self,
        engine: AsyncEngine | None,
        interval: float,
        *,
        start_window: float = START_WINDOW_SECONDS,
        start_age: Callable[[], float | None] = supervised_start_age,
    ) -> None:
        self.engine = engine
        self.window = interval * MISSED_BEATS
        self.start_window = start_window
        self.start_age = start_age

    async def check(self) -> CheckResult:
        """``ok`` naming the live workers, ``starting``, or ``unreachable`` saying how to
        start one."""
        started = time.perf_counter()
        age = self.start_age()
        starting = age if age is not None and age < self.start_window else None
        if self.engine is None:
            return CheckResult(status="unreachable", detail="no database to read heartbeats from")
        try:
            async with self.engine.connect() as connection:
                workers = await repository.alive(connection, self.window)
                gone = await repository.gone(connection, self.window, GONE_SHOWN_SECONDS)
        except SQLAlchemyError as exc:
            # A worker still starting cannot have reported either: the database not migrated
            # yet, say, which the worker waits for.
            reason = f"cannot read heartbeats: {first_line(exc)}"
            if starting is not None:
                return CheckResult.timed("starting", f"{_started(starting)}; {reason}", started)
            return CheckResult.timed("unreachable", reason + _never_reported(age), started)
        # A worker that stopped without a clean stop (killed, out of memory, host lost): the
        # live workers hand its tasks back to the queue (orphans.py); the operator sees it here.
        lost = "".join(
            f"; {name} stopped reporting {seconds:.0f} s ago, its tasks go to live workers"
            for name, seconds in gone[:GONE_SHOWN_MAX]
        )
        if not workers:
            if starting is not None:
                return CheckResult.timed("starting", _started(starting) + lost, started)
            detail = f"no worker reported in the last {self.window:g} s"
            detail += _never_reported(age) or "; start one: hearth worker"
            return CheckResult.timed("unreachable", detail + lost, started)
        names = ", ".join(f"{name} ({seconds:.0f} s ago)" for name, seconds in workers)
        noun = "worker" if len(workers) == 1 else "workers"
        return CheckResult.timed("ok", f"{len(workers)} {noun}: {names}{lost}", started)


def _started(age: float) -> str:
    return f"the worker hearth serve started {age:.0f} s ago has not reported yet"


def _never_reported(age: float | None) -> str:
    """What to add when the worker this process started is past its start window."""
    if age is None:
        return ""
    return f"; the worker hearth serve started {age:.0f} s ago never reported: see its log"
