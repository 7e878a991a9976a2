"""The beat's scheduler: Celery's in-memory one, where a periodic task may have a condition.

A due task with a condition (``only_when``) is sent only when the condition holds, asked in
the worker's main process, where the beat runs. A sweep that would find nothing then wakes
no pool process: the process would send a message through the broker, run the task, store
its result and keep, for as long as it lives, what the task built (for the embedding run:
an event loop, a database engine and an HTTP client, about 5 MB of a worker at rest).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Celery
from celery.beat import Scheduler as CeleryScheduler

from hearth.log import get_logger

log = get_logger(__name__)

Condition = Callable[[Celery], bool]
_conditions: dict[str, Condition] = {}


def only_when(task_name: str) -> Callable[[Condition], Condition]:
    """Make the decorated function the condition of the periodic task ``task_name``: the
    beat sends it only when the function, given the app, returns True. Conditions are
    asked often (every period of the task): one query at most, and True when unsure."""

    def register(condition: Condition) -> Condition:
        _conditions[task_name] = condition
        return condition

    return register


def condition_holds(app: Celery, task_name: str) -> bool:
    """Whether ``task_name`` may be sent now: True when it has no condition."""
    condition = _conditions.get(task_name)
    return condition is None or condition(app)


class Scheduler(CeleryScheduler):  # type: ignore[misc]  # Celery is untyped
    """Celery's scheduler, kept in memory (no schedule file), which skips a due task whose
    condition does not hold; the task is due again one period later."""

    def apply_entry(self, entry: Any, producer: Any = None) -> None:  # noqa: ANN401 (Celery is untyped: its entry and producer)
        """Send the due ``entry`` unless its task's condition says there is nothing to do."""
        if not condition_holds(self.app, entry.task):
            log.debug("periodic_task_not_needed", task=entry.task, entry=entry.name)
            return
        super().apply_entry(entry, producer=producer)
