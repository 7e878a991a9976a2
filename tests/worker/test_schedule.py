"""The beat's scheduler (hearth.worker.schedule): a periodic task with a condition is sent
only while the condition holds; the embedding sweep's condition asks the database whether a
document waits, and says yes when it cannot tell."""

from __future__ import annotations

import psycopg
import pytest
import redis
from celery import Celery
from celery.beat import ScheduleEntry

from hearth.config.settings import Settings
from hearth.documents.tasks import documents_wait
from hearth.kit.urls import libpq_url, normalize_database_url
from hearth.worker import app as worker_app
from hearth.worker import schedule
from tests.support.database import create_migrated_database, drop_database
from tests.support.process import TEST_SECRET_KEY
from tests.support.services import free_port

TASK = "tests.schedule.conditional"
NOWHERE = "postgresql+psycopg://hearth@127.0.0.1:{port}/hearth"  # a port nothing listens on


def _app(database_url: str, redis_url: str | None = None) -> Celery:
    settings = Settings(secret_key=TEST_SECRET_KEY, redis_url=redis_url)
    app = worker_app.create_celery(settings, database_url)
    app.conf.hearth_database_url = database_url  # as `hearth worker` sets it
    return app


@pytest.mark.redis
def test_a_due_task_is_sent_only_while_its_condition_holds(
    queue_redis: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    holds: list[bool] = []
    monkeypatch.setitem(schedule._conditions, TASK, lambda _app: holds[-1])
    app = _app(NOWHERE.format(port=free_port()), queue_redis)
    scheduler = schedule.Scheduler(app, lazy=True)
    entry = ScheduleEntry(name="conditional", task=TASK, schedule=60.0, app=app)
    broker = redis.Redis.from_url(queue_redis)
    try:
        holds.append(False)
        scheduler.apply_entry(entry)
        assert broker.llen(worker_app.DEFAULT_QUEUE) == 0
        holds.append(True)
        scheduler.apply_entry(entry)
        assert broker.llen(worker_app.DEFAULT_QUEUE) == 1
    finally:
        scheduler.close()
        broker.close()
        app.close()


async def test_the_sweep_is_needed_only_while_a_document_waits() -> None:
    url = await create_migrated_database()
    try:
        app = _app(normalize_database_url(url))
        assert documents_wait(app) is False
        with psycopg.connect(libpq_url(url), autocommit=True) as connection:
            connection.execute("INSERT INTO documents (text) VALUES ('waiting')")
            assert documents_wait(app) is True
            connection.execute("UPDATE documents SET embedded_at = now()")
            assert documents_wait(app) is False
        app.close()
    finally:
        drop_database(url)


def test_the_sweep_is_sent_when_the_database_cannot_say() -> None:
    """The run then fails and is retried as any run would; skipping it could strand work."""
    app = _app(NOWHERE.format(port=free_port()))
    assert documents_wait(app) is True
    app.close()
