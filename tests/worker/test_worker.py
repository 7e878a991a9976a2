"""Celery on real Redis with real `hearth worker` processes: round trips, a worker killed
mid-task, Redis going away and coming back, tasks sent only after the commit."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from hearth.app.factory import create_app
from hearth.config.settings import Settings
from hearth.db.dependencies import UnitOfWorkDep
from hearth.worker.dependencies import QueueDep
from hearth.worker.queue import PendingTask
from tests.support.app import ClientFor, served
from tests.support.process import clean_environment
from tests.support.services import REDIS_URL, free_port
from tests.support.tokens import bearer
from tests.support.worker import OwnedRedis, hearth_worker

pytestmark = pytest.mark.worker


def worker_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    return clean_environment(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        TEST_EFFECT_REDIS_URL=REDIS_URL,
        WORKER_HEARTBEAT_SECONDS="1",
        **extra,
    )


async def wait_for(
    client: httpx.AsyncClient, task_id: str, state: str, within: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await client.get(f"/tasks/{task_id}")
        body = response.json()
        if response.status_code == 200 and body["state"] == state:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"task {task_id} never reached {state}: {body}")


async def test_ping_round_trip_and_worker_health(
    client_for: ClientFor, api_token: str, database_url: str, queue_redis: str, tmp_path: Path
) -> None:
    # The worker check's detail names the worker: shown to anyone with HEALTH_DETAILS=always.
    async with client_for(
        redis_url=queue_redis, worker_heartbeat_seconds=1, health_details="always"
    ) as client:
        client.headers.update(bearer(api_token))
        before = (await client.get("/health")).json()["checks"]["worker"]
        with hearth_worker(worker_env(database_url, queue_redis), tmp_path) as worker:
            accepted = await client.post("/tasks/ping")
            assert accepted.status_code == 202
            done = await wait_for(client, accepted.json()["id"], "SUCCESS")
            during = (await client.get("/health")).json()["checks"]["worker"]
            assert worker.stop() == 0
        after = (await client.get("/health")).json()["checks"]["worker"]
        bad_id = await client.get("/tasks/not-a-uuid")
    assert before["status"] == "unreachable"
    assert "hearth worker" in before["detail"]
    assert done["result"]["pong"] is True
    assert during["status"] == "ok"
    assert during["detail"].startswith("1 worker: hearth-")
    assert after["status"] == "unreachable"  # a clean stop removes the heartbeat at once
    assert bad_id.status_code == 422


async def test_a_busy_worker_is_not_reported_dead(
    client_for: ClientFor, api_token: str, database_url: str, queue_redis: str, tmp_path: Path
) -> None:
    async with client_for(redis_url=queue_redis, worker_heartbeat_seconds=1) as client:
        client.headers.update(bearer(api_token))
        with hearth_worker(worker_env(database_url, queue_redis), tmp_path, concurrency=1):
            task = (await client.post("/tasks/ping", params={"delay_seconds": 6})).json()["id"]
            await wait_for(client, task, "STARTED")
            await asyncio.sleep(4)  # more than the 3 s heartbeat window, while the task runs
            health = (await client.get("/health")).json()["checks"]["worker"]
            await wait_for(client, task, "SUCCESS")
    assert health["status"] == "ok"


async def test_a_worker_killed_mid_task_hands_it_over_and_the_effect_happens_once(
    make_settings: Callable[..., Settings],
    api_token: str,
    database_url: str,
    queue_redis: str,
    tmp_path: Path,
) -> None:
    key = f"effect-{uuid.uuid4().hex}"
    effects = redis.Redis.from_url(REDIS_URL)
    # The task takes 2 s; a taken task goes to another worker after 6 s without an ack.
    env = worker_env(database_url, queue_redis, TASK_VISIBILITY_TIMEOUT_SECONDS="6")
    app = create_app(make_settings(redis_url=queue_redis))
    async with served(app) as client:
        client.headers.update(bearer(api_token))
        task = PendingTask("tests.effect", (key, 2.0))
        await app.state.queue.send(task)
        with hearth_worker(env, tmp_path) as first:
            await wait_for(client, task.id, "STARTED")
            first.kill()  # mid-task: the effect has not happened, the task is not acked
        assert effects.get(f"{key}:runs") == b"1"
        assert effects.llen(f"{key}:effects") == 0
        with hearth_worker(env, tmp_path):
            await wait_for(client, task.id, "SUCCESS", within=90)
    assert effects.get(f"{key}:runs") == b"2"  # delivered again
    assert effects.lrange(f"{key}:effects", 0, -1) == [task.id.encode()]  # effect once
    effects.delete(f"{key}:runs", f"{key}:done", f"{key}:effects")
    effects.close()


async def test_redis_down_means_503_and_the_worker_comes_back_with_it(
    client_for: ClientFor, api_token: str, database_url: str, tmp_path: Path
) -> None:
    owned = OwnedRedis(free_port(), tmp_path / "redis")
    owned.start()
    try:
        async with client_for(redis_url=owned.url) as client:
            client.headers.update(bearer(api_token))
            with hearth_worker(worker_env(database_url, owned.url), tmp_path) as worker:
                first = (await client.post("/tasks/ping")).json()["id"]
                await wait_for(client, first, "SUCCESS")

                owned.stop()
                refused = await client.post("/tasks/ping")
                health = (await client.get("/health")).json()

                owned.start()
                worker.wait_for_log("Connected to redis", timeout=60)
                again = (await client.post("/tasks/ping")).json()["id"]
                await wait_for(client, again, "SUCCESS", within=60)
    finally:
        owned.stop()
    assert refused.status_code == 503
    assert refused.json()["error"] == "unavailable"
    assert "task queue is unavailable" in refused.json()["detail"]
    assert health["checks"]["redis"]["status"] == "unreachable"


async def test_tasks_are_sent_only_after_the_commit(
    make_settings: Callable[..., Settings],
    api_token: str,
    database_url: str,
    queue_redis: str,
    tmp_path: Path,
) -> None:
    """A task sees what its request wrote; a request that fails sends nothing."""
    from hearth.config import repository

    app = create_app(make_settings(redis_url=queue_redis))
    key = f"commit_{uuid.uuid4().hex[:8]}"

    @app.post("/test/write-then-read")
    async def write_then_read(unit: UnitOfWorkDep, queue: QueueDep) -> dict[str, str]:
        await repository.upsert(unit.session, key, "committed")
        task = PendingTask("tests.read_setting", (key,))
        queue.send_after_commit(unit, task)
        return {"id": task.id}

    @app.post("/test/write-then-fail")
    async def write_then_fail(unit: UnitOfWorkDep, queue: QueueDep) -> None:
        queue.send_after_commit(unit, PendingTask("tests.read_setting", (key,)))
        raise RuntimeError("the handler failed after asking for a task")

    async with served(app) as client:
        client.headers.update(bearer(api_token))
        failed = await client.post("/test/write-then-fail")
        assert redis.Redis.from_url(queue_redis).llen("celery") == 0  # nothing was sent
        with hearth_worker(worker_env(database_url, queue_redis), tmp_path):
            task = (await client.post("/test/write-then-read")).json()["id"]
            done = await wait_for(client, task, "SUCCESS")
        async with app.state.sessions.begin() as session:
            from sqlalchemy import delete

            from hearth.models import Setting

            await session.execute(delete(Setting).where(Setting.key == key))
    assert failed.status_code == 500
    assert done["result"] == "committed"


def test_the_worker_logs_json_and_never_the_broker_password(
    database_url: str, tmp_path: Path
) -> None:
    password = "broker-password-" + uuid.uuid4().hex[:8]
    owned = OwnedRedis(free_port(), tmp_path / "redis", password=password)
    owned.start()
    try:
        with hearth_worker(worker_env(database_url, owned.url), tmp_path) as worker:
            assert worker.stop() == 0
    finally:
        owned.stop()
    text = worker.output.read_text()
    # Every line is JSON: no banner, and the notice Celery prints on a signal is an event.
    other = [line for line in text.splitlines() if line.strip() and not line.startswith("{")]
    assert other == []
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    [stopping] = [line for line in lines if line["event"] == "worker_shutting_down"]
    assert (stopping["signal"], stopping["how"]) == ("SIGTERM", "warm")
    [starting] = [line for line in lines if line["event"] == "worker_starting"]
    assert starting["broker"] == f"redis://:***@127.0.0.1:{owned.port}/0"
    assert "hearth.ping" in starting["tasks"]
    assert any(line.get("logger", "").startswith("celery") for line in lines)
    assert password not in text
