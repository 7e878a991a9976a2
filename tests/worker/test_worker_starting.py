"""A worker that is starting is shown as starting, not as missing: the worker that
`hearth serve --with-worker` started, until it reports or its start window is over."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psycopg
import pytest

from hearth.db.engine import create_engine
from hearth.db.migrate import upgrade_to_head
from hearth.kit.checks import CheckResult
from hearth.kit.urls import normalize_database_url
from hearth.worker.child import WorkerChild, supervised_start_age
from hearth.worker.health import WorkerCheck
from tests.support.process import HEARTH, clean_environment, hearth_server
from tests.support.services import free_port

pytestmark = pytest.mark.worker


async def test_the_worker_serve_started_is_starting_until_it_reports_never_unreachable(
    fresh_database: str, tmp_path: Path
) -> None:
    """The server is up before the migrations, so its worker waits for them: it is starting
    for as long as that lasts (deterministically), then ok, with nothing in between."""
    env = clean_environment(
        DATABASE_URL=fresh_database, MIGRATE_ON_START="false", HEALTH_DETAILS="always"
    )
    with hearth_server(env, tmp_path, free_port(), args=["--with-worker"]) as server:
        server.wait_until("/livez", 200)
        waiting = server.get("/health").json()
        flat = server.get("/healthz")
        fragment = server.get("/health/fragment").text
        assert server.get("/readyz").status_code == 503  # the migrations are not done

        engine = create_engine(normalize_database_url(fresh_database))
        try:
            await upgrade_to_head(engine)  # as `hearth migrate` does
        finally:
            await engine.dispose()
        server.wait_until("/readyz", 200)
        seen = [server.get("/health").json()["checks"]["worker"]["status"]]
        while seen[-1] != "ok" and len(seen) < 300:  # a report comes within seconds
            time.sleep(0.2)
            seen.append(server.get("/health").json()["checks"]["worker"]["status"])
        assert server.stop() == 0

    worker = waiting["checks"]["worker"]
    assert worker["status"] == "starting"
    assert "the worker hearth serve started" in worker["detail"]
    assert waiting["status"] == "ok"  # a start degrades nothing
    assert (flat.status_code, flat.json()["worker"], flat.json()["status"]) == (
        200,
        "starting",
        "ok",
    )
    assert '<span class="badge starting">starting</span>' in fragment
    assert seen[-1] == "ok"
    assert set(seen) <= {"starting", "ok"}, seen
    # The history keeps what a start ended in, never the start itself.
    with psycopg.connect(fresh_database) as connection:
        stored = connection.execute(
            "SELECT status FROM health_events WHERE component = 'worker'"
        ).fetchall()
    assert ("starting",) not in stored


async def test_a_worker_that_never_reports_turns_unreachable_after_its_start_window(
    fresh_database: str,
) -> None:
    """A real worker waiting for migrations that never come: starting within the window,
    unreachable after it, while its process still runs."""
    env = clean_environment(DATABASE_URL=fresh_database)
    command = ["env", "-i", *(f"{key}={value}" for key, value in env.items()), HEARTH, "worker"]
    child = WorkerChild(command)
    engine = create_engine(normalize_database_url(fresh_database))
    check = WorkerCheck(engine, 1.0, start_window=3.0)  # asks the supervisor, as the app does
    try:
        assert (await check.check()).status == "unreachable"  # nothing supervised yet
        child.start()
        first = await check.check()
        results: list[CheckResult] = [first]
        for _ in range(100):
            if results[-1].status != "starting":
                break
            await asyncio.sleep(0.1)
            results.append(await check.check())
        still_running = child.start_age()
    finally:
        child.stop()
        await engine.dispose()

    assert first.status == "starting"
    assert "has not reported yet" in first.detail
    assert {result.status for result in results[:-1]} == {"starting"}
    last = results[-1]
    assert last.status == "unreachable"
    assert "never reported" in last.detail
    assert still_running is not None  # its process runs on: it never became ready
    assert child.start_age() is None  # stopped: nothing left to be starting
    assert supervised_start_age() is None
