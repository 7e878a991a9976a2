"""The web app's own health checks: every component checked every ``HEALTH_MONITOR_SECONDS``
whether anyone probes or not, so a change is seen (recorded, counted, notified) when it
happens, not when the next visitor comes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from hearth.health.history import HealthHistory
from hearth.health.service import HealthService
from hearth.log import get_logger

log = get_logger(__name__)

# At shutdown, how long the changes still waiting are given to reach the database.
FINAL_FLUSH_SECONDS = 2.0


async def check_every(health: HealthService, interval: float) -> None:
    """Run every check every ``interval`` seconds, the first round one interval from now,
    until cancelled; a failure is logged and the next round goes on."""
    # Not at once: start-up has its probes (/readyz), and a request arriving during a round
    # would share that round's results instead of checking for itself.
    loop = asyncio.get_running_loop()
    due = loop.time() + interval
    while True:
        await asyncio.sleep(max(0.0, due - loop.time()))
        try:
            await health.run()
        except Exception:  # checks report, never raise; this loop must outlive a bug
            log.warning("health_monitor_failed", exc_info=True)
        # A fixed rhythm: a slow round shortens the pause after it.
        due = max(due + interval, loop.time())


@asynccontextmanager
async def monitoring(
    health: HealthService, history: HealthHistory, *, interval: float
) -> AsyncIterator[None]:
    """Record ``health``'s changes in ``history`` and check every ``interval`` seconds while
    the block runs; on exit stop both, giving the waiting changes a last chance."""
    health.on_change(history.record)
    writer = asyncio.create_task(history.run(), name="health-history-writer")
    checker = asyncio.create_task(check_every(health, interval), name="health-monitor")
    try:
        yield
    finally:
        for task in (checker, writer):
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        if history.pending:
            try:
                left = await asyncio.wait_for(history.flush(), FINAL_FLUSH_SECONDS)
            except TimeoutError:
                left = history.pending
            if left:
                log.warning("health_changes_not_recorded", pending=left, reason="shutting down")
