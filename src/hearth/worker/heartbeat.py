"""Workers report that they are alive; the ``worker`` health check reads the reports, and the
workers themselves hand back the tasks of those that stopped reporting (``orphans.py``).

A Celery bootstep in the worker's main process writes a row to ``worker_heartbeats`` every
``WORKER_HEARTBEAT_SECONDS``. The main process does not run tasks (the pool's children do),
so a worker busy on a long task still reports. This works with either broker, since both
modes have PostgreSQL.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from typing import Any, ClassVar

from celery import bootsteps
from celery.signals import worker_shutdown
from sqlalchemy import create_engine
from sqlalchemy.exc import SQLAlchemyError

from hearth.db.driver import CONNECT_TIMEOUT_SECONDS
from hearth.kit.text import first_line
from hearth.log import get_logger
from hearth.worker import repository
from hearth.worker.identity import MISSED_BEATS
from hearth.worker.metrics import Folder
from hearth.worker.orphans import OrphanSweeper

log = get_logger(__name__)


class HeartbeatStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Writes this worker's heartbeat on the worker's timer, sweeping orphaned tasks after
    each; keeps reporting while a warm shutdown finishes running tasks, then removes it."""

    requires: ClassVar[set[str]] = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **kwargs: object) -> None:  # noqa: ANN401 (Celery is untyped: its WorkController)
        super().__init__(worker, **kwargs)
        app = worker.app
        self.interval: float = app.conf.hearth_heartbeat_seconds
        self.window = self.interval * MISSED_BEATS
        self.engine = create_engine(
            app.conf.hearth_database_url,
            pool_size=1,
            pool_pre_ping=True,
            # A database that does not answer (a host gone, packets dropped) holds the
            # worker's timer, which also beats for the broker, a few seconds at most.
            connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
        )
        self.sweeper = OrphanSweeper(app, self.engine, self.window)
        self.started_at = datetime.now(UTC)
        # The children's metrics, folded into each report (None: METRICS_ENABLED=false).
        self.metrics: Folder | None = getattr(app.conf, "hearth_metrics", None)
        self.timer_ref: Any = None
        # Since when every report of ours got through (None after a failure): a worker judges
        # others by their silence only once it has itself reported for a whole window, so a
        # database that was away does not make every live worker look dead.
        self.reporting_since: float | None = None
        self.stopped = threading.Event()

    def start(self, worker: Any) -> None:  # noqa: ANN401 (Celery is untyped: its WorkController)
        """Write a heartbeat now, then one every interval on the worker's timer."""
        self._write(worker)
        self.timer_ref = worker.timer.call_repeatedly(self.interval, self._beat, (worker,))

    def stop(self, worker: Any) -> None:  # noqa: ANN401 (Celery is untyped: its WorkController)
        """Stop the timer's heartbeats. The worker's timer stops before its pool, which may
        still be finishing tasks (a warm shutdown): a thread reports until the worker is
        down, so those tasks are not taken for orphans, then removes this worker's row."""
        if self.timer_ref is not None:
            self.timer_ref.cancel()
            self.timer_ref = None

        def report_until_down() -> None:
            while not self.stopped.wait(self.interval):
                self._write(worker)

        def forget(sender: Any = None, **_kwargs: object) -> None:  # noqa: ANN401 (Celery's signal sender)
            if sender is not worker:
                return
            self.stopped.set()
            reporting.join(timeout=5)
            try:
                with self.engine.begin() as connection:
                    repository.forget(connection, worker.hostname)
            except SQLAlchemyError:
                pass  # the database is gone too; the row goes stale and stops counting
            self.engine.dispose()

        reporting = threading.Thread(target=report_until_down, name="heartbeat", daemon=True)
        reporting.start()
        worker_shutdown.connect(forget, weak=False)

    def _beat(self, worker: Any) -> None:  # noqa: ANN401 (Celery is untyped: its WorkController)
        if self._write(worker):
            self._sweep()

    def _write(self, worker: Any) -> bool:  # noqa: ANN401 (Celery is untyped: its WorkController)
        metrics = self._metrics(worker)
        try:
            with self.engine.begin() as connection:
                repository.beat(
                    connection,
                    worker.hostname,
                    worker.concurrency,
                    self.started_at,
                    metrics=metrics,
                    running=running_now(),
                )
        except SQLAlchemyError as exc:
            self.reporting_since = None
            log.warning("worker_heartbeat_failed", reason=first_line(exc))
            return False
        if self.reporting_since is None:
            self.reporting_since = time.monotonic()
        return True

    def _metrics(self, worker: Any) -> str | None:  # noqa: ANN401 (Celery is untyped: its WorkController)
        """The snapshot of the children's metrics, as JSON; None when there is none."""
        if self.metrics is None:
            return None
        try:
            processes = worker.pool.info.get("processes", [])
        except Exception:  # noqa: BLE001 (the pool is starting or stopping: no child is spared then)
            processes = []
        try:
            return json.dumps(self.metrics.snapshot(processes), separators=(",", ":"))
        except (OSError, ValueError) as exc:  # a file being written; the next beat reads it
            log.warning("worker_metrics_unreadable", reason=first_line(exc))
            return None

    def _sweep(self) -> None:
        """Hand back the tasks of workers that stopped reporting (see ``orphans.py``)."""
        if self.reporting_since is None or time.monotonic() - self.reporting_since < self.window:
            return
        try:
            self.sweeper.sweep()
        except Exception as exc:  # noqa: BLE001 (the broker's and the backend's errors are many; the next beat tries again)
            log.warning("orphan_sweep_failed", reason=first_line(exc))


def running_now() -> str:
    """The tasks this worker's pool is running, as JSON for the Tasks page: each one's id,
    name and start (Unix time), as the main process knows them (Celery's active requests)."""
    from celery.worker.state import active_requests

    requests: list[Any] = []
    for _attempt in range(3):
        try:
            requests = list(active_requests)  # a copy: the consumer changes the set meanwhile
            break
        except RuntimeError:  # it changed while being copied (a shutdown's reporting thread)
            continue
    running = [
        {"id": request.id, "name": request.name, "started": request.time_start}
        for request in requests
    ]
    return json.dumps(running, separators=(",", ":"))
