"""What the task-queue benchmarks share: Hearth's task API over one keep-alive connection,
the baseline Celery client built by Hearth's own ``create_celery``, and the results as the
worker stored them in Redis."""

from __future__ import annotations

import http.client
import json
import secrets
import time
from collections.abc import Callable, Sequence
from datetime import datetime

import redis
from celery import Celery
from celery.exceptions import TimeoutError as CeleryTimeout
from celery.result import AsyncResult

from bench import common
from bench.common import LOOPBACK, BenchError
from hearth.config.settings import Settings
from hearth.worker.app import create_celery

REDIS_URL = common.redis_url(14)
REDIS_SOCKET_TIMEOUT_S = 10.0
RESULT_KEY_PREFIX = "celery-task-meta-"  # Celery's Redis result backend
TASK_NAME = "hearth.ping"
REDIS_WATCH_S = 0.05  # interval of the completion check on Redis
START_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 10.0


class ApiClient:
    """One keep-alive HTTP connection to ``hearth serve``, presenting an API token."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.headers = {"Authorization": f"Bearer {token}"}
        self.connection = http.client.HTTPConnection(LOOPBACK, port, timeout=REQUEST_TIMEOUT_S)

    def close(self) -> None:
        self.connection.close()

    def request(self, method: str, path: str) -> tuple[int, bytes]:
        """Status and body. A keep-alive connection the server closed while it was idle is
        opened again, once: the request had not reached the server."""
        try:
            return self._exchange(method, path)
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            self.connection.close()
            return self._exchange(method, path)

    def _exchange(self, method: str, path: str) -> tuple[int, bytes]:
        self.connection.request(method, path, headers=self.headers)
        response = self.connection.getresponse()
        return response.status, response.read()

    def send_ping(self) -> str:
        status, body = self.request("POST", "/tasks/ping")
        if status != 202:
            raise BenchError(f"POST /tasks/ping answered {status}: {body[:300]!r}")
        task_id: str = json.loads(body)["id"]
        return task_id

    def state(self, task_id: str) -> str:
        status, body = self.request("GET", f"/tasks/{task_id}")
        if status != 200:
            raise BenchError(f"GET /tasks/{task_id} answered {status}: {body[:300]!r}")
        state: str = json.loads(body)["state"]
        if state == "FAILURE":
            raise BenchError(f"task {task_id} failed: {body[:300]!r}")
        return state


def baseline_celery(database_url: str) -> Celery:
    """A Celery client configured by Hearth's own ``create_celery``, for the same Redis."""
    # Everything create_celery reads is given here, so nothing comes from this environment.
    settings = Settings(
        _env_file=None,
        secret_key=secrets.token_urlsafe(48),
        database_url=database_url,
        redis_url=REDIS_URL,
        worker_imports="",
        task_visibility_timeout_seconds=Settings.model_fields[
            "task_visibility_timeout_seconds"
        ].default,
    )
    assert settings.database_url is not None
    return create_celery(settings, settings.database_url)


def celery_get(app: Celery, result: AsyncResult, timeout: float) -> None:
    """``result.get(timeout=timeout)``. When that is interrupted, Celery is told to forget
    the result at once: it would otherwise keep it until exit, then try to unsubscribe from
    Redis while Python shuts down (and print a traceback)."""
    try:
        result.get(timeout=timeout)
    except BaseException:
        app.backend.remove_pending_result(result)
        raise


def wait_for_task(app: Celery, name: str, what: str, log: Callable[[], str]) -> None:
    """One task round trip, to know a worker is consuming (its first can take a while)."""
    try:
        celery_get(app, app.send_task(name), START_TIMEOUT_S)
    except CeleryTimeout:
        raise BenchError(
            f"{what} ran no task within {START_TIMEOUT_S:g} s; its output ends with:\n{log()}"
        ) from None


def done_times(client: redis.Redis, task_ids: Sequence[str], timeout: float) -> list[float]:
    """Each task's ``date_done`` (Unix time), waiting up to ``timeout`` for all to be stored."""
    deadline = time.monotonic() + timeout
    done: dict[str, float] = {}
    while True:
        waiting = [task_id for task_id in task_ids if task_id not in done]
        for start in range(0, len(waiting), 500):
            batch = waiting[start : start + 500]
            for task_id, raw in zip(
                batch, client.mget([RESULT_KEY_PREFIX + t for t in batch]), strict=True
            ):
                if raw is None:
                    continue
                meta = json.loads(raw)
                if meta["status"] == "FAILURE":
                    raise BenchError(f"task {task_id} failed: {meta.get('result')!r}")
                if meta["status"] == "SUCCESS":
                    done[task_id] = datetime.fromisoformat(meta["date_done"]).timestamp()
        if len(done) == len(task_ids):
            return [done[task_id] for task_id in task_ids]
        if time.monotonic() > deadline:
            raise BenchError(
                f"{len(task_ids) - len(done)} of {len(task_ids)} tasks were not done "
                f"within {timeout:g} s"
            )
        time.sleep(REDIS_WATCH_S)
