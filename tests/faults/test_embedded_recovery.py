"""Faults of the embedded PostgreSQL under a real `hearth serve --with-worker`: its postmaster
killed with SIGKILL, once when it can be restarted and once when it cannot."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.process import HearthServer, clean_environment, hearth_server
from tests.support.services import free_port
from tests.support.tokens import bearer, create_with_cli

pytestmark = [pytest.mark.embedded_postgres, pytest.mark.worker]

# Log lines (server and worker together, leaving out those of the test's own requests) from
# the kill until a task queued after the recovery has run. About 20 are written; a worker
# retrying a dead broker at Celery's pace writes about 25 a second.
MAX_OUTAGE_LINES = 60
# What the test's polling makes the server log: as many as the test asks.
_REQUEST_EVENTS = ('"event": "request_finished"', '"event": "health_check"')


def _postgres_processes(pgdata: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name"]):
        if process.info["name"] != "postgres":
            continue
        try:
            if Path(process.cwd()) == pgdata:
                found.append(process)
        except psutil.Error:
            continue
    return found


def _postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().splitlines()[0])


def _wait_for_new_postmaster(
    server: HearthServer, pgdata: Path, killed: int, within: float = 60
) -> None:
    """Until another postmaster than ``killed`` runs on ``pgdata``."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if _postmaster_pid(pgdata) != killed:
                return
        except (OSError, IndexError, ValueError):
            pass  # removed, or being written
        time.sleep(0.1)
    raise AssertionError(f"PostgreSQL was not restarted:\n{server.output.read_text()}")


def _ping(server: HearthServer) -> str:
    response = httpx.post(f"{server.url}/tasks/ping", headers=server.headers, timeout=10)
    assert response.status_code == 202, response.text
    task_id: str = response.json()["id"]
    return task_id


def _wait_for_success(server: HearthServer, task_id: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    state = "unknown"
    while time.monotonic() < deadline:
        state = server.get(f"/tasks/{task_id}").json()["state"]
        if state == "SUCCESS":
            return
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} is {state}:\n{server.output.read_text()}")


def _line_count(server: HearthServer) -> int:
    """Lines logged so far, but for those the test's own requests caused."""
    lines = server.output.read_text().splitlines()
    return sum(1 for line in lines if not any(event in line for event in _REQUEST_EVENTS))


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    yield path
    for process in _postgres_processes(path / "postgres"):  # never leave a server behind
        process.kill()


def test_a_killed_embedded_postgresql_comes_back_and_the_worker_follows(
    tmp_path: Path, data_dir: Path
) -> None:
    """SIGKILL of the postmaster: Hearth restarts it, /readyz is 200 again, the worker runs
    tasks again without a flood of log lines, and nothing stale blocks the next start."""
    env = clean_environment(HEARTH_DATA_DIR=str(data_dir))
    pgdata = data_dir / "postgres"
    with hearth_server(env, tmp_path, free_port(), args=["--with-worker"]) as server:
        server.wait_until("/readyz", 200)
        server.headers.update(bearer(create_with_cli(env, tmp_path, "read", "write")))
        before = _ping(server)
        _wait_for_success(server, before)  # the worker is up

        lines_before = _line_count(server)
        killed = _postmaster_pid(pgdata)
        os.kill(killed, signal.SIGKILL)
        _wait_for_new_postmaster(server, pgdata, killed)
        server.wait_until("/readyz", 200, timeout=60)
        # Logged just after the restart, which /readyz may already have seen.
        server.wait_for_event("embedded_postgres_recovered", timeout=10)

        after = _ping(server)
        _wait_for_success(server, after)  # the worker is back on the restarted database
        outage = _line_count(server) - lines_before
        assert outage <= MAX_OUTAGE_LINES, server.output.read_text()
        assert server.get("/livez").json() == {"status": "ok"}
        _wait_for_success(server, before, within=1)  # its result outlived the crash
        assert server.stop() == 0
    assert not _postgres_processes(pgdata)
    assert not (pgdata / "postmaster.pid").exists(), server.output.read_text()

    # The next start finds the data, and the results, of the recovered server.
    with hearth_server(env, tmp_path, free_port()) as again:
        again.headers.update(server.headers)
        again.wait_until("/readyz", 200)
        _wait_for_success(again, after, within=1)
        assert again.stop() == 0


def test_an_embedded_postgresql_that_cannot_come_back_stops_hearth(
    tmp_path: Path, data_dir: Path
) -> None:
    """The postmaster killed and its data directory broken: Hearth retries for
    EMBEDDED_POSTGRES_RECOVERY_SECONDS, then fails /livez and exits 1, worker and all, for
    its supervisor to restart it."""
    env = clean_environment(HEARTH_DATA_DIR=str(data_dir), EMBEDDED_POSTGRES_RECOVERY_SECONDS="3")
    pgdata = data_dir / "postgres"
    with hearth_server(env, tmp_path, free_port(), args=["--with-worker"]) as server:
        server.wait_until("/readyz", 200)
        server.wait_for_event("worker_starting")
        [worker] = psutil.Process(server.process.pid).children()

        (pgdata / "global" / "pg_control").unlink()  # PostgreSQL cannot start without it
        os.kill(_postmaster_pid(pgdata), signal.SIGKILL)
        died = time.monotonic()
        assert server.process.wait(timeout=60) == 1
        stopped_after = time.monotonic() - died

        [gave_up] = server.events("embedded_postgres_gave_up")
        assert "pg_control" in gave_up["reason"]
        [failed] = server.events("liveness_failed")
        assert "EMBEDDED_POSTGRES_RECOVERY_SECONDS" in failed["reason"]
        attempts = server.events("embedded_postgres_restart_failed")
        assert 1 <= len(attempts) <= 4, attempts  # 1 s, 2 s, then the bound of 3 s
        assert stopped_after < 45, stopped_after  # the 3 s bound, start-up and shutdown
        assert not worker.is_running()
