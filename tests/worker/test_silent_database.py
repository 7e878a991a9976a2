"""A database that accepts connections and never answers (a host whose network dropped, a
server hung) holds none of the worker's own connections longer than the connect timeout:
the hourly prune fails with the timeout as its reason, the heartbeat counts a failed beat;
neither holds the thread that runs it (the heartbeat's is Celery's timer)."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import psycopg

from hearth.config.settings import Settings
from hearth.db import driver
from hearth.db.driver import CONNECT_TIMEOUT_SECONDS
from hearth.health import tasks as health_tasks
from hearth.worker import app as worker_app
from hearth.worker.heartbeat import HeartbeatStep
from tests.support.fake_llm import black_hole
from tests.support.process import TEST_SECRET_KEY

# What "gave up" means here: the connect timeout with room for a loaded machine; a hang
# would be TCP's own, minutes.
BOUND_S = CONNECT_TIMEOUT_SECONDS * 5


def _outcome(call: Callable[[], Any]) -> Any:
    """What ``call`` returned or raised, or AssertionError if it was still waiting after
    BOUND_S seconds."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as exc:  # noqa: BLE001 (handed to the test, which names what it expects)
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(BOUND_S)
    assert outcome, f"still waiting for a silent database after {BOUND_S} s"
    return outcome[0]


def test_the_prune_gives_up_on_a_database_that_never_answers() -> None:
    with black_hole() as address:
        url = f"postgresql+psycopg://hearth@{address}/hearth"
        started = time.monotonic()
        outcome = _outcome(lambda: health_tasks.prune(url, keep_days=90))
    assert isinstance(outcome, psycopg.OperationalError), outcome
    assert "timeout" in str(outcome).lower(), outcome
    # It waited for the timeout: the silence was felt, not a refusal.
    assert time.monotonic() - started >= CONNECT_TIMEOUT_SECONDS - 0.5


def test_a_short_job_commits_on_success_and_closes(database_url: str) -> None:
    table = f"driver_probe_{secrets.token_hex(4)}"
    with driver.connect(database_url) as connection:
        connection.execute(f"CREATE TABLE {table} (n int)")
        [[open_transaction]] = connection.execute("SELECT now() <> statement_timestamp()")
    assert open_transaction  # one transaction for the job's statements, not autocommit
    assert connection.closed
    with psycopg.connect(database_url, autocommit=True) as other:
        [[exists]] = other.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
        other.execute(f"DROP TABLE IF EXISTS {table}")
    assert exists  # committed as the block ended


def test_the_heartbeat_gives_up_on_a_database_that_never_answers() -> None:
    with black_hole() as address:
        url = f"postgresql+psycopg://hearth@{address}/hearth"
        app = worker_app.create_celery(Settings(secret_key=TEST_SECRET_KEY), url)
        app.conf.hearth_database_url = url  # as `hearth worker` sets them
        app.conf.hearth_heartbeat_seconds = 10.0
        worker = SimpleNamespace(app=app, hostname="w@h", concurrency=1)
        step = HeartbeatStep(worker)
        try:
            outcome = _outcome(lambda: step._write(worker))
        finally:
            step.engine.dispose()
            app.close()
    assert outcome is False  # a failed beat, reported, not a hung timer
    assert step.reporting_since is None
