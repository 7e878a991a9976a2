"""Traces in ``hearth worker``: each pool child starts its own tracer provider.

Tasks run in the prefork pool's children. A provider started in the main process would be
copied into each child at fork with its export thread gone, so each child starts one when
Celery initialises it and flushes it when the child exits. The modules are imported here,
in the main process, before the fork: a child only builds objects, well within the time
Celery gives it to start.
"""

from __future__ import annotations

from celery.signals import worker_process_init, worker_process_shutdown

from hearth.traces import Settings, setup


class _Child:
    """The tracing of this pool child, once it is initialised."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tracing: setup.Tracing | None = None

    def start(self, **_: object) -> None:
        self.tracing = setup.start(self.settings, process="worker")

    def stop(self, **_: object) -> None:
        if self.tracing is not None:
            self.tracing.stop()
            self.tracing = None


def install(settings: Settings) -> None:
    """Have every pool child of this worker trace its tasks (Celery, SQLAlchemy, httpx),
    continuing the trace of whoever sent each task."""
    child = _Child(settings)
    worker_process_init.connect(child.start, weak=False, dispatch_uid=f"{__name__}.start")
    worker_process_shutdown.connect(child.stop, weak=False, dispatch_uid=f"{__name__}.stop")
