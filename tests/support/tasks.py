"""Tasks only the test suite's workers load (``WORKER_IMPORTS=tests.support.tasks``)."""

from __future__ import annotations

import os
import sys
import time

import redis
from celery import Task, shared_task
from sqlalchemy import create_engine, text

from hearth.kit.urls import normalize_database_url


# Celery has no type hints (pyproject.toml: ignore_missing_imports), so its decorator is untyped.
@shared_task(name="tests.effect", bind=True)  # type: ignore[untyped-decorator]
def effect(self: Task, key: str, seconds: float) -> str:
    """Counts every run, works ``seconds``, then records its effect once per task id (the
    idempotence every Hearth task must have)."""
    client = redis.Redis.from_url(os.environ["TEST_EFFECT_REDIS_URL"])
    client.incr(f"{key}:runs")
    time.sleep(seconds)
    if client.sadd(f"{key}:done", self.request.id):
        client.rpush(f"{key}:effects", self.request.id)
    return "done"


@shared_task(name="tests.read_setting")  # type: ignore[untyped-decorator]  # Celery: untyped
def read_setting(key: str) -> str | None:
    """What the worker sees of a runtime setting: proves a task runs after the commit."""
    engine = create_engine(normalize_database_url(os.environ["DATABASE_URL"]))
    try:
        with engine.connect() as connection:
            value = connection.execute(
                text("SELECT value FROM settings WHERE key = :key"), {"key": key}
            ).scalar()
    finally:
        engine.dispose()
    return value


@shared_task(name="tests.hold", bind=True)  # type: ignore[untyped-decorator]  # Celery: untyped
def hold(self: Task, key: str, max_seconds: float) -> str:
    """Counts every run and works until the test sets ``{key}:release`` (at most
    ``max_seconds``), then records its effect once per task id: a long task whose end the
    test decides."""
    client = redis.Redis.from_url(os.environ["TEST_EFFECT_REDIS_URL"])
    client.incr(f"{key}:runs")
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline and not client.exists(f"{key}:release"):
        time.sleep(0.1)
    if client.sadd(f"{key}:done", self.request.id):
        client.rpush(f"{key}:effects", self.request.id)
    return "done"


@shared_task(name="tests.loaded_modules")  # type: ignore[untyped-decorator]  # Celery: untyped
def loaded_modules(*prefixes: str) -> list[str]:
    """The modules this pool child has imported whose names start with one of ``prefixes``:
    what a worker loads, seen from where its tasks run."""
    return sorted(name for name in sys.modules if name.startswith(prefixes))


@shared_task(name="tests.fail")  # type: ignore[untyped-decorator]  # Celery: untyped
def fail() -> None:
    """Always fails: a task whose outcome is ``failed``."""
    message = "this task always fails"
    raise RuntimeError(message)
