"""`helm install` with no values, as far as it runs without a cluster: the default rendering's
pods as processes on this machine (tests/deploy/kubernetes/pods.py), each from its own
command, environment, ConfigMaps and Secrets. PostgreSQL initialises with the StatefulSet's
initdb options and the chart's init script; Redis starts from its configuration with the
Secret's password; both pods' migrate init containers run as Hearth's own role; then the
worker and the api start, and every readiness probe passes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg
import pytest

from tests.deploy.kubernetes.pods import (
    hearth_pod_environment,
    postgresql_pod,
    redis_pod,
    statefulset,
)
from tests.support.kubernetes import Rendered, container, named, pod_spec, secret_data
from tests.support.process import HEARTH, hearth_server
from tests.support.services import free_port
from tests.support.worker import WorkerProcess

pytestmark = [
    pytest.mark.embedded_postgres,
    pytest.mark.redis,  # a redis-server of its own
    pytest.mark.worker,
    pytest.mark.timeout(240),
]


def _run(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """A container's command (``hearth`` being this checkout's), to completion."""
    return subprocess.run(
        [HEARTH, *command[1:]] if command[0] == "hearth" else command,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_the_default_release_comes_up_ready(default: Rendered, tmp_path: Path) -> None:
    objects = default.objects
    database_port, redis_port, api_port = free_port(), free_port(), free_port()
    servers = {
        "hearth-postgresql:5432": f"127.0.0.1:{database_port}",
        "hearth-redis:6379": f"127.0.0.1:{redis_port}",
    }
    with (
        postgresql_pod(statefulset(objects, "postgresql"), objects, tmp_path / "pg", database_port),
        redis_pod(statefulset(objects, "redis"), objects, tmp_path / "redis", redis_port),
    ):
        # The init containers, the worker's first: it is the one with the narrower secrets.
        for component in ("worker", "api"):
            env = hearth_pod_environment(
                objects, component, "migrate", tmp_path / component / "migrate", servers
            )
            migrate = container(pod_spec(objects, component), "migrate")
            done = _run(migrate["command"] + migrate["args"], env, tmp_path)
            assert done.returncode == 0, done.stderr
            assert "Database is at revision" in done.stdout

        worker_container = container(pod_spec(objects, "worker"), "worker")
        worker_env = hearth_pod_environment(
            objects, "worker", "worker", tmp_path / "worker" / "secrets", servers
        )
        output = tmp_path / "worker.log"
        with output.open("w") as sink:
            process = subprocess.Popen(
                [HEARTH, *worker_container["args"]],
                env=worker_env,
                cwd=tmp_path,
                stdout=sink,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        worker = WorkerProcess(process, output)
        try:
            worker.wait_for_log(" ready.")
            api_env = hearth_pod_environment(
                objects, "api", "api", tmp_path / "api" / "secrets", servers
            )
            api_env["HOST"] = "127.0.0.1"  # the pod's 0.0.0.0 would be this machine's LAN
            with hearth_server(api_env, tmp_path, api_port) as api:
                api_container = container(pod_spec(objects, "api"), "api")
                api.wait_until(api_container["startupProbe"]["httpGet"]["path"])
                api.wait_until(api_container["readinessProbe"]["httpGet"]["path"])
                for check in ("db", "redis", "worker"):
                    api.wait_for_check(check, "ok", timeout=90)
                # The worker's readiness probe: its heartbeat, through the pod's settings.
                probe = worker_container["readinessProbe"]["exec"]["command"]
                checked = _run(probe, worker_env, tmp_path)
                assert checked.returncode == 0, checked.stdout + checked.stderr
            assert worker.stop() == 0
        finally:
            if process.poll() is None:
                worker.kill()

        stored = secret_data(named(objects, "Secret", "hearth-postgresql"))
        url = stored["uri"].replace("hearth-postgresql:5432", servers["hearth-postgresql:5432"])
        with psycopg.connect(url) as connection:
            superuser, owner, checksums, vector, embedding = connection.execute(
                "SELECT rolsuper,"
                " (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'hearth'),"
                " current_setting('data_checksums'),"
                " (SELECT extversion FROM pg_extension WHERE extname = 'vector'),"
                " (SELECT atttypid::regtype::text FROM pg_attribute"
                "  WHERE attrelid = 'documents'::regclass AND attname = 'embedding')"
                " FROM pg_roles WHERE rolname = current_user"
            ).fetchone()  # type: ignore[misc]
    assert superuser is False  # Hearth runs as its own role
    assert owner == "hearth"
    assert checksums == "on"
    assert vector  # created by the superuser at init: document search is on
    assert embedding == "vector"
