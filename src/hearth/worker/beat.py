"""The worker's beat: Celery's periodic-task service, as a thread of the worker's main process.

Celery's ``beat=True`` forks a process of its own for it: one whole interpreter more (tens of
MB) to send a few tasks an hour. A thread costs nothing, but shares the process with the
pool's ``fork()``, and Celery's own threaded beat (``celery.beat.EmbeddedService(thread=True)``)
is not written for that:

- it imports the result backend's module lazily, from the thread: a pool child forked while
  the thread holds that module's import lock inherits the lock held, and waits for it forever
  (the child never runs a task);
- a service that fails before its loop (building the scheduler reaches the result backend,
  the database in embedded mode) never marks itself stopped, and the worker's shutdown waits
  for it forever.

So the step starts after the pool (its first children are forked by then), what the thread
would import is imported first by the main thread (``run._import_what_the_pool_uses``), a
failed start is retried, and stopping waits a bounded time.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from celery import bootsteps
from celery.beat import Service

from hearth.kit.text import first_line
from hearth.log import get_logger

log = get_logger(__name__)

# The schedule is looked at once a second, so a stop is seen within a second.
MAX_INTERVAL_SECONDS = 1.0
# A beat that could not start (the database away) tries again after this long.
RETRY_SECONDS = 5.0
# How long the worker's shutdown waits for the thread: one tick, and a task being sent.
STOP_SECONDS = 10.0


class BeatThread(threading.Thread):
    """Celery's beat ``Service`` in a daemon thread: retried when it fails to start, and
    stopped within ``STOP_SECONDS``."""

    def __init__(self, app: Any) -> None:  # noqa: ANN401 (Celery is untyped: its app)
        super().__init__(name="Beat", daemon=True)
        self.app = app
        # Hearth's schedule is in memory (``beat_scheduler``): no file is written.
        self.service = Service(
            app, max_interval=MAX_INTERVAL_SECONDS, scheduler_cls=app.conf.beat_scheduler
        )
        self.stopping = threading.Event()

    def run(self) -> None:
        """Run the service until stopped; a start that fails is logged and tried again."""
        self.app.set_current()
        while not self.stopping.is_set():
            try:
                self.service.start()
            except Exception as exc:  # noqa: BLE001 (whatever stopped it, the sweeps must go on)
                log.warning("beat_failed", reason=first_line(exc), retry_in_seconds=RETRY_SECONDS)
                self.service.__dict__.pop("scheduler", None)  # built again on the next start
                self.stopping.wait(RETRY_SECONDS)
            else:
                return

    def stop(self) -> None:
        """Ask the service to stop, and wait for it at most ``STOP_SECONDS``."""
        self.stopping.set()
        self.service.stop(wait=False)
        if self.is_alive():
            self.join(STOP_SECONDS)
        if self.is_alive():
            log.warning("beat_stop_timed_out", waited_seconds=STOP_SECONDS)


class ThreadedBeat(bootsteps.StartStopStep):  # type: ignore[misc]
    """The worker step that runs ``BeatThread``, once the pool has forked its children."""

    label = "Beat"
    requires: ClassVar[set[str]] = {"celery.worker.components:Pool"}

    def create(self, worker: Any) -> BeatThread:  # noqa: ANN401 (Celery is untyped: its WorkController)
        """The thread the step starts and stops."""
        beat = BeatThread(worker.app)
        worker.beat = beat
        return beat
