"""The Celery application, built from the settings (never at import time)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import Celery
from celery.backends.redis import RedisBackend
from celery.schedules import crontab
from kombu.entity import Queue

from hearth.config.settings import Settings
from hearth.kit.urls import libpq_url
from hearth.worker.queue import BROKER_SOCKET_TIMEOUT_SECONDS

# Results are kept a day, then Redis (or the database) forgets them.
RESULT_EXPIRES = timedelta(hours=24)
# Task modules and task names are written here as text, so the worker imports no concern.
TASK_MODULES = ["hearth.worker.tasks", "hearth.documents.tasks", "hearth.health.tasks"]
EMBED_TASK = "hearth.embed_documents"
PRUNE_HEALTH_HISTORY_TASK = "hearth.prune_health_history"
PRUNE_TASK_RUNS_TASK = "hearth.prune_task_runs"
# Embedding runs have a queue of their own. A worker takes from its queues in turn, so a
# backlog of embedding runs delays another task by one run (batches for about a second, at
# least one call to the model) at most.
DEFAULT_QUEUE = "celery"
EMBEDDING_QUEUE = "embedding"
# How long the broker's client waits for a connection; for an answer, see
# BROKER_SOCKET_TIMEOUT_SECONDS. A worker's BRPOP is answered within a second (kombu's
# brpop_timeout), so neither ever cuts off a broker that is merely idle.
BROKER_CONNECT_TIMEOUT_SECONDS = 3.0


# The embedded queue's kombu transport (PostgreSQL, LISTEN/NOTIFY), named for kombu to load.
EMBEDDED_TRANSPORT = "hearth.worker.pg_transport:Transport"


def queue_urls(settings: Settings, database_url: str) -> tuple[str, str]:
    """Broker and result backend: Redis when configured, else PostgreSQL (Hearth's own
    transport, ``EMBEDDED_TRANSPORT``, and Celery's database backend), so the embedded mode
    needs no other server."""
    if settings.redis_url:
        return settings.redis_url, settings.redis_url
    # The transport takes libpq's postgresql:// (kombu would read a "+" as a transport name);
    # postgresql+psycopg:// serves SQLAlchemy's sync side as well as its async one.
    return libpq_url(database_url), f"db+{database_url}"


def embedded(app: Celery) -> bool:
    """Whether ``app``'s broker is the embedded queue (PostgreSQL)."""
    return bool(app.conf.broker_transport == EMBEDDED_TRANSPORT)


def periodic_tasks(settings: Settings) -> dict[str, dict[str, Any]]:
    """The beat's schedule. The embedding sweep queues a run that embeds what is pending,
    when a document is (hearth.documents.tasks.documents_wait) and no other run is at it:
    documents whose run was lost (a broker down when they were added, a run that failed
    past its retries) wait one period at most. A sweep not taken within its period
    expires, so they do not pile up behind a long task."""
    period = settings.embedding_sweep_seconds
    return {
        "embedding-sweep": {
            "task": EMBED_TASK,
            "schedule": period,
            "kwargs": {"periodic": True},
            "options": {"expires": period},
        },
        # Hourly, on the wall clock: a worker restarted often still runs it, and a laptop
        # that sleeps at night prunes whenever it is up. A run deletes about one hour's worth
        # of changes (next to nothing); every worker's beat sends it, and a second run finds
        # nothing left to delete.
        "health-history-prune": {
            "task": PRUNE_HEALTH_HISTORY_TASK,
            "schedule": crontab(minute=17),
            "options": {"expires": 3000},
        },
        # The Tasks page's history, the same way: hourly, a second run deletes nothing.
        "task-runs-prune": {
            "task": PRUNE_TASK_RUNS_TASK,
            "schedule": crontab(minute=43),
            "options": {"expires": 3000},
        },
    }


class SendingRedisBackend(RedisBackend):  # type: ignore[misc]  # Celery is untyped
    """Redis results for a Celery that sends tasks and reads their state by id, never waits
    on them: the web app (``hearth.worker.queue``). Celery's Redis backend subscribes to each
    sent task's result channel, for a ``.get()`` that never comes; redis-py then keeps every
    channel name, and Redis every unread subscribe reply, for as long as the process runs
    (one entry per task sent: the web app's memory grew with its traffic)."""

    def __init__(self, app: Celery, url: str | None = None, **options: object) -> None:
        # Set as ``backend_cls``, Celery gives the class no URL: it is the configured one.
        super().__init__(app=app, url=url or app.conf.result_backend, **options)

    def on_task_call(self, producer: object, task_id: str) -> dict[str, Any]:  # noqa: ARG002 (Celery's signature)
        """Nothing to subscribe to: no one here waits for a result."""
        return {}


def create_celery(settings: Settings, database_url: str, *, waits: bool = True) -> Celery:
    """Celery configured for at-least-once delivery: a task is acknowledged after it ran,
    and handed to another worker if its worker dies mid-task. ``waits=False`` for a sender
    that reads results by id and never waits on one (the web app): it subscribes to none."""
    broker, backend = queue_urls(settings, database_url)
    extra = [name.strip() for name in settings.worker_imports.split(",") if name.strip()]
    app = Celery("hearth", broker=broker, backend=backend, include=[*TASK_MODULES, *extra])
    if not settings.redis_url:
        app.conf.broker_transport = EMBEDDED_TRANSPORT
    if settings.redis_url and not waits:
        app.backend_cls = SendingRedisBackend  # the database backend subscribes to nothing
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        result_expires=RESULT_EXPIRES,
        result_extended=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_track_started=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=2,
        result_backend_transport_options={"retry_policy": {"timeout": 2.0}},
        # The result backend's client waits no longer than the broker's (Celery's default
        # is 120 s): the web app subscribes to a task's result before publishing it.
        redis_socket_timeout=BROKER_SOCKET_TIMEOUT_SECONDS,
        redis_socket_connect_timeout=BROKER_CONNECT_TIMEOUT_SECONDS,
        # The web app publishes without these retries (hearth.worker.queue: a retried
        # publish that had reached the broker would queue the task twice); tasks sending
        # tasks use them.
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        timezone="UTC",
        task_default_queue=DEFAULT_QUEUE,
        task_queues=[Queue(name) for name in (DEFAULT_QUEUE, EMBEDDING_QUEUE)],  # type: ignore[no-untyped-call]
        task_routes={EMBED_TASK: {"queue": EMBEDDING_QUEUE}},
        # Every worker runs a beat (`hearth worker` starts it), kept in memory: no schedule
        # file to write, and nothing to elect. Each periodic task is a sweep that is safe to
        # run twice, so several workers sending it is harmless; a sweep with a condition is
        # sent only when there is something to sweep (hearth.worker.schedule).
        beat_scheduler="hearth.worker.schedule:Scheduler",
        beat_schedule=periodic_tasks(settings),
    )
    if settings.redis_url:
        visibility = settings.task_visibility_timeout_seconds
        app.conf.broker_transport_options = {
            # A task taken by a worker that died goes to another after this long; workers
            # look for such tasks every few seconds (kombu's default is every 100 s).
            "visibility_timeout": visibility,
            "unacked_restore_interval": max(1, min(10, visibility // 3)),
            "unacked_restore_throttle": 1,
            # A Redis that hangs, or vanishes behind a rebooted router without closing the
            # connection: without these, a publish or a consumer would wait forever. A web
            # request that sends a task waits at most about this long for its 503.
            "socket_timeout": BROKER_SOCKET_TIMEOUT_SECONDS,
            "socket_connect_timeout": BROKER_CONNECT_TIMEOUT_SECONDS,
            "socket_keepalive": True,
        }
    else:
        app.conf.broker_transport_options = {
            # As with Redis: a task taken by a worker that died, and not started, waits
            # this long; a started one comes back with the sweep of orphaned tasks.
            "visibility_timeout": settings.task_visibility_timeout_seconds,
            # Workers wake on PostgreSQL's notifications; this is only the fallback look.
            "poll_seconds": settings.embedded_queue_poll_seconds,
            "connect_timeout": int(BROKER_CONNECT_TIMEOUT_SECONDS),
        }
        # Celery's database backend builds an engine of its own: a PostgreSQL that is down
        # must fail a connection attempt, not hold it.
        app.conf.database_engine_options = {
            "pool_pre_ping": True,
            "connect_args": {"connect_timeout": int(BROKER_CONNECT_TIMEOUT_SECONDS)},
        }
    return app
