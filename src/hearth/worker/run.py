"""``hearth worker``: a Celery worker with Hearth's settings, logs and heartbeat."""

from __future__ import annotations

from celery.signals import setup_logging

from hearth.config.settings import Settings
from hearth.db.embedded import EmbeddedPostgres
from hearth.kit.urls import mask_url
from hearth.log import get_logger
from hearth.worker.app import create_celery, queue_urls
from hearth.worker.heartbeat import HeartbeatStep
from hearth.worker.identity import node_name

log = get_logger(__name__)


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
            quiet=True,  # no banner: it would bypass the redacting log pipeline
        )
        worker.start()
        return int(worker.exitcode or 0)
    finally:
        if embedded is not None:
            embedded.stop()
