"""``hearth worker``: a Celery worker with Hearth's settings, logs, heartbeat and beat."""

from __future__ import annotations

import asyncio
import signal
import time
from types import FrameType

from celery.signals import setup_logging
from sqlalchemy.exc import SQLAlchemyError

from hearth.config.settings import Settings
from hearth.db import migrate
from hearth.db.embedded import EmbeddedPostgres
from hearth.db.engine import create_engine
from hearth.kit.urls import mask_url
from hearth.llm.adapter import EMBED_TIMEOUT_SECONDS
from hearth.log import get_logger
from hearth.worker.app import create_celery, queue_urls
from hearth.worker.heartbeat import HeartbeatStep
from hearth.worker.identity import node_name

log = get_logger(__name__)

# How long a worker takes at most to stop on SIGTERM, which Compose's stop_grace_period, the
# chart's and kustomize's terminationGracePeriodSeconds and systemd's TimeoutStopSec grant
# (tests/deploy holds them to it): Hearth's tasks make one call to the model per run, so the
# call in flight, then a margin to store its batch (across a database restart, 20 s at
# most), acknowledge it and close. Queued tasks stay in the broker for the next worker.
STOP_MARGIN_SECONDS = 30
STOP_BOUND_SECONDS = int(EMBED_TIMEOUT_SECONDS) + STOP_MARGIN_SECONDS
# How often a worker started before the migrations looks again.
SCHEMA_POLL_SECONDS = 2.0


@setup_logging.connect  # type: ignore[untyped-decorator]
def _keep_hearth_logging(**_kwargs: object) -> None:
    """Connected, so Celery leaves logging alone: its lines go through Hearth's redacting
    pipeline, configured before the worker starts."""


def run_worker(settings: Settings, *, concurrency: int | None = None) -> int:
    """Run until stopped (SIGTERM or Ctrl-C: finish running tasks first); the exit status."""
    embedded = None
    database_url = settings.database_url
    if database_url is None:
        embedded = EmbeddedPostgres(settings.hearth_data_dir)
        database_url = embedded.start()  # shared with `hearth serve` on the same data dir
    try:
        wait_for_schema(database_url)
        app = create_celery(settings, database_url)
        app.conf.hearth_database_url = database_url
        app.conf.hearth_settings = settings  # what tasks read their configuration from
        app.conf.hearth_heartbeat_seconds = settings.worker_heartbeat_seconds
        if settings.redis_url is None:
            # The broker is PostgreSQL (kombu's SQLAlchemy transport), whose "connection" always
            # succeeds: Celery would retry a dead database at once, logging five restarts a
            # second. Exit 1 instead; whoever runs the worker (`hearth serve --with-worker`,
            # systemd, Docker) starts it again with a backoff, once the database is back.
            app.conf.broker_connection_retry = False
            app.conf.broker_connection_retry_on_startup = False
        app.steps["worker"].add(HeartbeatStep)
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
            beat=True,  # the periodic sweeps: every worker runs them (see app.periodic_tasks)
            quiet=True,  # no banner: it would bypass the redacting log pipeline
        )
        worker.start()
        return int(worker.exitcode or 0)
    finally:
        if embedded is not None:
            embedded.stop()


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
