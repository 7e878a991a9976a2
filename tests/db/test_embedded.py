"""Embedded PostgreSQL: `hearth serve` with no DATABASE_URL, as root and as an ordinary user."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest

from hearth.db.embedded import EmbeddedPostgres
from hearth.db.migrate import HEAD_REVISION
from tests.support import users
from tests.support.process import HearthServer, clean_environment, hearth_server, run_hearth
from tests.support.services import free_port
from tests.support.tokens import bearer, create_with_cli
from tests.support.worker import hearth_worker

pytestmark = pytest.mark.embedded_postgres


def _postgres_processes(pgdata: Path) -> list[psutil.Process]:
    return [
        process
        for process in psutil.process_iter(["name", "cmdline"])
        if process.info["name"] == "postgres"
        and str(pgdata) in " ".join(process.info["cmdline"] or [])
    ]


def _socket_dir(pgdata: Path) -> str:
    return (pgdata / "postmaster.pid").read_text().splitlines()[4]


def _task_state(server: HearthServer, task_id: str, within: float = 60) -> str:
    deadline = time.monotonic() + within
    state = "unknown"
    while time.monotonic() < deadline:
        state = server.get(f"/tasks/{task_id}").json()["state"]
        if state == "SUCCESS":
            break
        time.sleep(0.2)
    return state


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data directory in a private home (0700), as `make run` in root's home has."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    path = home / "data"
    yield path
    for process in _postgres_processes(path):  # never leave a server behind
        process.kill()


def test_embedded_database_serves_with_pgvector_and_stops_on_ctrl_c(
    tmp_path: Path, data_dir: Path
) -> None:
    home = data_dir.parent
    # The versions are details, shown to anonymous callers only with HEALTH_DETAILS=always.
    env = clean_environment(HEARTH_DATA_DIR=str(data_dir), HEALTH_DETAILS="always")
    pgdata = data_dir / "postgres"
    with hearth_server(env, tmp_path, free_port()) as server:
        server.wait_until("/readyz", 200)
        changed = server.events("embedded_postgres_permissions_changed")
        changes = [change for event in changed for change in event["changes"]]
        if os.geteuid() == 0:
            # Root's PostgreSQL runs as the wheel's user, who may only search the home: never
            # list it, nothing for the group (the wheel alone would make it 0755).
            assert stat.S_IMODE(home.stat().st_mode) == 0o701
            assert {"path": str(home), "before": "0700", "after": "0701"} in changes
            assert all(int(c["after"], 8) == int(c["before"], 8) | 0o001 for c in changes)
            # ...which it can do in its own group: not in root's, as the wheel alone runs it.
            own = pwd.getpwnam("embedded_postgres").pw_gid
            assert {p.gids().real for p in _postgres_processes(pgdata)} == {own}
        else:
            assert stat.S_IMODE(home.stat().st_mode) == 0o700
            assert not changes
        db = server.get("/health").json()["checks"]["db"]
        assert db["status"] == "ok"
        assert "PostgreSQL 18" in db["detail"]
        assert "pgvector 0.8" in db["detail"]

        with psycopg.connect(
            host=_socket_dir(pgdata), user="postgres", dbname="hearth", autocommit=True
        ) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            distance = conn.execute("SELECT '[1,2,3]'::vector <-> '[1,2,4]'::vector").fetchone()
            conn.execute("INSERT INTO settings (key, value) VALUES ('event_date', '2026-12-24')")
        assert distance == (1.0,)
        assert _postgres_processes(pgdata)

        assert server.stop(signal.SIGINT) == 0
    assert not (pgdata / "postmaster.pid").exists()
    assert not _postgres_processes(pgdata)
    if os.geteuid() == 0:  # PostgreSQL refuses root: the wheel's own user owns the data
        assert pwd.getpwuid(pgdata.stat().st_uid).pw_name == "embedded_postgres"

    # A warm restart finds its data and has nothing to migrate; SIGTERM stops it too.
    with hearth_server(env, tmp_path, free_port()) as server:
        server.wait_until("/readyz", 200)
        assert not server.events("embedded_postgres_permissions_changed")  # nothing left to open
        assert server.events("migrations_current")
        assert not server.events("migrations_applied")
        with psycopg.connect(host=_socket_dir(pgdata), user="postgres", dbname="hearth") as conn:
            assert conn.execute(
                "SELECT value FROM settings WHERE key = 'event_date'"
            ).fetchone() == ("2026-12-24",)
        assert server.stop(signal.SIGTERM) == 0
    assert not _postgres_processes(pgdata)


def test_a_killed_server_does_not_leave_the_database_running_forever(
    tmp_path: Path, data_dir: Path
) -> None:
    """After `kill -9` the database survives; the next Hearth adopts it and stops it."""
    env = clean_environment(HEARTH_DATA_DIR=str(data_dir))
    pgdata = data_dir / "postgres"
    with hearth_server(env, tmp_path, free_port()) as crashed:
        crashed.wait_until("/readyz", 200)
        crashed.process.kill()
        crashed.process.wait()
    assert _postgres_processes(pgdata)

    with hearth_server(env, tmp_path, free_port()) as server:
        server.wait_until("/readyz", 200)
        [dropped] = server.events("embedded_postgres_stale_users_dropped")
        assert dropped["dead"] == [crashed.process.pid]
        assert server.stop() == 0
    assert not _postgres_processes(pgdata)


@pytest.mark.worker
def test_a_server_stops_the_database_its_killed_worker_never_let_go(
    tmp_path: Path, data_dir: Path
) -> None:
    """A worker killed at its stop timeout keeps its name in the list of the database's
    users; once its server is gone, nothing would stop the database. The process that
    supervised the worker stops it when no live user remains."""
    env = clean_environment(HEARTH_DATA_DIR=str(data_dir))
    pgdata = data_dir / "postgres"
    assert run_hearth("migrate", env=env, cwd=tmp_path).returncode == 0
    with hearth_worker(env, tmp_path) as worker:
        os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait()
    assert _postgres_processes(pgdata)  # held by a dead worker

    EmbeddedPostgres(data_dir).stop_if_abandoned()
    assert not _postgres_processes(pgdata)


@pytest.mark.worker
def test_check_and_migrate_share_the_running_server(tmp_path: Path, data_dir: Path) -> None:
    env = clean_environment(HEARTH_DATA_DIR=str(data_dir))
    pgdata = data_dir / "postgres"

    migrated = run_hearth("migrate", env=env, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr + migrated.stdout
    assert f"Database is at revision {HEAD_REVISION}." in migrated.stdout
    assert not _postgres_processes(pgdata)  # migrate stopped the server it started

    stopped = run_hearth("check", env=env, cwd=tmp_path)
    assert stopped.returncode == 1
    assert "embedded PostgreSQL is not running" in stopped.stdout

    with hearth_server(env, tmp_path, free_port()) as server:
        server.wait_until("/readyz", 200)
        # `hearth token` joins the running server's database, as `hearth check` does.
        server.headers.update(bearer(create_with_cli(env, tmp_path, "read", "write")))
        listed = run_hearth("token", "list", env=env, cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert "tests" in listed.stdout
        # A worker joins the same embedded server; its queue lives in PostgreSQL too.
        with hearth_worker({**env, "WORKER_HEARTBEAT_SECONDS": "1"}, tmp_path):
            running = run_hearth("check", "--json", env=env, cwd=tmp_path)
            trail = run_hearth("audit", "--json", env=env, cwd=tmp_path)
            ping = httpx.post(f"{server.url}/tasks/ping", headers=server.headers, timeout=10)
            assert _task_state(server, ping.json()["id"]) == "SUCCESS"
        assert running.returncode == 0, running.stdout + running.stderr
        report = json.loads(running.stdout)
        assert report["checks"]["db"]["status"] == "ok"
        assert report["checks"]["worker"]["status"] == "ok"
        assert trail.returncode == 0, trail.stderr
        assert isinstance(json.loads(trail.stdout), list)
        # The check let go of the server without stopping it.
        assert server.get("/readyz").status_code == 200
        assert server.stop() == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root")
def test_embedded_database_as_an_ordinary_user(tmp_path: Path) -> None:
    user = users.ensure_user()
    venv = users.build_user_venv()
    home = users.private_dir(user)
    data = home / "data"
    try:
        env = clean_environment(
            HEARTH_DATA_DIR=str(data), HOME=str(home), PATH=f"{venv}/bin:/usr/bin:/bin"
        )
        env.pop("VIRTUAL_ENV", None)
        with hearth_server(
            env, home, free_port(), user=users.USER, executable=str(venv / "bin" / "hearth")
        ) as server:
            server.wait_until("/readyz", 200)
            assert server.get("/health").json()["checks"]["db"]["status"] == "ok"
            assert psutil.Process(server.process.pid).username() == users.USER
            owners = {p.username() for p in _postgres_processes(data / "postgres")}
            assert owners == {users.USER}
            assert server.stop(signal.SIGINT) == 0
        assert not _postgres_processes(data / "postgres")
    finally:
        for process in _postgres_processes(data / "postgres"):
            process.kill()
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(venv.parent, ignore_errors=True)


@pytest.mark.worker
def test_queued_tasks_survive_a_restart_of_server_and_worker(
    tmp_path: Path, data_dir: Path
) -> None:
    """Embedded mode: the queue lives in the embedded PostgreSQL, so a task queued while no
    worker runs is still there after both processes restart."""
    env = clean_environment(HEARTH_DATA_DIR=str(data_dir), WORKER_HEARTBEAT_SECONDS="1")
    port = free_port()
    with hearth_server(env, tmp_path, port) as server:
        server.wait_until("/readyz", 200)
        auth = bearer(create_with_cli(env, tmp_path, "read", "write"))
        server.headers.update(auth)
        with hearth_worker(env, tmp_path):
            warm = httpx.post(f"{server.url}/tasks/ping", headers=auth, timeout=10).json()["id"]
            assert _task_state(server, warm) == "SUCCESS"
        queued = httpx.post(f"{server.url}/tasks/ping", headers=auth, timeout=10).json()["id"]
        assert server.get(f"/tasks/{queued}").json()["state"] == "PENDING"
        assert server.stop() == 0
    assert not _postgres_processes(data_dir / "postgres")  # everything stopped

    with hearth_server(env, tmp_path, port) as server:
        server.wait_until("/readyz", 200)
        server.headers.update(auth)  # the token is stored in the same database
        with hearth_worker(env, tmp_path):
            assert _task_state(server, queued) == "SUCCESS"
        assert server.stop() == 0
