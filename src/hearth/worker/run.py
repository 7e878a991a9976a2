"""``hearth worker``: a Celery worker with Hearth's settings, logs, heartbeat and beat."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import time
from contextlib import suppress
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

from celery.app.backends import by_url
from celery.signals import setup_logging, worker_shutting_down
from sqlalchemy.exc import SQLAlchemyError

from hearth import traces
from hearth.config.settings import Settings
from hearth.db import migrate
from hearth.db.embedded import EmbeddedPostgres
from hearth.db.engine import create_engine
from hearth.kit import collector
from hearth.kit.urls import mask_url
from hearth.llm.adapter import EMBED_TIMEOUT_SECONDS
from hearth.log import get_logger
from hearth.worker import metrics as worker_metrics
from hearth.worker import runs as worker_runs
from hearth.worker import stopping
from hearth.worker.app import create_celery, queue_urls
from hearth.worker.beat import ThreadedBeat
from hearth.worker.heartbeat import HeartbeatStep
from hearth.worker.identity import node_name

log = get_logger(__name__)

# How long a worker takes at most to stop on SIGTERM, which Compose's stop_grace_period, the
# chart's and kustomize's terminationGracePeriodSeconds and systemd's TimeoutStopSec grant
# (tests/deploy holds them to it). A task told to stop starts no new call to the model
# (hearth.worker.stopping): the call in flight (the batch before it is stored meanwhile),
# then a margin to store its batch (across a database restart, 20 s at most), acknowledge
# it and close. Queued tasks stay in the broker for the next worker.
STOP_MARGIN_SECONDS = 30
STOP_BOUND_SECONDS = int(EMBED_TIMEOUT_SECONDS) + STOP_MARGIN_SECONDS
# How often a worker started before the migrations looks again.
SCHEMA_POLL_SECONDS = 2.0


@setup_logging.connect  # type: ignore[untyped-decorator]
def _keep_hearth_logging(**_kwargs: object) -> None:
    """Connected, so Celery leaves logging alone: its lines go through Hearth's redacting
    pipeline, configured before the worker starts."""


def _import_what_the_pool_uses(app: Any, *, metrics: bool) -> None:  # noqa: ANN401 (Celery is untyped: its app)
    """Import, before the pool's children are forked, what they would otherwise each import
    on their own, so that they share its pages with the main process: billiard's C parser
    (each child parses one C declaration with cffi to ask for SIGTERM when its parent dies),
    httpx and what its client imports on first use (the embedding run every worker starts
    with), and the children's metrics. The ORM's mappers are configured here too, once: a
    child's first query would otherwise build that state in each child.

    Also what the main process's threads (the beat, the heartbeat) would import lazily when
    they first send a task: the result backend and the broker's transport. A child forked
    while another thread held an import's lock inherits that lock held for ever, and hangs
    on its first task (seen with the beat importing Celery's database backend)."""
    import encodings.idna  # noqa: F401 (host names)

    import anyio._backends._asyncio  # noqa: F401 (httpcore's network backend under asyncio)
    import certifi
    import h11  # noqa: F401
    import httpcore  # noqa: F401
    import httpx  # noqa: F401

    # The client's certificate bundle: finding its path imports importlib's resource readers
    # on some Pythons (Debian's 3.11), which each child would otherwise import for itself.
    certifi.where()

    by_url(app.conf.result_backend, app.loader)  # imports the backend's module; connects nothing
    with app.connection_for_write() as connection:
        connection.transport  # noqa: B018 (imports the transport's module; connects nothing)

    with suppress(ImportError):  # without cffi, billiard uses ctypes
        import cffi  # type: ignore[import-untyped]

        cffi.FFI().cdef("int prctl (int __option, ...);")  # loads pycparser and its tables
    if metrics:
        import hearth.metrics.registry
    from sqlalchemy.orm import configure_mappers

    import hearth.models  # noqa: F401 (every model, so that all are configured)

    configure_mappers()


def _say_shutdown_in_json() -> None:
    """Celery prints "worker: Warm shutdown (MainProcess)" as plain text on a SIGTERM, the
    one line of a worker's output that would not be JSON: it is logged as an event instead."""
    import celery.apps.worker

    celery.apps.worker.install_worker_term_handler = partial(
        celery.apps.worker._shutdown_handler,  # noqa: SLF001 (Celery's own handler, quiet)
        sig="SIGTERM",
        how="Warm",
        verbose=False,
    )
    worker_shutting_down.connect(_log_shutdown, weak=False, dispatch_uid=__name__)


def _log_shutdown(sig: str, how: str, exitcode: int, **_: object) -> None:
    log.info("worker_shutting_down", signal=sig, how=how.lower(), exit_status=exitcode)


def _freeze_before_fork() -> None:
    """Before a pool child is forked: what the main process has built so far (the imported
    modules, the app) is moved out of the garbage collector's sight. A full collection in
    either process would otherwise write to the header of every object it visits, and so
    copy each page the two share."""
    gc.freeze()


def run_worker(settings: Settings, *, concurrency: int | None = None) -> int:
    """Run until stopped (SIGTERM or Ctrl-C: finish running tasks first); the exit status."""
    embedded = None
    database_url = settings.database_url
    if database_url is None:
        embedded = EmbeddedPostgres(settings.hearth_data_dir)
        database_url = embedded.start()  # shared with `hearth serve` on the same data dir
    # Before any pool child exists: each finds its directory in the environment.
    metrics_directory = _metrics_directory() if settings.metrics_enabled else None
    try:
        wait_for_schema(database_url)
        app = create_celery(settings, database_url)
        app.conf.hearth_database_url = database_url
        app.conf.hearth_settings = settings  # what tasks read their configuration from
        app.conf.hearth_heartbeat_seconds = settings.worker_heartbeat_seconds
        if settings.redis_url is None:
            # The broker is the database (the embedded queue, pg_transport.py): when it goes
            # away the worker exits 1 rather than retry on its own; whoever runs it (`hearth
            # serve --with-worker`, systemd, Docker) starts it again with a backoff, once the
            # database is back, as it would after the database's own restart.
            app.conf.broker_connection_retry = False
            app.conf.broker_connection_retry_on_startup = False
            # Recorded on each message it takes: the sweep of orphaned tasks hands back only
            # what a dead worker holds (orphans.py).
            app.conf.broker_transport_options["consumer"] = node_name()
        worker_runs.install(database_url, node_name())  # the Tasks page's recent runs
        if metrics_directory is not None:
            worker_metrics.install(node_name())
            app.conf.hearth_metrics = worker_metrics.Folder(metrics_directory)
        app.steps["worker"].add(HeartbeatStep)
        app.steps["worker"].add(ThreadedBeat)  # every worker runs the periodic sweeps
        if traces.configured(settings):
            from hearth.traces import worker as worker_traces

            worker_traces.install(settings)  # in each pool child, where the tasks run
        app.loader.import_default_modules()  # the task modules, to list them below
        broker, _ = queue_urls(settings, database_url)
        workers = concurrency or settings.worker_concurrency
        log.info(
            "worker_starting",
            node=node_name(),
            concurrency=workers,
            broker=mask_url(broker),
            tasks=sorted(name for name in app.tasks if not name.startswith("celery.")),
        )
        worker = app.Worker(
            hostname=node_name(),
            concurrency=workers,
            pool_cls="prefork",  # the main process stays free for heartbeats and control
            # A task taken is handed to an idle child at once, never queued behind a busy
            # one: every task a worker holds is a STARTED one, which the sweep of orphaned
            # tasks can attribute to it (orphans.py).
            optimization="fair",
            loglevel=settings.log_level,
            without_gossip=True,
            without_mingle=True,
            beat=False,  # ThreadedBeat runs it instead
            quiet=True,  # no banner: it would bypass the redacting log pipeline
        )
        _import_what_the_pool_uses(app, metrics=metrics_directory is not None)
        os.register_at_fork(before=_freeze_before_fork)
        _say_shutdown_in_json()
        stopping.install()  # before the pool's children are forked: they share its flag
        collector.resume()  # the worker is built: set it aside (and again at each fork)
        worker.start()
        return int(worker.exitcode or 0)
    finally:
        if metrics_directory is not None:
            worker_metrics.remove_directory(metrics_directory)
        if embedded is not None:
            embedded.stop()


def _metrics_directory() -> Path | None:
    """The pool's metrics directory; None (the worker runs, uncounted) where the temporary
    directory cannot be written: every deployment file gives the worker a writable /tmp."""
    try:
        return worker_metrics.prepare_directory()
    except OSError as exc:
        log.warning("worker_metrics_unavailable", reason=str(exc))
        return None


def wait_for_schema(database_url: str, poll_seconds: float = SCHEMA_POLL_SECONDS) -> None:
    """Return once the database is migrated, looking every ``poll_seconds``: a worker
    started before `hearth migrate` (or beside a server still migrating) waits, and starts
    its tasks, beat and heartbeat then, rather than fail them. A database that cannot be
    reached is not waited for here: the worker starts as before, and its broker, heartbeat
    and retries deal with it (on the embedded broker it exits 1 for its supervisor).
    SIGTERM ends the wait."""
    previous = signal.signal(signal.SIGTERM, _stop_waiting)
    try:
        said = None
        while (reason := asyncio.run(_schema_wait_reason(database_url))) is not None:
            if reason != said:
                log.warning("worker_waiting_for_migrations", reason=reason)
                said = reason
                # A wait of unknown length, each look leaving cycles behind (an engine, a
                # loop): collected as usual meanwhile, not only once the worker is built.
                collector.resume(set_aside=False)
            time.sleep(poll_seconds)
        if said is not None:
            log.info("worker_schema_ready")
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop_waiting(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


async def _schema_wait_reason(database_url: str) -> str | None:
    engine = create_engine(database_url)
    try:
        return await migrate.schema_wait_reason(engine)
    except (SQLAlchemyError, OSError):
        return None  # unknown: start, and let what needs the database say so
    finally:
        await engine.dispose()
