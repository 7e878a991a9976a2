"""The suite's PostgreSQL: databases of the tests' own on the server at TEST_POSTGRES_URL, one
built by the real Alembic migrations once per session, and a session per test whose work is
rolled back. conftest.py registers these fixtures as a plugin."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from hearth.db.engine import create_engine
from hearth.db.migrate import upgrade_to_head
from hearth.kit.urls import normalize_database_url
from tests.support.services import POSTGRES_ADMIN_URL


def _admin_execute(sql: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
        connection.execute(sql)


def create_database(prefix: str = "hearth_test") -> str:
    """A new, empty database on the test server; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    _admin_execute(f'CREATE DATABASE "{name}"')
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def rolled_back_session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session inside a transaction that is rolled back on exit, whatever it committed
    (commits become savepoints)."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(bind=connection, join_transaction_mode="create_savepoint")
        try:
            yield session
        finally:
            await session.close()
            await transaction.rollback()


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """An empty database of the test's own, dropped afterwards."""
    url = create_database()
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    """The suite's database, built once by the real Alembic migrations."""
    url = await create_migrated_database()
    yield url
    drop_database(url)


async def create_migrated_database() -> str:
    """A new database, migrated to head by the real Alembic migrations; its URL."""
    url = create_database()
    engine = create_engine(normalize_database_url(url))
    try:
        await upgrade_to_head(engine)
    finally:
        await engine.dispose()
    return url


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(normalize_database_url(database_url))
    yield engine
    await engine.dispose()


@pytest.fixture
async def db_session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session on the suite's database whose work is rolled back after the test."""
    async with rolled_back_session(engine) as session:
        yield session
