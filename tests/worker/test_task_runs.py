"""What a pool child records of each run (``hearth.worker.runs``) and how the record is
pruned, on a real PostgreSQL: arguments kept only when they may be, reasons with no secret,
a run that runs again rewrites its row, a database that is away never fails a task, and the
hourly prune keeps a week and a bounded number of rows."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hearth.config.settings import Settings
from hearth.db import driver
from hearth.kit.urls import normalize_database_url
from hearth.worker import app as worker_app
from hearth.worker import repository, runs
from hearth.worker import tasks as worker_tasks
from tests.support.database import create_migrated_database, drop_database
from tests.support.process import TEST_SECRET_KEY, clean_environment
from tests.support.services import free_port
from tests.support.worker import hearth_worker

FIXTURE_NEEDS = {"own_database": ("postgres",)}
NODE = "hearth-abc123@host"


@pytest.fixture
async def own_database() -> AsyncIterator[str]:
    url = await create_migrated_database()
    yield url
    drop_database(url)


def stored(database_url: str, task_id: str) -> dict[str, Any] | None:
    with psycopg.connect(database_url) as connection:
        cursor = connection.execute(
            "SELECT name, state, arguments, worker, error, runs, runtime_seconds,"
            " finished_at >= started_at FROM task_runs WHERE task_id = %s",
            (task_id,),
        )
        row = cursor.fetchone()
    if row is None:
        return None
    keys = ("name", "state", "arguments", "worker", "error", "runs", "runtime", "ordered")
    return dict(zip(keys, row, strict=True))


def test_arguments_are_kept_only_when_they_may_be() -> None:
    assert runs.arguments_json((7, "abc"), {"force": True}) == (
        '{"args":[7,"abc"],"kwargs":{"force":true}}'
    )
    assert runs.arguments_json(None, None) == '{"args":[],"kwargs":{}}'
    assert runs.arguments_json((), {"api_key": "x"}) is None  # a secret-looking keyword
    assert runs.arguments_json((), {"Password": "x"}) is None
    assert runs.arguments_json(("hth_" + "a" * 43,), {}) is None  # an API token
    assert runs.arguments_json(("x" * runs.MAX_ARGUMENTS_BYTES,), {}) is None  # too large
    assert runs.arguments_json((object(),), {}) is None  # not JSON


def test_a_reason_names_the_error_and_no_secret() -> None:
    error = ConnectionError(
        "cannot reach postgresql://hearth:s3cret-pass@db:5432/hearth\nsecond line"
    )
    reason = runs.describe(error)
    assert reason.startswith("ConnectionError: cannot reach postgresql://")
    assert "s3cret-pass" not in reason
    assert "second line" not in reason
    assert runs.describe("token hth_" + "B" * 43) == "token hth_***"
    assert len(runs.describe(ValueError("x" * 5000))) == runs.MAX_ERROR_CHARS


def test_a_run_is_written_when_it_ends_and_rewritten_when_it_runs_again(
    own_database: str,
) -> None:
    recorder = runs.RunRecorder(normalize_database_url(own_database), NODE)
    task_id = str(uuid.uuid4())
    try:
        recorder.started(task_id, (1,), {"force": False})
        recorder.flush()
        assert stored(own_database, task_id) is None  # nothing written before it ends
        recorder.failed(task_id, RuntimeError("boom"))
        recorder.ended(task_id, "tests.fail", "FAILURE")
        recorder.flush()  # what the child's writer thread does every FLUSH_SECONDS
        first = stored(own_database, task_id)
        # Handed back after its worker died: the same id runs again, and succeeds.
        recorder.started(task_id, (1,), {"force": False})
        recorder.ended(task_id, "tests.fail", "SUCCESS")
        recorder.ended(str(uuid.uuid4()), "never.started", "SUCCESS")  # unknown: nothing
        recorder.flush()
        second = stored(own_database, task_id)
    finally:
        recorder.close()
    assert first is not None
    assert first.pop("runtime") >= 0
    assert first == {
        "name": "tests.fail",
        "state": "FAILURE",
        "arguments": {"args": [1], "kwargs": {"force": False}},
        "worker": NODE,
        "error": "RuntimeError: boom",
        "runs": 1,
        "ordered": True,
    }
    assert second is not None
    assert (second["state"], second["error"], second["runs"]) == ("SUCCESS", None, 2)


def test_a_database_that_is_away_never_fails_the_task() -> None:
    """Nothing listens on the port: the run is not recorded, the task goes on; the child
    then stops trying for a while, counting what it missed."""
    recorder = runs.RunRecorder(f"postgresql+psycopg://hearth@127.0.0.1:{free_port()}/x", NODE)
    missed = []
    for _ in range(2):
        task_id = str(uuid.uuid4())
        recorder.started(task_id, (), {})
        recorder.ended(task_id, "hearth.ping", "SUCCESS")
        recorder.flush()  # does not raise
        missed.append(recorder.missed)
    assert missed == [1, 2]  # counted for the next log line
    # Paused after the failure: writes resume only once PAUSE_SECONDS have passed.
    assert recorder._paused_until > time.monotonic()


def test_the_prune_keeps_a_week_and_at_most_so_many_rows(own_database: str) -> None:
    now = datetime.now(UTC)
    ages = {"old-1": 9, "old-2": 8, "new-1": 3, "new-2": 2, "new-3": 1}
    with psycopg.connect(own_database, autocommit=True) as connection:
        for task_id, days in ages.items():
            connection.execute(
                "INSERT INTO task_runs (task_id, name, state, worker, started_at,"
                " finished_at, runtime_seconds) VALUES (%s, 'x', 'SUCCESS', 'w', %s, %s, 0)",
                (task_id, now - timedelta(days=days), now - timedelta(days=days)),
            )
    with driver.connect(own_database) as connection:
        deleted = repository.prune_runs(connection, days=7, rows=2)
    with driver.connect(own_database) as connection:
        again = repository.prune_runs(connection, days=7, rows=2)
    with psycopg.connect(own_database) as connection:
        left = {row[0] for row in connection.execute("SELECT task_id FROM task_runs")}
    assert deleted == 3
    assert again == 0  # another worker's beat finds nothing left
    assert left == {"new-2", "new-3"}


def test_the_prune_runs_hourly_on_every_workers_beat() -> None:
    settings = Settings(_env_file=None, secret_key=TEST_SECRET_KEY)
    app = worker_app.create_celery(settings, "postgresql+psycopg://hearth@127.0.0.1/hearth")
    prune = app.conf.beat_schedule["task-runs-prune"]
    assert prune["task"] == worker_app.PRUNE_TASK_RUNS_TASK == worker_tasks.PRUNE_TASK_RUNS_TASK
    assert prune["schedule"].remaining_estimate(datetime.now(UTC)) <= timedelta(hours=1)


@pytest.mark.worker
@pytest.mark.redis
def test_a_real_worker_runs_the_prune(own_database: str, queue_redis: str, tmp_path: Path) -> None:
    old = datetime.now(UTC) - timedelta(days=worker_tasks.KEEP_RUN_DAYS + 1)
    with psycopg.connect(own_database, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO task_runs (task_id, name, state, worker, started_at, finished_at,"
            " runtime_seconds) VALUES ('old', 'x', 'SUCCESS', 'w', %s, %s, 0)",
            (old, old),
        )
    env = clean_environment(DATABASE_URL=own_database, REDIS_URL=queue_redis)
    settings = Settings(_env_file=None, secret_key=TEST_SECRET_KEY, redis_url=queue_redis)
    sender = worker_app.create_celery(settings, own_database)
    try:
        with hearth_worker(env, tmp_path):
            outcome = sender.send_task(worker_app.PRUNE_TASK_RUNS_TASK).get(timeout=60)
    finally:
        sender.close()
    assert outcome == {"deleted": 1}
    assert stored(own_database, "old") is None
