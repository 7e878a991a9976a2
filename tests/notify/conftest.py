"""The notifier's tests: a health service checking components the test turns on and off, a
small recorder writing each change to ``health_events`` as the health monitor does, and a
clean table before and after each test (the notifier commits: claims must be seen by every
replica)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from hearth.db.unit import Sessions
from hearth.health.service import HealthService
from hearth.kit.checks import CheckResult
from hearth.models import HealthEvent
from tests.notify.receivers import Component, JsonReceiver, json_receiver


class Recorder:
    """Writes one ``health_events`` row per change a health service reports (what the
    health monitor does), at the time of the change."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions
        self._writing: set[asyncio.Task[None]] = set()

    def __call__(
        self, name: str, _previous: CheckResult | None, result: CheckResult, at: float
    ) -> None:
        task = asyncio.get_running_loop().create_task(self._write(name, result, at))
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)

    async def _write(self, name: str, result: CheckResult, at: float) -> None:
        async with self.sessions() as session, session.begin():
            session.add(
                HealthEvent(
                    component=name,
                    status=result.status,
                    detail=result.detail,
                    changed_at=datetime.fromtimestamp(at, tz=UTC),
                )
            )

    async def flush(self) -> None:
        while self._writing:
            await asyncio.gather(*self._writing)


@pytest.fixture
async def sessions(engine: AsyncEngine) -> AsyncIterator[Sessions]:
    """Sessions on the suite's database, with ``health_events`` empty before and after."""
    async with engine.begin() as connection:
        await connection.execute(sa.delete(HealthEvent))
    yield async_sessionmaker(engine, expire_on_commit=False)
    async with engine.begin() as connection:
        await connection.execute(sa.delete(HealthEvent))


@pytest.fixture
def llm() -> Iterator[Component]:
    """A component, up at first."""
    component = Component()
    component.up()
    yield component
    component.down()


def watched(component: Component, recorder: Recorder | None, name: str = "llm") -> HealthService:
    """A health service checking ``component`` as ``name``, uncached; each change recorded."""
    health = HealthService(version="test", budget=2.0, cache_seconds=0)
    health.register(name, component.check, critical=False, timeout=1.0)
    if recorder is not None:
        health.on_change(recorder)
    return health


@pytest.fixture
def receiver() -> Iterator[JsonReceiver]:
    with json_receiver() as server:
        yield server
