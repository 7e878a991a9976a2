"""GET /tasks and Retry with real `hearth worker` processes, on Redis and on the embedded
broker (kombu's SQLAlchemy transport on PostgreSQL): queue depths, a failing task shown with
its reason and retried as a new task, a long task shown under its worker while it runs, and
who may read and retry."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis

from hearth.app.factory import create_app
from hearth.config.settings import Settings
from hearth.worker.queue import PendingTask, TaskQueue
from tests.support.app import served
from tests.support.database import create_migrated_database, drop_database
from tests.support.process import clean_environment
from tests.support.services import REDIS_URL, free_port
from tests.support.tokens import bearer, insert_token
from tests.support.worker import OwnedRedis, hearth_worker

pytestmark = pytest.mark.worker
FIXTURE_NEEDS = {"own_database": ("postgres", "redis")}

HEARTBEAT_SECONDS = 1.0
FAILURE = "RuntimeError: this task always fails"


@pytest.fixture
async def own_database() -> AsyncIterator[str]:
    """A migrated database of the test's own (and, without Redis, its broker): the runs and
    workers it shows are this test's only."""
    url = await create_migrated_database()
    yield url
    drop_database(url)


async def overview_when(
    client: httpx.AsyncClient,
    what: str,
    condition: Callable[[dict[str, Any]], bool],
    within: float = 90,
) -> dict[str, Any]:
    """Poll GET /tasks (JSON) until ``condition`` holds of its body."""
    deadline = time.monotonic() + within
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await client.get("/tasks")
        assert response.status_code == 200, response.text
        body = response.json()
        if condition(body):
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"GET /tasks never showed {what} within {within:g} s: {body}")


def run_of(body: dict[str, Any], task_id: str, kind: str = "recent") -> dict[str, Any] | None:
    return next((run for run in body[kind] if run["id"] == task_id), None)


def running_ids(body: dict[str, Any]) -> set[str]:
    return {task["id"] for worker in body["workers"] for task in worker["running"]}


async def walk_through(
    client: httpx.AsyncClient, queue: TaskQueue, env: dict[str, str], tmp_path: Path
) -> None:
    """The same scenario on either broker."""
    # Queued with no worker yet: the queue's depth says so.
    waiting = [PendingTask("hearth.ping") for _ in range(2)]
    for task in waiting:
        await queue.send(task)
    before = await overview_when(client, "two tasks waiting", lambda b: b["queues"]["celery"] == 2)
    assert before["queues"] == {"celery": 2, "embedding": 0}
    assert before["workers"] == []

    key = f"tasks-page-{uuid.uuid4().hex}"
    effects = redis.Redis.from_url(REDIS_URL)
    with hearth_worker(env, tmp_path, concurrency=2):
        # Both pings run and are recorded; the queue is empty again.
        done = await overview_when(
            client,
            "the pings done",
            lambda b: all(run_of(b, t.id) for t in waiting) and b["queues"]["celery"] == 0,
        )
        ping = run_of(done, waiting[0].id)
        assert ping is not None
        assert ping["name"] == "hearth.ping"
        assert ping["state"] == "SUCCESS"
        assert ping["error"] is None
        assert ping["retryable"] is False
        assert 0 <= ping["runtime_seconds"] < 60
        [worker] = done["workers"]
        assert worker["name"].startswith("hearth-")
        assert worker["alive"] is True
        assert worker["concurrency"] == 2
        assert worker["host"] == worker["name"].partition("@")[2]
        assert worker["seconds_since_heartbeat"] < 30

        # A long task shows under its worker while it runs.
        long_task = PendingTask("tests.hold", (key, 60.0))
        await queue.send(long_task)
        held = await overview_when(
            client, "the long task running", lambda b: long_task.id in running_ids(b)
        )
        [shown] = [t for w in held["workers"] for t in w["running"] if t["id"] == long_task.id]
        assert shown["name"] == "tests.hold"
        assert shown["started_at"] is not None
        assert run_of(held, long_task.id) is None  # recorded when it ends, not before
        effects.set(f"{key}:release", 1)

        # A failing task: shown with its reason, among the failures, and retryable.
        failing = PendingTask("tests.fail")
        await queue.send(failing)
        failed = await overview_when(
            client, "the failure", lambda b: run_of(b, failing.id, "failures") is not None
        )
        failure = run_of(failed, failing.id, "failures")
        assert failure is not None
        assert failure["state"] == "FAILURE"
        assert failure["error"] == FAILURE
        assert failure["retryable"] is True
        assert failure["retried_as"] is None

        # What did not fail, or is unknown, is refused; the failure is sent again as new.
        not_failed = await client.post(f"/tasks/{waiting[0].id}/retry")
        unknown = await client.post(f"/tasks/{uuid.uuid4()}/retry")
        retried = await client.post(f"/tasks/{failing.id}/retry")
        again = await client.post(f"/tasks/{failing.id}/retry")
        assert not_failed.status_code == 409, not_failed.text
        assert "did not fail" in not_failed.json()["detail"]
        assert unknown.status_code == 404, unknown.text
        assert retried.status_code == 202, retried.text
        new_id = retried.json()["id"]
        assert new_id != failing.id
        assert retried.json()["retry_of"] == failing.id
        assert again.status_code == 409
        assert f"retried already, as {new_id}" in again.json()["detail"]

        # The new task ran (and failed again: the task always does), on its own row.
        after = await overview_when(
            client,
            "the retried task's run",
            lambda b: (
                run_of(b, new_id, "failures") is not None and run_of(b, long_task.id) is not None
            ),
        )
        original = run_of(after, failing.id, "failures")
        assert original is not None
        assert original["retried_as"] == new_id
        assert original["retryable"] is False
        rerun = run_of(after, new_id, "failures")
        assert rerun is not None
        assert rerun["name"] == "tests.fail"
        assert rerun["error"] == FAILURE
        assert rerun["retryable"] is True
        long_run = run_of(after, long_task.id)
        assert long_run is not None
        assert long_run["state"] == "SUCCESS"
        # Gone from under its worker by the next heartbeat.
        await overview_when(client, "nothing running", lambda b: running_ids(b) == set())
    effects.delete(*(f"{key}:{part}" for part in ("runs", "done", "effects", "release")))
    effects.close()


async def test_the_tasks_page_on_redis(
    make_settings: Callable[..., Settings], own_database: str, queue_redis: str, tmp_path: Path
) -> None:
    env = clean_environment(
        DATABASE_URL=own_database,
        REDIS_URL=queue_redis,
        TEST_EFFECT_REDIS_URL=REDIS_URL,
        WORKER_HEARTBEAT_SECONDS=str(HEARTBEAT_SECONDS),
    )
    settings = make_settings(
        database_url=own_database, redis_url=queue_redis, worker_heartbeat_seconds=1
    )
    app = create_app(settings)
    async with served(app) as client:
        client.headers.update(bearer(insert_token(own_database, ("read", "write"))))
        await walk_through(client, app.state.queue, env, tmp_path)
        assert (await client.get("/tasks")).json()["broker"] == "redis"


async def test_the_tasks_page_on_the_embedded_broker(
    make_settings: Callable[..., Settings], own_database: str, tmp_path: Path
) -> None:
    env = clean_environment(
        DATABASE_URL=own_database,
        TEST_EFFECT_REDIS_URL=REDIS_URL,
        WORKER_HEARTBEAT_SECONDS=str(HEARTBEAT_SECONDS),
    )
    settings = make_settings(database_url=own_database, redis_url=None, worker_heartbeat_seconds=1)
    app = create_app(settings)
    async with served(app) as client:
        client.headers.update(bearer(insert_token(own_database, ("read", "write"))))
        await walk_through(client, app.state.queue, env, tmp_path)
        assert (await client.get("/tasks")).json()["broker"] == "postgresql"


async def test_who_may_read_and_retry(
    make_settings: Callable[..., Settings], own_database: str
) -> None:
    """Anonymous: 401 (a browser is sent to log in); `read` reads, `write` retries; a token
    without the scope: 403. A task id that is not a UUID: 422."""
    read = bearer(insert_token(own_database, ("read",)))
    write = bearer(insert_token(own_database, ("write",)))
    metrics = bearer(insert_token(own_database, ("metrics",)))
    task_id = uuid.uuid4()
    async with served(create_app(make_settings(database_url=own_database))) as client:
        anonymous = await client.get("/tasks")
        browser = await client.get("/tasks", headers={"Accept": "text/html"})
        as_reader = await client.get("/tasks", headers=read)
        as_metrics = await client.get("/tasks", headers=metrics)
        retry_anonymous = await client.post(f"/tasks/{task_id}/retry")
        retry_reader = await client.post(f"/tasks/{task_id}/retry", headers=read)
        retry_writer = await client.post(f"/tasks/{task_id}/retry", headers=write)
        not_an_id = await client.post("/tasks/not-a-task/retry", headers=write)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert browser.status_code == 303
    assert browser.headers["location"] == "/login?next=/tasks"
    assert as_reader.status_code == 200
    assert set(as_reader.json()) >= {"broker", "queues", "workers", "recent", "failures"}
    assert as_metrics.status_code == 403
    assert "'read' scope" in as_metrics.json()["detail"]
    assert retry_anonymous.status_code == 401
    assert retry_reader.status_code == 403
    assert retry_writer.status_code == 404
    assert not_an_id.status_code == 422


def insert_failure(database_url: str, arguments: str | None) -> str:
    """A failed run, as a pool child records one; its task id."""
    task_id = str(uuid.uuid4())
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO task_runs (task_id, name, state, arguments, worker, started_at,"
            " finished_at, runtime_seconds, error) VALUES (%s, 'hearth.ping', 'FAILURE', %s,"
            " 'hearth-abc123@host', now(), now(), 0.1, 'RuntimeError: boom')",
            (task_id, arguments),
        )
    return task_id


async def test_a_broker_that_is_down(
    make_settings: Callable[..., Settings], own_database: str, tmp_path: Path
) -> None:
    """The page still answers, saying why the queues are missing; a Retry is refused with a
    503 and the failure stays retryable; once Redis is back, Retry queues the task. A failure
    whose arguments were not kept is refused with a 409."""
    owned = OwnedRedis(free_port(), tmp_path / "redis")
    owned.start()
    failed = insert_failure(own_database, '{"args": [0.5], "kwargs": {}}')
    unkept = insert_failure(own_database, None)
    settings = make_settings(database_url=own_database, redis_url=owned.url)
    try:
        async with served(create_app(settings)) as client:
            client.headers.update(bearer(insert_token(own_database, ("read", "write"))))
            owned.stop()
            page = (await client.get("/tasks")).json()
            refused = await client.post(f"/tasks/{failed}/retry")
            after_refusal = run_of((await client.get("/tasks")).json(), failed, "failures")
            owned.start()
            retried = await client.post(f"/tasks/{failed}/retry")
            waiting = redis.Redis.from_url(owned.url).llen("celery")
            not_kept = await client.post(f"/tasks/{unkept}/retry")
    finally:
        owned.stop()
    assert page["queues"] is None
    assert page["queues_error"].startswith("the broker's Redis could not be read")
    assert run_of(page, failed, "failures") is not None
    assert refused.status_code == 503, refused.text
    assert "nothing was queued" in refused.json()["detail"]
    assert after_refusal is not None
    assert after_refusal["retryable"] is True
    assert retried.status_code == 202, retried.text
    assert waiting == 1
    assert not_kept.status_code == 409
    assert "arguments were not kept" in not_kept.json()["detail"]
