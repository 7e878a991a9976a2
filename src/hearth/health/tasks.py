"""The worker's side of the health history: forgetting changes older than
``HEALTH_HISTORY_DAYS``, hourly (Celery beat). Idempotent: a second run finds nothing to do."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from sqlalchemy.ext.asyncio import AsyncSession

from hearth.db import engine as db_engine
from hearth.health import history

PRUNE_TASK = "hearth.prune_health_history"


@shared_task(name=PRUNE_TASK, bind=True)  # type: ignore[untyped-decorator]
def prune_health_history(self: Any) -> dict[str, int]:  # noqa: ANN401 (Celery is untyped: the bound task)
    """Delete the changes older than ``HEALTH_HISTORY_DAYS``, keeping each component's
    latest; returns how many went."""
    import asyncio

    keep_days: int = self.app.conf.hearth_settings.health_history_days
    deleted = asyncio.run(prune(self.app.conf.hearth_database_url, keep_days=keep_days))
    return {"deleted": deleted}


async def prune(database_url: str, *, keep_days: int) -> int:
    """Prune the history in the database at ``database_url``, in a transaction of its own."""
    engine = db_engine.create_engine(database_url)
    try:
        async with AsyncSession(engine) as session, session.begin():
            return await history.prune(session, keep_days=keep_days)
    finally:
        await engine.dispose()
