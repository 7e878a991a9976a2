"""The worker's side of the health history: forgetting changes older than
``HEALTH_HISTORY_DAYS``, hourly (Celery beat). Idempotent: a second run finds nothing to do."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from hearth.db import driver
from hearth.health import history

PRUNE_TASK = "hearth.prune_health_history"


@shared_task(name=PRUNE_TASK, bind=True)  # type: ignore[untyped-decorator]
def prune_health_history(self: Any) -> dict[str, int]:  # noqa: ANN401 (Celery is untyped: the bound task)
    """Delete the changes older than ``HEALTH_HISTORY_DAYS``, keeping each component's
    latest; returns how many went."""
    keep_days: int = self.app.conf.hearth_settings.health_history_days
    return {"deleted": prune(self.app.conf.hearth_database_url, keep_days=keep_days)}


def prune(database_url: str, *, keep_days: int) -> int:
    """Prune the history in the database at ``database_url``, in a transaction of its own,
    on a connection of its own: a pool process that prunes once an hour builds no engine
    and no event loop for it (each would copy pages it shares with the worker's main
    process, ``python -m bench.tasks``)."""
    with driver.connect(database_url) as connection:
        return history.prune(connection, keep_days=keep_days)
