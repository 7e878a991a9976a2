"""Shared fixtures: real PostgreSQL and Redis, a database built by the real migrations, and
the app served in-process through its lifespan."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from hearth.app.factory import create_app
from hearth.config.settings import Settings
from hearth.db.engine import create_engine
from hearth.db.migrate import upgrade_to_head
from hearth.kit.urls import normalize_database_url
from tests.support.process import _HEARTH_VARIABLES, TEST_SECRET_KEY
from tests.support.services import POSTGRES_ADMIN_URL, REDIS_URL, missing_services

# Fixtures of a real Chromium (browser, page), and of Dovecot and a Google token endpoint double.
pytest_plugins = ["tests.support.browser", "tests.support.mail"]


def pytest_sessionstart(session: pytest.Session) -> None:
    # A missing service fails the run at once, saying what is missing: never a skip.
    if missing := missing_services():
        pytest.exit("The test suite needs these services:\n  " + "\n  ".join(missing), returncode=1)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the settings of the person running it."""
    for name in _HEARTH_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _admin_execute(sql: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
        connection.execute(sql)  # type: ignore[arg-type]


def create_database(prefix: str = "hearth_test") -> str:
    """A new, empty database on the test server; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    _admin_execute(f'CREATE DATABASE "{name}"')
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """An empty database of the test's own, dropped afterwards."""
    url = create_database()
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    """The suite's database, built once by the real Alembic migrations."""
    url = create_database()
    engine = create_engine(normalize_database_url(url))
    try:
        await upgrade_to_head(engine)
    finally:
        await engine.dispose()
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(normalize_database_url(database_url))
    yield engine
    await engine.dispose()


@pytest.fixture
async def db_session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session inside a transaction that is rolled back after the test, whatever it
    committed (commits become savepoints)."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(bind=connection, join_transaction_mode="create_savepoint")
        try:
            yield session
        finally:
            await session.close()
            await transaction.rollback()


@pytest.fixture
def make_settings(database_url: str) -> Callable[..., Settings]:
    """Settings for the suite's database and Redis; keyword arguments override."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "secret_key": TEST_SECRET_KEY,
            "database_url": database_url,
            "redis_url": REDIS_URL,
            "db_connect_attempts": 1,
            "db_connect_delay_seconds": 0.1,
            "health_cache_seconds": 0,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, and an async client that talks to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://hearth.test") as client:
            yield client


@pytest.fixture
def client_for(
    make_settings: Callable[..., Settings],
) -> Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]:
    """``async with client_for(**settings) as client``: the real app on the suite's database."""

    def open_client(**overrides: Any) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        return served(create_app(make_settings(**overrides)))

    return open_client
