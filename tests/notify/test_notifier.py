"""The notifier on the suite's PostgreSQL: a notice once per change, only past the grace
period, from one replica of several, and nothing for old history.

Each test checks a real component (a TCP listener it opens and closes) with a real health
service, records each change in ``health_events`` as the health monitor does, and sends to
a real HTTP receiver through Apprise.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from redis.asyncio import Redis

from hearth.db.unit import Sessions
from hearth.health.service import HealthService
from hearth.models import HealthEvent
from hearth.notify.sender import AppriseSender
from hearth.notify.service import DATABASE_DOWN_KEY, Notifier
from tests.notify.conftest import Recorder, watched
from tests.notify.receivers import Component, JsonReceiver, eventually
from tests.support.services import REDIS_URL


def notifier(
    receiver: JsonReceiver,
    sessions: Sessions,
    health: HealthService,
    *,
    grace: float,
    redis: Redis | None = None,
) -> Notifier:
    sender = AppriseSender.build([receiver.url()], attempts=2, backoff_seconds=0.05)
    return Notifier(sender, sessions, health, grace=grace, redis=redis)


async def check(health: HealthService, recorder: Recorder) -> None:
    """One round of the health monitor: every component checked, each change recorded."""
    await health.run()
    await recorder.flush()


async def poll(*notifiers: Notifier) -> None:
    """One poll of each notifier, and every notice it sends delivered."""
    for each in notifiers:
        await each.poll()
    for each in notifiers:
        await each.drain()


async def notified_rows(sessions: Sessions) -> list[tuple[str, bool]]:
    async with sessions() as session:
        rows = await session.execute(
            sa.select(HealthEvent.status, HealthEvent.notified_at).order_by(HealthEvent.id)
        )
        return [(status, notified is not None) for status, notified in rows]


async def test_a_component_down_past_the_grace_period_is_notified_once(
    sessions: Sessions, llm: Component, receiver: JsonReceiver
) -> None:
    recorder = Recorder(sessions)
    health = watched(llm, recorder)
    watcher = notifier(receiver, sessions, health, grace=0.5)
    await check(health, recorder)
    llm.down()
    await check(health, recorder)
    await poll(watcher)
    assert receiver.posts == []  # within the grace period: nothing yet

    async def notified() -> bool:
        await check(health, recorder)  # the monitor keeps checking; no change, no row
        await poll(watcher)
        return bool(receiver.posts)

    await eventually(notified)
    for _ in range(3):
        await check(health, recorder)
        await poll(watcher)
    [post] = receiver.posts
    assert post["title"] == "Hearth: llm is down"
    assert post["type"] == "failure"
    assert "llm has been unreachable since" in post["message"]
    assert f"127.0.0.1:{llm.port}" in post["message"]  # the check's (secret-free) detail
    assert await notified_rows(sessions) == [("ok", False), ("unreachable", True)]
    await watcher.close()


async def test_a_blip_shorter_than_the_grace_period_sends_nothing(
    sessions: Sessions, llm: Component, receiver: JsonReceiver
) -> None:
    recorder = Recorder(sessions)
    health = watched(llm, recorder)
    watcher = notifier(receiver, sessions, health, grace=60)
    await check(health, recorder)
    llm.down()
    await check(health, recorder)
    await poll(watcher)
    llm.up()
    await check(health, recorder)
    await poll(watcher)
    await poll(watcher)
    assert receiver.posts == []  # neither "down" nor "recovered"
    assert await notified_rows(sessions) == [("ok", False), ("unreachable", False), ("ok", False)]
    await watcher.close()


async def test_recovery_after_a_notified_outage_is_notified_once(
    sessions: Sessions, llm: Component, receiver: JsonReceiver
) -> None:
    recorder = Recorder(sessions)
    health = watched(llm, recorder)
    watcher = notifier(receiver, sessions, health, grace=0)
    await check(health, recorder)
    llm.down()
    await check(health, recorder)
    await poll(watcher)
    llm.up()
    await check(health, recorder)
    await poll(watcher)
    await poll(watcher)
    assert receiver.titles() == ["Hearth: llm is down", "Hearth: llm recovered"]
    recovered = receiver.posts[1]
    assert recovered["type"] == "success"
    assert "llm is ok again since" in recovered["message"]
    assert "after being down from" in recovered["message"]
    # A second outage is a new transition: notified again, once.
    llm.down()
    await check(health, recorder)
    await poll(watcher)
    await poll(watcher)
    assert receiver.titles()[2:] == ["Hearth: llm is down"]
    await watcher.close()


async def test_two_replicas_on_one_database_send_each_notice_once(
    sessions: Sessions, llm: Component, receiver: JsonReceiver
) -> None:
    """Each replica checks the component itself; the monitor records each change once (here
    the first replica's recorder); both notifiers poll, racing for the same rows."""
    recorder = Recorder(sessions)
    first, second = watched(llm, recorder), watched(llm, None)
    replicas = [notifier(receiver, sessions, health, grace=0) for health in (first, second)]
    await check(first, recorder)
    await second.run()
    llm.down()
    await check(first, recorder)
    await second.run()
    for _ in range(3):
        await asyncio.gather(*(replica.poll() for replica in replicas))
    llm.up()
    await check(first, recorder)
    await second.run()
    for _ in range(3):
        await asyncio.gather(*(replica.poll() for replica in replicas))
    for replica in replicas:
        await replica.drain()
    assert receiver.titles() == ["Hearth: llm is down", "Hearth: llm recovered"]
    for replica in replicas:
        await replica.close()


async def test_old_history_and_rows_this_process_has_not_seen_are_not_announced(
    sessions: Sessions, llm: Component, receiver: JsonReceiver
) -> None:
    """Turning notifications on replays nothing: an outage recorded two days ago is past the
    horizon, and a row left from before a restart that the checks here contradict is stale."""
    long_ago = datetime.now(UTC) - timedelta(days=2)
    async with sessions() as session, session.begin():
        session.add_all(
            [
                HealthEvent(component="mail", status="unreachable", changed_at=long_ago),
                HealthEvent(
                    component="llm",
                    status="unreachable",
                    changed_at=datetime.now(UTC) - timedelta(minutes=10),
                ),
            ]
        )
    health = HealthService(version="test", budget=2.0, cache_seconds=0)
    health.register("llm", llm.check, critical=False, timeout=1.0)  # up: contradicts the row
    health.register("mail", Component().check, critical=False, timeout=1.0)  # down, as recorded
    await health.run()
    watcher = notifier(receiver, sessions, health, grace=0)
    await poll(watcher)
    await poll(watcher)
    assert receiver.posts == []
    await watcher.close()


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    await client.delete(DATABASE_DOWN_KEY)
    yield client
    await client.delete(DATABASE_DOWN_KEY)
    await client.aclose()


async def test_the_database_going_down_is_notified_once_across_replicas_through_redis(
    sessions: Sessions, receiver: JsonReceiver, redis: Redis
) -> None:
    """The database cannot hold the record of its own outage: each replica's own checks
    tell, and Redis decides which replica speaks."""
    database = Component()
    database.up()
    replicas_health = [watched(database, None, name="db") for _ in range(2)]
    replicas = [
        notifier(receiver, sessions, health, grace=0, redis=redis) for health in replicas_health
    ]
    for health in replicas_health:
        await health.run()
    await poll(*replicas)
    database.down()
    for health in replicas_health:
        await health.run()
    await poll(*replicas)
    await poll(*replicas)
    assert receiver.titles() == ["Hearth: db is down"]
    database.up()
    for health in replicas_health:
        await health.run()
    await poll(*replicas)
    await poll(*replicas)
    assert receiver.titles() == ["Hearth: db is down", "Hearth: db recovered"]
    assert await redis.exists(DATABASE_DOWN_KEY) == 0
    for replica in replicas:
        await replica.close()
    database.down()


async def test_a_database_blip_shorter_than_the_grace_period_sends_nothing(
    sessions: Sessions, receiver: JsonReceiver
) -> None:
    database = Component()
    database.up()
    health = watched(database, None, name="db")
    watcher = notifier(receiver, sessions, health, grace=60)
    await health.run()
    database.down()
    await health.run()
    await poll(watcher)
    database.up()
    await health.run()
    await poll(watcher)
    assert receiver.posts == []
    await watcher.close()
    database.down()
