"""Each route names the resources it uses, so a test swaps one with
``app.dependency_overrides``; and the unit of work is the one commit edge."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from hearth.access.caller import Caller, identify
from hearth.app.factory import create_app
from hearth.config.settings import Settings
from hearth.db.engine import create_engine
from hearth.db.unit import DatabaseUnavailable, Sessions, unit_of_work
from hearth.health.dependencies import get_health
from hearth.health.schemas import DetailsPolicy
from hearth.health.service import HealthService
from hearth.kit.checks import CheckResult
from hearth.worker.dependencies import get_queue
from hearth.worker.queue import TaskQueue
from tests.support.process import TEST_SECRET_KEY
from tests.support.services import free_port


def _app(health_details: DetailsPolicy = "when_authorized") -> FastAPI:
    """The real app, whose lifespan is never run: nothing is opened, so every resource a
    request uses must come from an override (a missing one fails the test loudly)."""
    settings = Settings(_env_file=None, secret_key=TEST_SECRET_KEY, health_details=health_details)
    return create_app(settings)


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    return httpx.AsyncClient(transport=transport, base_url="http://hearth.test")


async def test_a_test_swaps_the_health_service_alone() -> None:
    health = HealthService(version="9.9.9", cache_seconds=0)

    async def down() -> CheckResult:
        return CheckResult(status="unreachable", detail="swapped in by the test")

    health.register("db", down, critical=True, timeout=1.0)
    app = _app(health_details="always")  # the swapped check's detail shows it is the one
    app.dependency_overrides[get_health] = lambda: health
    async with _client(app) as http:
        report = (await http.get("/health")).json()
        flat = await http.get("/healthz")
    assert report == {
        "status": "down",
        "version": "9.9.9",
        "checks": {
            "db": {"status": "unreachable", "detail": "swapped in by the test", "latency_ms": 0.0}
        },
    }
    assert (flat.status_code, flat.json()) == (503, {"status": "down", "db": "unreachable"})


async def test_a_test_swaps_the_task_queue_alone() -> None:
    """A queue without a database: the ping route answers 503 with the reason, not a 500."""
    app = _app()
    app.dependency_overrides[get_queue] = lambda: TaskQueue(None)
    app.dependency_overrides[identify] = lambda: Caller(
        token="swapped", scopes=frozenset({"write"})
    )
    async with _client(app) as http:
        response = await http.post("/tasks/ping")
    assert response.status_code == 503
    assert response.json()["detail"] == "The task queue needs the database, which is not available."


@pytest.fixture
async def sessions(engine: AsyncEngine) -> AsyncIterator[Sessions]:
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE IF NOT EXISTS unit_probe (key text)"))
    yield async_sessionmaker(engine)
    async with engine.begin() as connection:
        await connection.execute(text("DROP TABLE unit_probe"))


async def _stored(engine: AsyncEngine, key: str) -> bool:
    async with engine.connect() as connection:
        found = await connection.scalar(
            text("SELECT count(*) FROM unit_probe WHERE key = :k"), {"k": key}
        )
    return bool(found)


async def test_after_commit_actions_run_once_the_data_is_visible(
    engine: AsyncEngine,
    sessions: Sessions,
) -> None:
    key = uuid.uuid4().hex
    seen: list[bool] = []

    async def action() -> None:  # as a worker would: from another connection
        seen.append(await _stored(engine, key))

    async with unit_of_work(sessions) as unit:
        await unit.session.execute(text("INSERT INTO unit_probe VALUES (:k)"), {"k": key})
        unit.after_commit(action)
        assert seen == []  # not before the commit
    assert seen == [True]


async def test_a_unit_that_fails_is_rolled_back_and_its_actions_never_run(
    engine: AsyncEngine,
    sessions: Sessions,
) -> None:
    key = uuid.uuid4().hex
    ran: list[str] = []

    async def action() -> None:
        ran.append("sent")

    async def handler() -> None:
        async with unit_of_work(sessions) as unit:
            await unit.session.execute(text("INSERT INTO unit_probe VALUES (:k)"), {"k": key})
            unit.after_commit(action)
            raise RuntimeError("the handler failed")

    with pytest.raises(RuntimeError, match="the handler failed"):
        await handler()
    assert ran == []
    assert not await _stored(engine, key)


async def test_an_unreachable_database_is_a_503_with_the_reason() -> None:
    nowhere = create_engine(f"postgresql+psycopg://hearth@127.0.0.1:{free_port()}/hearth")

    async def query() -> None:
        async with unit_of_work(async_sessionmaker(nowhere)) as unit:
            await unit.session.execute(text("SELECT 1"))

    try:
        with pytest.raises(DatabaseUnavailable) as refused:
            await query()
    finally:
        await nowhere.dispose()
    assert refused.value.status_code == 503
    assert refused.value.message.startswith("The database is unavailable: ")
    assert "refused" in refused.value.message or "connect" in refused.value.message
    with pytest.raises(DatabaseUnavailable, match="not available"):
        await unit_of_work(None).__aenter__()
