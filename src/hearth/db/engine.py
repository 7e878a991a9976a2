"""The async engine, the start-up connection with retries, and the database health check."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from hearth import traces
from hearth.db.driver import CONNECT_TIMEOUT_SECONDS
from hearth.errors import StartupError
from hearth.kit.checks import CheckResult
from hearth.kit.text import first_line
from hearth.log import get_logger

log = get_logger(__name__)

# The longest wait between two start-up connection attempts.
MAX_RETRY_DELAY_SECONDS = 10.0

_VERSION_QUERY = text(
    "SELECT current_setting('server_version'),"
    " (SELECT default_version FROM pg_available_extensions WHERE name = 'vector')"
)


def create_engine(url: str) -> AsyncEngine:
    """An async psycopg 3 engine whose pooled connections are pinged before use, so a
    connection broken by a database restart is replaced instead of failing a request."""
    engine = create_async_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        pool_timeout=5,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )
    traces.watch_engine(engine)  # its statements as spans, when traces are on
    return engine


def describe_location(url: str) -> str:
    """Where a database URL points, without credentials: ``host:port/db`` or the socket."""
    parts = urlsplit(url)
    database = parts.path.lstrip("/")
    host = parts.hostname or parse_qs(parts.query).get("host", ["localhost"])[0]
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}/{database}"


def error_reason(exc: BaseException) -> str:
    """The driver's one-line reason for a failure, never the connection password."""
    source = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return first_line(source)


async def connect_with_retry(engine: AsyncEngine, *, attempts: int, delay: float) -> str:
    """Connect once, retrying with exponential backoff; return the server version.

    Each retry is logged ``db_connect_retry``; giving up logs ``db_connect_failed`` and
    raises ``StartupError`` with the reason.
    """
    location = describe_location(engine.url.render_as_string(hide_password=True))

    def log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "db_connect_retry",
            attempt=state.attempt_number,
            max_attempts=attempts,
            delay_seconds=round(state.next_action.sleep if state.next_action else 0.0, 2),
            database=location,
            reason=error_reason(exc) if exc else "unknown",
        )

    retrying = AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=delay, min=delay, max=MAX_RETRY_DELAY_SECONDS),
        retry=retry_if_exception_type((SQLAlchemyError, OSError)),
        before_sleep=log_retry,
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                async with engine.connect() as connection:
                    row = (await connection.execute(_VERSION_QUERY)).one()
    except (SQLAlchemyError, OSError) as exc:
        reason = error_reason(exc)
        log.error("db_connect_failed", attempts=attempts, database=location, reason=reason)  # noqa: TRY400 (expected; the reason says why)
        raise StartupError(
            f"Cannot connect to PostgreSQL at {location} after {attempts} attempts: {reason}"
        ) from None
    version = str(row[0])
    log.info("db_connected", database=location, server_version=version, pgvector=row[1])
    return version


class DatabaseAdapter:
    """The ``db`` health check: a fresh pool checkout (pre-pinged) and one query."""

    def __init__(self, engine: AsyncEngine | None, *, unavailable: str = "") -> None:
        self.engine = engine
        self.unavailable = unavailable

    async def check(self) -> CheckResult:
        """``ok`` with the server and pgvector versions, or ``unreachable`` with the reason."""
        if self.engine is None:
            return CheckResult(status="unreachable", detail=self.unavailable)
        started = time.perf_counter()
        try:
            async with self.engine.connect() as connection:
                server_version, vector = (await connection.execute(_VERSION_QUERY)).one()
        except (SQLAlchemyError, OSError) as exc:
            return CheckResult.timed("unreachable", error_reason(exc), started)
        extension = f"pgvector {vector} available" if vector else "pgvector not installed"
        return CheckResult.timed("ok", f"PostgreSQL {server_version}, {extension}", started)
