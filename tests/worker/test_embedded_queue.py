"""The embedded queue (hearth.worker.pg_transport): tasks in PostgreSQL, real `hearth worker`
processes woken by LISTEN/NOTIFY. A task sent is run; one queued while no process runs waits
in the database until a worker starts; one taken by a worker killed mid-task is delivered
again; a send to a PostgreSQL that is down is refused and queues nothing."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import redis
import sqlalchemy
from celery import states
from celery.app.task import Context

from hearth.config.settings import Settings
from hearth.worker.app import create_celery
from hearth.worker.orphans import OrphanSweeper
from hearth.worker.queue import PendingTask, QueueUnavailable, TaskQueue
from tests.support.database import create_migrated_database, drop_database
from tests.support.postgres import OwnedPostgres
from tests.support.process import clean_environment, run_hearth
from tests.support.services import REDIS_URL, free_port
from tests.support.worker import hearth_worker

pytestmark = pytest.mark.worker
FIXTURE_NEEDS = {"queue_database": ("postgres", "redis")}

DEADLINE = 60.0  # generous: a shared, noisy machine


@pytest.fixture
async def queue_database() -> AsyncIterator[str]:
    """A migrated database of the test's own: its queue holds only this test's tasks."""
    url = await create_migrated_database()
    yield url
    drop_database(url)


@pytest.fixture
def effects() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


def sender(make_settings: Callable[..., Settings], url: str) -> TaskQueue:
    """The web app's side of the queue, as ``hearth serve`` builds it."""
    settings = make_settings(database_url=url, redis_url=None)
    return TaskQueue(lambda: create_celery(settings, url, waits=False))


def worker_env(url: str, **extra: str) -> dict[str, str]:
    return clean_environment(DATABASE_URL=url, TEST_EFFECT_REDIS_URL=REDIS_URL, **extra)


def messages(url: str) -> list[tuple[str, bool]]:
    """(task id, taken) of every message in the queue."""
    with psycopg.connect(url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT task_id, taken_at IS NOT NULL FROM task_messages ORDER BY id"
        ).fetchall()
    return [(str(task_id), bool(taken)) for task_id, taken in rows]


async def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {DEADLINE:g} s")
        await asyncio.sleep(0.1)


def effect(key: str, seconds: float = 0.0) -> PendingTask:
    return PendingTask("tests.effect", (key, seconds))


async def test_a_task_sent_is_run_and_its_message_is_gone(
    make_settings: Callable[..., Settings],
    queue_database: str,
    effects: redis.Redis,
    tmp_path: Path,
) -> None:
    key = f"embedded-{uuid.uuid4().hex}"
    queue = sender(make_settings, queue_database)
    with hearth_worker(worker_env(queue_database), tmp_path):
        await queue.send(task := effect(key))
        await wait_for(lambda: effects.lrange(f"{key}:effects", 0, -1) != [], "the run")
        # Acknowledged: deleted, not merely hidden.
        await wait_for(lambda: task.id not in dict(messages(queue_database)), "the ack")
    queue.close()
    assert effects.lrange(f"{key}:effects", 0, -1) == [task.id.encode()]


async def test_a_worker_wakes_on_the_notification(
    make_settings: Callable[..., Settings],
    queue_database: str,
    effects: redis.Redis,
    tmp_path: Path,
) -> None:
    """The fallback look is an hour away: only the notification can wake the worker."""
    key = f"embedded-{uuid.uuid4().hex}"
    queue = sender(make_settings, queue_database)
    env = worker_env(queue_database, EMBEDDED_QUEUE_POLL_SECONDS="3600")
    with hearth_worker(env, tmp_path):
        await asyncio.sleep(1.0)  # the worker's first look at the table is behind it
        for number in range(3):
            await queue.send(effect(name := f"{key}-{number}"))
            done = f"{name}:effects"
            await wait_for(lambda: effects.exists(done) == 1, "a run")  # noqa: B023 (awaited here)
    queue.close()


async def test_a_task_queued_while_nothing_runs_is_run_by_the_next_worker(
    make_settings: Callable[..., Settings],
    queue_database: str,
    effects: redis.Redis,
    tmp_path: Path,
) -> None:
    """Sent with no worker, the sender then gone (a server restarted): the task waits in the
    database, and the worker started after that runs it."""
    key = f"embedded-{uuid.uuid4().hex}"
    queue = sender(make_settings, queue_database)
    await queue.send(task := effect(key))
    queue.close()
    assert messages(queue_database) == [(task.id, False)]
    with hearth_worker(worker_env(queue_database), tmp_path):
        await wait_for(lambda: effects.exists(f"{key}:effects") == 1, "the run")
        await wait_for(lambda: task.id not in dict(messages(queue_database)), "the ack")
    assert effects.lrange(f"{key}:effects", 0, -1) == [task.id.encode()]


async def test_a_task_taken_by_a_killed_worker_is_delivered_again(
    make_settings: Callable[..., Settings],
    queue_database: str,
    effects: redis.Redis,
    tmp_path: Path,
) -> None:
    """SIGKILL mid-task: the message stays taken, never acknowledged; once the visibility
    timeout has passed a new worker takes it again and runs it to its end, once more."""
    key = f"embedded-{uuid.uuid4().hex}"
    env = worker_env(
        queue_database, TASK_VISIBILITY_TIMEOUT_SECONDS="2", EMBEDDED_QUEUE_POLL_SECONDS="1"
    )
    queue = sender(make_settings, queue_database)
    with hearth_worker(env, tmp_path) as doomed:
        await queue.send(task := effect(key, 30.0))
        await wait_for(lambda: effects.get(f"{key}:runs") == b"1", "the first run")
        doomed.kill()
    assert messages(queue_database) == [(task.id, True)]
    with hearth_worker(env, tmp_path) as survivor:
        await wait_for(lambda: effects.get(f"{key}:runs") == b"2", "the second delivery")
        survivor.kill()  # not 30 s of warm shutdown for the rest of the run
    queue.close()
    assert effects.get(f"{key}:runs") == b"2"


async def test_a_send_while_postgresql_is_down_is_refused_and_queues_nothing(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """503 with the reason while it is down; after its restart the first send succeeds (the
    pool's connections are checked before use), and the refused one is not in the queue."""
    postgres = OwnedPostgres(tmp_path / "postgres", free_port()).init()
    postgres.start()
    try:
        migrated = run_hearth(
            "migrate", env=clean_environment(DATABASE_URL=postgres.url), cwd=tmp_path
        )
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        queue = sender(make_settings, postgres.url)
        await queue.send(before := effect("down-before"))  # the pool holds a connection
        postgres.stop()
        with pytest.raises(QueueUnavailable) as refused:
            await queue.send(effect("down-during"))
        assert refused.value.status_code == 503
        assert refused.value.reason
        assert "nothing was queued" in str(refused.value)
        postgres.start()
        await queue.send(after := effect("down-after"))
        queue.close()
        assert [task_id for task_id, _ in messages(postgres.url)] == [before.id, after.id]
    finally:
        if postgres.running():
            postgres.stop()


DEAD = "hearth-dead00@elsewhere"
LIVE = "hearth-live00@elsewhere"


async def test_the_sweep_hands_back_only_what_a_dead_worker_holds(
    make_settings: Callable[..., Settings], queue_database: str
) -> None:
    """Three tasks the result table says a dead worker was running: its own taken message
    waits again; one the visibility timeout made wait already counts as handed back (not
    lost); one a live worker took since is left to that worker. All three are sent here,
    their STARTED recorded as the dead worker's pool child records it."""
    settings = make_settings(database_url=queue_database, redis_url=None)
    app = create_celery(settings, queue_database)
    queue = sender(make_settings, queue_database)
    held, waiting, retaken = effect("held"), effect("waiting"), effect("retaken")
    for task in (held, waiting, retaken):
        await queue.send(task)
        request = Context(task=task.name, hostname=DEAD, args=[], kwargs={}, retries=0)
        app.backend.store_result(task.id, {"hostname": DEAD}, states.STARTED, request=request)
    queue.close()
    with psycopg.connect(queue_database, autocommit=True) as connection:
        taken = {held.id: DEAD, retaken.id: LIVE}
        for task_id, worker in taken.items():
            connection.execute(
                "UPDATE task_messages SET taken_at = now(), taken_by = %s WHERE task_id = %s",
                (worker, task_id),
            )
    engine = sqlalchemy.create_engine(f"postgresql+psycopg://{queue_database.partition('://')[2]}")
    try:
        handed_back = OrphanSweeper(app, engine, window=30.0).sweep()
    finally:
        engine.dispose()
    assert sorted(orphan.task_id for orphan in handed_back) == sorted([held.id, waiting.id])
    assert dict(messages(queue_database)) == {held.id: False, waiting.id: False, retaken.id: True}
    state = {task.id: app.AsyncResult(task.id).state for task in (held, waiting, retaken)}
    assert state == {held.id: states.RETRY, waiting.id: states.RETRY, retaken.id: states.STARTED}
