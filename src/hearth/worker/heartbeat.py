"""Workers report that they are alive; the ``worker`` health check reads the reports.

A Celery bootstep in the worker's main process writes a row to ``worker_heartbeats`` every
``WORKER_HEARTBEAT_SECONDS``. The main process does not run tasks (the pool's children do),
so a worker busy on a long task still reports. This works with either broker, since both
modes have PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from celery import bootsteps
from sqlalchemy import create_engine
from sqlalchemy.exc import SQLAlchemyError

from hearth.kit.text import first_line
from hearth.log import get_logger
from hearth.worker import repository

log = get_logger(__name__)


class HeartbeatStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Writes this worker's heartbeat on the worker's timer; removes it on a clean stop."""

    requires: ClassVar[set[str]] = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **kwargs: object) -> None:  # noqa: ANN401 (Celery is untyped: its WorkController)
        super().__init__(worker, **kwargs)
        app = worker.app
        self.interval: float = app.conf.hearth_heartbeat_seconds
        self.engine = create_engine(app.conf.hearth_database_url, pool_size=1, pool_pre_ping=True)
        self.started_at = datetime.now(UTC)
        self.timer_ref: Any = None

    def start(self, worker: Any) -> None:  # noqa: ANN401 (Celery is untyped: its WorkController)
        """Write a heartbeat now, then one every interval on the worker's timer."""
        self._write(worker)
        self.timer_ref = worker.timer.call_repeatedly(self.interval, self._write, (worker,))

    def stop(self, worker: Any) -> None:  # noqa: ANN401 (Celery is untyped: its WorkController)
        """Stop the heartbeats and remove this worker's row, if the database is still there."""
        if self.timer_ref is not None:
            self.timer_ref.cancel()
        try:
            with self.engine.begin() as connection:
                repository.forget(connection, worker.hostname)
        except SQLAlchemyError:
            pass  # the database is gone too; the row goes stale and stops counting
        self.engine.dispose()

    def _write(self, worker: Any) -> None:  # noqa: ANN401 (Celery is untyped: its WorkController)
        try:
            with self.engine.begin() as connection:
                repository.beat(connection, worker.hostname, worker.concurrency, self.started_at)
        except SQLAlchemyError as exc:
            log.warning("worker_heartbeat_failed", reason=first_line(exc))
