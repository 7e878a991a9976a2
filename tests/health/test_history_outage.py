"""The database itself going away: the change ("db unreachable") cannot be written while it
happens, waits in memory, and is written with its own time once the database answers again,
followed by the recovery. A PostgreSQL of the test's own, stopped and started under a
running Hearth whose monitor checks every second; no request is made."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from hearth.app.factory import create_app
from hearth.config.settings import Settings
from tests.support.app import served
from tests.support.postgres import OwnedPostgres
from tests.support.process import TEST_SECRET_KEY
from tests.support.services import REDIS_URL, free_port


@pytest.fixture
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnedPostgres]:
    server = OwnedPostgres(tmp_path_factory.mktemp("postgres"), free_port()).init()
    server.start()
    yield server
    if server.running():
        server.stop()


def db_changes(url: str) -> list[tuple[str, datetime]]:
    try:
        with psycopg.connect(url, connect_timeout=2) as connection:
            return list(
                connection.execute(
                    "SELECT status, changed_at FROM health_events WHERE component = 'db'"
                    " ORDER BY changed_at, id"
                )
            )
    except psycopg.OperationalError:
        return []


async def wait_for(condition: object, what: str, seconds: float = 60) -> None:
    assert callable(condition)
    for _ in range(int(seconds / 0.1)):
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never saw {what}")


@pytest.mark.embedded_postgres
@pytest.mark.redis
@pytest.mark.timeout(180)
async def test_a_change_made_while_the_database_is_down_is_written_when_it_is_back(
    postgres: OwnedPostgres,
) -> None:
    settings = Settings(
        _env_file=None,
        secret_key=TEST_SECRET_KEY,
        database_url=postgres.url,
        redis_url=REDIS_URL,
        health_cache_seconds=0,
        health_monitor_seconds=1,
        db_connect_attempts=1,
    )
    app = create_app(settings)
    try:
        async with served(app):
            await wait_for(lambda: db_changes(postgres.url), "the first db status stored")
            assert [status for status, _ in db_changes(postgres.url)] == ["ok"]

            down_at = datetime.now(UTC)
            await asyncio.to_thread(postgres.stop)

            def seen_down() -> bool:
                state = app.state.health.states()["db"]
                return bool(state.result.status == "unreachable")

            await wait_for(seen_down, "the monitor see the database down")
            await asyncio.sleep(2)  # the writer tries, and fails, meanwhile
            up_at = datetime.now(UTC)
            await asyncio.to_thread(postgres.start)

            await wait_for(lambda: len(db_changes(postgres.url)) >= 3, "the changes written")
            changes = db_changes(postgres.url)
    finally:
        if not postgres.running():
            postgres.start()
    assert [status for status, _ in changes] == ["ok", "unreachable", "ok"]
    _, went_down = changes[1]
    _, came_back = changes[2]
    assert down_at <= went_down < up_at  # its own time, not the time it was written
    assert came_back >= up_at
