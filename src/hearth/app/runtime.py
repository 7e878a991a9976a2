"""The long-lived resources of a Hearth process: built together, closed together.

The web app's lifespan opens a runtime to serve and hands each resource to the routes that
name it (see ``factory.py``); ``hearth check`` and ``hearth migrate`` open one too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from hearth.audit.service import AuditTrail
from hearth.config.service import ConfigService
from hearth.config.settings import SECRET_FIELDS, Settings
from hearth.db import engine as db_engine
from hearth.db import migrate
from hearth.db.embedded import EmbeddedNotRunning, EmbeddedPostgres, running_database_url
from hearth.db.supervisor import EmbeddedSupervisor
from hearth.db.unit import Sessions
from hearth.db.vector import VectorSupport
from hearth.health.liveness import Liveness
from hearth.health.readiness import Readiness
from hearth.health.service import HealthService
from hearth.kit.checks import CheckResult
from hearth.llm.measured import CallRecorder
from hearth.llm.provider import LLMChoice, LLMProvider
from hearth.mail.adapter import MailAdapter
from hearth.notify import service as notify_service
from hearth.redis import adapter as redis_adapter
from hearth.version import hearth_version
from hearth.worker.health import WorkerCheck
from hearth.worker.queue import TaskQueue

if TYPE_CHECKING:
    import httpx
    from celery import Celery
    from redis.asyncio import Redis

    from hearth.notify.sender import AppriseSender

# A mail check is a login: once a minute at most, or a wrong password could get the account
# locked (or this host banned). The config page's test button checks at once.
MAIL_CHECK_SECONDS = 60.0


@dataclass
class Runtime:
    """Every resource of one process. Routes never reach into it: the app factory hands
    each resource to the dependency that provides it."""

    settings: Settings
    engine: AsyncEngine | None
    sessions: Sessions | None
    redis: Redis | None
    health: HealthService
    readiness: Readiness
    liveness: Liveness
    config: ConfigService
    llm: LLMProvider
    queue: TaskQueue
    vector: VectorSupport
    audit: AuditTrail
    http: _SharedClient = field(repr=False)
    notify_sender: AppriseSender | None = None  # NOTIFY_URLS set, serving


class _SharedClient:
    """The client for outbound HTTP (the LLM server, Google), created on first use: httpx
    and its TLS context cost about 10 MB that a Hearth without them need not pay."""

    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None

    def __call__(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient()
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    serving: bool,
    liveness: Liveness | None = None,
    llm_calls: CallRecorder | None = None,
) -> AsyncIterator[Runtime]:
    """Build every resource; close them all on exit, in reverse order.

    ``serving``: start the embedded database if it is the one configured (and restart it
    while the runtime is open, failing ``liveness`` if it will not come back), wait for the
    database with retries and apply migrations (``MIGRATE_ON_START``). Otherwise only
    connect to what is already running. ``llm_calls``: where each LLM call is counted.
    """
    liveness = liveness or Liveness()
    async with AsyncExitStack() as stack:
        embedded, database_url, unavailable = await _database(settings, stack, serving=serving)
        engine = db_engine.create_engine(database_url) if database_url else None
        if engine is not None:
            stack.push_async_callback(engine.dispose)
            if serving:
                await db_engine.connect_with_retry(
                    engine,
                    attempts=settings.db_connect_attempts,
                    delay=settings.db_connect_delay_seconds,
                )
        sessions = async_sessionmaker(engine, expire_on_commit=False) if engine else None

        redis = redis_adapter.create_client(settings.redis_url) if settings.redis_url else None
        if redis is not None:
            stack.push_async_callback(redis.aclose)

        http = _SharedClient()
        stack.push_async_callback(http.close)
        queue = TaskQueue(_celery_builder(settings, database_url))
        stack.callback(queue.close)
        stack.push_async_callback(queue.flush)  # the sends requests left, then close

        health = HealthService(
            version=hearth_version(),
            budget=settings.health_budget_seconds,
            cache_seconds=settings.health_cache_seconds,
        )
        stack.push_async_callback(health.close)  # before the clients its checks use
        runtime = Runtime(
            settings=settings,
            engine=engine,
            sessions=sessions,
            redis=redis,
            health=health,
            readiness=Readiness(health, engine),
            liveness=liveness,
            config=ConfigService(settings, recent_seconds=settings.runtime_values_cache_seconds),
            llm=LLMProvider(http, settings.bound_llm_api_key(), llm_calls),
            queue=queue,
            vector=VectorSupport(),
            audit=audit_trail(settings, sessions),
            http=http,
        )
        _register_checks(runtime, unavailable)

        if serving and engine is not None and settings.migrate_on_start:
            await migrate.upgrade_to_head(engine)
            runtime.readiness.migrated = True
        if serving:
            await runtime.audit.prune()  # then at most once a day, as events are recorded
        if serving and settings.notify_urls is not None and sessions is not None:
            runtime.notify_sender = await stack.enter_async_context(
                notify_service.watching(
                    settings.notify_urls.get_secret_value(),
                    sessions,
                    health,
                    grace=settings.notify_grace_seconds,
                    redis=redis,
                )
            )
        if embedded is not None and database_url is not None:
            supervisor = EmbeddedSupervisor(
                embedded,
                database_url,
                recovery_seconds=settings.embedded_postgres_recovery_seconds,
                on_give_up=liveness.fail,
            )
            watching = asyncio.create_task(supervisor.run(), name="embedded-postgres-supervisor")
            stack.push_async_callback(_cancel, watching)  # before the server is let go
        yield runtime


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task


def audit_trail(settings: Settings, sessions: Sessions | None = None) -> AuditTrail:
    """The audit trail, masking this configuration's secrets. Without ``sessions`` it records
    only ``within`` a caller's transaction (the commands, which open their own session)."""
    return AuditTrail(sessions, secrets=settings.secret_values(), sensitive_keys=SECRET_FIELDS)


def _register_checks(runtime: Runtime, database_unavailable: str) -> None:
    settings, health = runtime.settings, runtime.health
    database = db_engine.DatabaseAdapter(runtime.engine, unavailable=database_unavailable)
    redis = redis_adapter.RedisAdapter(runtime.redis, settings.redis_url)
    worker = WorkerCheck(runtime.engine, settings.worker_heartbeat_seconds)

    async def llm() -> CheckResult:
        """Against the values in force, as another replica may have changed them (within
        RUNTIME_VALUES_CACHE_SECONDS)."""
        values = await runtime.config.read_values(runtime.sessions)
        return await runtime.llm.adapter(LLMChoice.of(values)).check()

    health.register("db", database.check, critical=True, timeout=1.5)
    health.register("redis", redis.check, critical=False, timeout=1.5)
    health.register("llm", llm, critical=False, timeout=1.5)
    health.register("worker", worker.check, critical=False, timeout=1.5)
    health.register(
        "mail",
        _mail_adapter(settings, runtime.http).check,
        critical=False,
        timeout=2.0,
        cache_seconds=MAIL_CHECK_SECONDS,
    )


def _mail_adapter(settings: Settings, http: _SharedClient) -> MailAdapter:
    def secret(value: SecretStr | None) -> str | None:
        return value.get_secret_value() if value else None

    return MailAdapter(
        http,
        gmail_client_id=settings.gmail_client_id,
        gmail_client_secret=secret(settings.gmail_client_secret),
        gmail_refresh_token=secret(settings.gmail_refresh_token),
        imap_host=settings.imap_host,
        imap_port=settings.imap_port,
        imap_tls=settings.imap_tls,
        imap_user=settings.imap_user,
        imap_password=secret(settings.imap_password),
        imap_ca_file=settings.imap_ca_file,
        timeout=1.8,  # under the check's 2 s, so the adapter's own words explain a timeout
    )


def _celery_builder(settings: Settings, database_url: str | None) -> Callable[[], Celery] | None:
    """How to build the Celery app when the first task is sent; None without a database."""
    if database_url is None:
        return None

    def build() -> Celery:
        from hearth.worker.app import create_celery

        return create_celery(settings, database_url, waits=False)

    return build


async def _database(
    settings: Settings, stack: AsyncExitStack, *, serving: bool
) -> tuple[EmbeddedPostgres | None, str | None, str]:
    """The embedded server this process started (None if it started none), the database's
    URL, or None and why there is none."""
    if serving and settings.embedded_database:
        embedded = EmbeddedPostgres(settings.hearth_data_dir)
        url = await asyncio.to_thread(embedded.start)
        stack.push_async_callback(asyncio.to_thread, embedded.stop)
        return embedded, url, ""
    try:
        url = running_database_url(settings.database_url, settings.hearth_data_dir)
    except EmbeddedNotRunning as exc:
        return None, None, exc.message
    return None, url, ""
