"""Sending tasks from the web app, and reading their state."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hearth.errors import HearthError
from hearth.kit.text import first_line, innermost
from hearth.log import get_logger

if TYPE_CHECKING:
    from celery import Celery

    from hearth.db.unit import UnitOfWork

log = get_logger(__name__)

SEND_TIMEOUT_SECONDS = 5.0


class QueueUnavailable(HearthError):
    """The broker cannot take the task right now; nothing was queued. ``reason`` is the
    broker's one-line cause, for callers that phrase their own message."""

    status_code = 503

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class PendingTask:
    """A task to send by name, with its arguments and the id it will have."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


class TaskQueue:
    """Celery seen from the web app: send by name (no task code is imported), read state.
    Celery is built (and imported) only when the first task is sent: it costs the web app
    nothing until then. ``build`` is None when there is no database, hence no queue."""

    def __init__(self, build: Callable[[], Celery] | None) -> None:
        self._build = build
        self._app: Celery | None = None

    @property
    def app(self) -> Celery:
        """The Celery app, built on first use; ``QueueUnavailable`` without a database."""
        if self._app is None:
            if self._build is None:
                raise QueueUnavailable(
                    "The task queue needs the database, which is not available.",
                    reason="no database",
                )
            self._app = self._build()
        return self._app

    def close(self) -> None:
        """Close the broker and result connections, if a task was ever sent."""
        if self._app is not None:
            self._app.close()
            self._app = None

    def send_after_commit(self, unit: UnitOfWork, task: PendingTask) -> None:
        """Send ``task`` once ``unit`` is committed. The data it works on is stored by then,
        so a broker that is down does not undo the request: the failure is logged, and the
        worker's sweep of stored work sends the task later."""

        async def send() -> None:
            try:
                await self.send(task)
            except QueueUnavailable as exc:
                log.warning("task_send_deferred", task=task.name, reason=exc.reason)

        unit.after_commit(send)

    async def send(self, task: PendingTask) -> None:
        """Publish ``task``; ``QueueUnavailable`` (503) saying why when the broker is down."""
        app = self.app

        def publish() -> None:
            app.send_task(task.name, args=task.args, kwargs=task.kwargs, task_id=task.id)

        try:
            await asyncio.wait_for(asyncio.to_thread(publish), SEND_TIMEOUT_SECONDS)
        except Exception as exc:  # noqa: BLE001 (any failure here means the broker is away)
            # Celery, kombu and redis-py raise many kinds of errors for one cause: the broker
            # (or the result backend) is not there. None of them may become a 500.
            reason = _reason(exc)
            log.warning("task_send_failed", task=task.name, task_id=task.id, reason=reason)
            raise QueueUnavailable(
                f"The task queue is unavailable ({reason}); nothing was queued, try again later.",
                reason=reason,
            ) from None
        log.info("task_sent", task=task.name, task_id=task.id)

    async def state(self, task_id: str) -> dict[str, Any]:
        """``{"id", "state", "result"}``; an unknown id reads as PENDING (Celery cannot tell)."""
        from celery.result import AsyncResult

        app = self.app

        def read() -> dict[str, Any]:
            result = AsyncResult(task_id, app=app)
            state = result.state
            value = result.result if state == "SUCCESS" else None
            # RETRY: the reason it runs again (a worker that died names itself here).
            error = str(result.result) if state in ("FAILURE", "RETRY") else None
            return {"id": task_id, "state": state, "result": value, "error": error}

        try:
            return await asyncio.wait_for(asyncio.to_thread(read), SEND_TIMEOUT_SECONDS)
        except Exception as exc:  # noqa: BLE001 (as in send(): whatever the library, the backend is away)
            reason = _reason(exc)
            raise QueueUnavailable(
                f"Task results are unavailable ({reason}).", reason=reason
            ) from None


def _reason(exc: BaseException) -> str:
    """The innermost error's message, one line, no password."""
    return first_line(innermost(exc))
