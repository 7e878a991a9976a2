"""Recording the health history on the suite's PostgreSQL: one row per change of status (not
one per probe, not one per replica), and pruning that keeps each component's latest change.
Each test uses component names of its own, so rows of other tests never count."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from hearth.config.settings import Settings
from hearth.health import tasks
from hearth.health.history import HealthHistory
from hearth.health.service import HealthService
from hearth.kit.checks import CheckResult, CheckStatus
from hearth.worker import app as worker_app
from tests.support.process import TEST_SECRET_KEY, clean_environment
from tests.support.worker import hearth_worker


class Switch:
    """A component whose status the test sets; its check says so."""

    def __init__(self) -> None:
        self.status: CheckStatus = "ok"

    async def check(self) -> CheckResult:
        detail = f"http://user:pw-in-detail@192.0.2.7/x?token=s3cret is {self.status}"
        return CheckResult.model_construct(status=self.status, detail=detail, latency_ms=1.0)


def replica(history: HealthHistory, checks: dict[str, Switch]) -> HealthService:
    """One replica's health checks, each change handed to ``history``."""
    health = HealthService(version="test", cache_seconds=0)
    for name, switch in checks.items():
        health.register(name, switch.check, critical=False, timeout=1)
    health.on_change(history.record)
    return health


def rows(database_url: str, components: list[str]) -> dict[str, list[tuple[str, str]]]:
    """Each component's stored changes in time order: (status, detail)."""
    found: dict[str, list[tuple[str, str]]] = {name: [] for name in components}
    with psycopg.connect(database_url) as connection:
        for component, status, detail in connection.execute(
            "SELECT component, status, detail FROM health_events WHERE component = ANY(%s)"
            " ORDER BY changed_at, id",
            (components,),
        ):
            found[component].append((status, detail))
    return found


def names(count: int) -> list[str]:
    tag = uuid.uuid4().hex[:8]
    return [f"c{index}-{tag}" for index in range(count)]


async def test_each_change_is_stored_once_not_each_probe(
    engine: AsyncEngine, database_url: str
) -> None:
    [name] = names(1)
    switch = Switch()
    history = HealthHistory(async_sessionmaker(engine))
    health = replica(history, {name: switch})
    for status, probes in (("ok", 4), ("unreachable", 3), ("ok", 2), ("unconfigured", 2)):
        switch.status = status  # type: ignore[assignment]
        for _ in range(probes):
            await health.run()
    assert history.pending == 4
    assert await history.flush() == 0

    stored = rows(database_url, [name])[name]
    assert [status for status, _ in stored] == ["ok", "unreachable", "ok", "unconfigured"]
    # A restart's first check is a change from nothing, and stores nothing new.
    again = replica(history, {name: switch})
    await again.run()
    await history.flush()
    assert len(rows(database_url, [name])[name]) == 4
    # Details hold no URL secret, whatever a check said.
    assert all("pw-in-detail" not in d and "s3cret" not in d for _, d in stored)
    assert "192.0.2.7" in stored[0][1]


async def test_two_replicas_on_one_database_write_one_row_per_change(
    engine: AsyncEngine, database_url: str
) -> None:
    components = names(6)
    switches = {name: Switch() for name in components}
    sessions = async_sessionmaker(engine)
    first, second = HealthHistory(sessions), HealthHistory(sessions)
    replicas = [replica(first, switches), replica(second, switches)]
    for status in ("ok", "unreachable", "ok", "unreachable", "ok"):
        for switch in switches.values():
            switch.status = status
        for health in replicas:  # each replica sees the change at a moment of its own
            await health.run()
    assert first.pending == second.pending == 5 * len(components)

    # Both write at once: for each component, both hold the same five changes.
    assert list(await asyncio.gather(first.flush(), second.flush())) == [0, 0]

    expected = ["ok", "unreachable", "ok", "unreachable", "ok"]
    for name, stored in rows(database_url, components).items():
        assert [status for status, _ in stored] == expected, name


async def test_a_change_written_late_by_a_second_replica_adds_nothing(
    engine: AsyncEngine, database_url: str
) -> None:
    """The second replica saw the outage a moment earlier, but writes after the first."""
    [name] = names(1)
    switch = Switch()
    sessions = async_sessionmaker(engine)
    late, early = HealthHistory(sessions), HealthHistory(sessions)
    late_health, early_health = replica(late, {name: switch}), replica(early, {name: switch})
    await late_health.run()
    await early_health.run()
    switch.status = "unreachable"
    await early_health.run()  # saw it first...
    await late_health.run()
    await late.flush()  # ...but the other replica wrote first
    await early.flush()
    assert [s for s, _ in rows(database_url, [name])[name]] == ["ok", "unreachable"]


async def test_the_queue_is_bounded_and_drops_the_oldest(engine: AsyncEngine) -> None:
    [name] = names(1)
    switch = Switch()
    history = HealthHistory(async_sessionmaker(engine), max_pending=3)
    health = replica(history, {name: switch})
    for status in ("ok", "unreachable", "ok", "unreachable", "ok"):
        switch.status = status
        await health.run()
    assert (history.pending, history.dropped) == (3, 2)


def insert(database_url: str, component: str, status: str, changed_at: datetime) -> None:
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO health_events (component, status, detail, changed_at)"
            " VALUES (%s, %s, '', %s)",
            (component, status, changed_at),
        )


def test_pruning_keeps_each_components_latest_change(database_url: str) -> None:
    old, recent, quiet = names(3)
    now = datetime.now(UTC)
    for days, status in ((200, "ok"), (120, "unreachable"), (100, "ok"), (10, "unreachable")):
        insert(database_url, old, status, now - timedelta(days=days))
    for days, status in ((95, "ok"), (2, "unreachable"), (1, "ok")):
        insert(database_url, recent, status, now - timedelta(days=days))
    # A component that has not changed for a year: its only change stays ("ok since…").
    insert(database_url, quiet, "ok", now - timedelta(days=365))

    # The task's own code, against the real database, as the worker runs it.
    url = database_url.replace("postgresql://", "postgresql+psycopg://")
    tasks.prune(url, keep_days=90)

    kept = rows(database_url, [old, recent, quiet])
    # The change in force 90 days ago stays: the status at the cutoff is still known.
    assert [s for s, _ in kept[old]] == ["ok", "unreachable"]
    assert [s for s, _ in kept[recent]] == ["ok", "unreachable", "ok"]
    assert [s for s, _ in kept[quiet]] == ["ok"]
    tasks.prune(url, keep_days=90)  # a second run (another worker's beat) changes nothing
    assert rows(database_url, [old, recent, quiet]) == kept


def test_the_prune_runs_hourly_on_every_workers_beat() -> None:
    settings = Settings(_env_file=None, secret_key=TEST_SECRET_KEY)
    app = worker_app.create_celery(settings, "postgresql+psycopg://hearth@127.0.0.1/hearth")
    prune = app.conf.beat_schedule["health-history-prune"]
    assert prune["task"] == worker_app.PRUNE_HEALTH_HISTORY_TASK == tasks.PRUNE_TASK
    assert prune["schedule"].remaining_estimate(datetime.now(UTC)) <= timedelta(hours=1)
    assert "hearth.health.tasks" in worker_app.TASK_MODULES


@pytest.mark.worker
def test_a_real_worker_runs_the_prune_with_its_settings(
    database_url: str, queue_redis: str, tmp_path: Path
) -> None:
    [name] = names(1)
    now = datetime.now(UTC)
    for days, status in ((60, "ok"), (40, "unreachable"), (20, "ok")):
        insert(database_url, name, status, now - timedelta(days=days))
    env = clean_environment(
        DATABASE_URL=database_url, REDIS_URL=queue_redis, HEALTH_HISTORY_DAYS="30"
    )
    settings = Settings(_env_file=None, secret_key=TEST_SECRET_KEY, redis_url=queue_redis)
    sender = worker_app.create_celery(settings, database_url)
    try:
        with hearth_worker(env, tmp_path):
            result = sender.send_task(worker_app.PRUNE_HEALTH_HISTORY_TASK)
            outcome = result.get(timeout=60)
    finally:
        sender.close()
    assert outcome["deleted"] >= 1
    # 30 days kept: the change of 60 days ago goes; the one in force 30 days ago stays.
    assert [s for s, _ in rows(database_url, [name])[name]] == ["unreachable", "ok"]
