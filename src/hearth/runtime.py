"""The long-lived resources of a Hearth process: built together, closed together.

The web app's lifespan opens a runtime to serve; ``hearth check`` opens one to look
around without starting or migrating anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import SecretStr
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from hearth.config.service import ConfigService, EffectiveSetting
from hearth.config.settings import Settings
from hearth.db import engine as db_engine
from hearth.db import migrate
from hearth.db.embedded import EmbeddedPostgres
from hearth.errors import HearthError
from hearth.health.schemas import CheckResult
from hearth.health.service import HealthService
from hearth.llm.adapter import LLMAdapter, UnconfiguredLLM
from hearth.llm.factory import LLMChoice, build_adapter
from hearth.log import get_logger
from hearth.mail.adapter import MailAdapter
from hearth.redis import adapter as redis_adapter
from hearth.version import hearth_version
from hearth.worker.health import WorkerAdapter

if TYPE_CHECKING:
    import httpx
    from redis.asyncio import Redis

    from hearth.worker.queue import TaskQueue

log = get_logger(__name__)


@dataclass
class Runtime:
    """What request handlers and commands reach through dependencies."""

    settings: Settings
    health: HealthService
    engine: AsyncEngine | None
    redis: Redis | None
    config: ConfigService
    migrated: bool = False
    llm: LLMAdapter = field(default_factory=UnconfiguredLLM)
    _llm_choice: LLMChoice | None = field(default=None, repr=False)
    database_url: str | None = None
    _http: httpx.AsyncClient | None = field(default=None, repr=False)
    _queue: TaskQueue | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.sessions = (
            async_sessionmaker(self.engine, expire_on_commit=False) if self.engine else None
        )

    def http_client(self) -> httpx.AsyncClient:
        """The shared client for outbound HTTP (the LLM server), created on first use:
        httpx and its TLS context cost about 10 MB that a Hearth without them need not pay."""
        if self._http is None:
            import httpx

            self._http = httpx.AsyncClient()
        return self._http

    def task_queue(self) -> TaskQueue:
        """The task queue, built on first use: Celery costs the web app nothing until it
        sends a task."""
        if self._queue is None:
            if self.database_url is None:
                raise HearthError(
                    "The task queue needs the database, which is not available.", status_code=503
                )
            from hearth.worker.app import create_celery
            from hearth.worker.queue import TaskQueue

            self._queue = TaskQueue(create_celery(self.settings, self.database_url))
        return self._queue

    def close_task_queue(self) -> None:
        if self._queue is not None:
            self._queue.app.close()  # its broker and result connections
            self._queue = None

    async def close_http_client(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def runtime_settings(self) -> dict[str, EffectiveSetting]:
        """The runtime settings in force; environment and defaults if the database is down."""
        if self.sessions is None:
            return self.config.defaults()
        try:
            async with self.sessions() as session:
                return await self.config.get_all(session)
        except (SQLAlchemyError, OSError):
            return self.config.defaults()

    async def current_llm(self, values: dict[str, EffectiveSetting] | None = None) -> LLMAdapter:
        """The LLM adapter for the settings in force, rebuilt when they change (on this
        replica's config page or another's). ``values``: those settings, if the caller has
        just read them."""
        if values is None:
            values = await self.runtime_settings()
        choice = LLMChoice.of(values)
        if choice != self._llm_choice:
            api_key = self.settings.llm_api_key
            key = api_key.get_secret_value() if api_key else None
            self.llm = build_adapter(choice, self.http_client, key)
            self._llm_choice = choice
        return self.llm

    async def check_llm(self) -> CheckResult:
        """The ``llm`` health check, always against the current settings."""
        return await (await self.current_llm()).check()


@asynccontextmanager
async def open_runtime(settings: Settings, *, serving: bool) -> AsyncIterator[Runtime]:
    """Build every resource; close them all on exit, in reverse order.

    ``serving``: start the embedded database if it is the one configured, wait for the
    database with retries and apply migrations (``MIGRATE_ON_START``). Otherwise only
    connect to what is already running.
    """
    async with AsyncExitStack() as stack:
        engine, database_url, unavailable = await _database_engine(settings, stack, serving=serving)
        if engine is not None:
            stack.push_async_callback(engine.dispose)
            if serving:
                await db_engine.connect_with_retry(
                    engine,
                    attempts=settings.db_connect_attempts,
                    delay=settings.db_connect_delay_seconds,
                )

        redis = redis_adapter.create_client(settings.redis_url) if settings.redis_url else None
        if redis is not None:
            stack.push_async_callback(redis.aclose)

        health = HealthService(
            version=hearth_version(),
            budget=settings.health_budget_seconds,
            cache_seconds=settings.health_cache_seconds,
        )
        stack.push_async_callback(health.close)
        runtime = Runtime(
            settings, health, engine, redis, ConfigService(settings), database_url=database_url
        )
        stack.push_async_callback(runtime.close_http_client)
        stack.callback(runtime.close_task_queue)

        database = db_engine.DatabaseAdapter(engine, unavailable=unavailable)
        redis_check = redis_adapter.RedisAdapter(redis, settings.redis_url)
        health.register("db", database.check, critical=True, timeout=1.5)
        health.register("redis", redis_check.check, critical=False, timeout=1.5)
        health.register("llm", runtime.check_llm, critical=False, timeout=1.5)
        worker = WorkerAdapter(engine, settings.worker_heartbeat_seconds)
        health.register("worker", worker.check, critical=False, timeout=1.5)
        # A mail check is a login: once a minute at most, or a wrong password could get the
        # account locked (or this host banned). The config page's test button checks at once.
        mail = _mail_adapter(runtime)
        health.register(
            "mail", mail.check, critical=False, timeout=2.0, cache_seconds=MAIL_CHECK_SECONDS
        )

        if serving and engine is not None and settings.migrate_on_start:
            await migrate.upgrade_to_head(engine)
            runtime.migrated = True
        yield runtime


MAIL_CHECK_SECONDS = 60.0


def _mail_adapter(runtime: Runtime) -> MailAdapter:
    settings = runtime.settings

    def secret(value: SecretStr | None) -> str | None:
        return value.get_secret_value() if value else None

    return MailAdapter(
        runtime.http_client,
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


async def _database_engine(
    settings: Settings, stack: AsyncExitStack, *, serving: bool
) -> tuple[AsyncEngine | None, str | None, str]:
    """The engine for the configured database and its URL, or None and why there is none."""
    url = settings.database_url
    if url is None:
        embedded = EmbeddedPostgres(settings.hearth_data_dir)
        if serving:
            url = await asyncio.to_thread(embedded.start)
            stack.push_async_callback(asyncio.to_thread, embedded.stop)
        else:
            url = embedded.running_url()
            if url is None:
                return (
                    None,
                    None,
                    (
                        f"embedded PostgreSQL is not running under {embedded.pgdata}; "
                        "start Hearth with `hearth serve` (or `make run`)"
                    ),
                )
    return db_engine.create_engine(url), url, ""
