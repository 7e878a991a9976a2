"""The Compose stack on a real Docker engine: `make test-compose` runs this after
scripts/test-compose.sh has made sure of the engine, the Compose plugin and the base image.

It builds the images with the classic builder (the Dockerfile needs no BuildKit), checks that
the app image stops without DATABASE_URL and holds none of the build's CA bundle, starts
docker-compose.yml with tests/compose/docker-compose.test.yml on top, waits until every
service is healthy, checks /health, the hardening (no published database, no root, the worker
without the operator password) and PostgreSQL's page checksums, saves a runtime setting as
the operator does (login, CSRF token, POST /config), takes a dump with the `backup` profile's
service and has pg_restore read it, restarts the stack, finds the setting again, reports
sizes, timings and memory, and removes the stack with its volumes. Any failure says which
service is not healthy and shows its last log lines and health check output.

Environment: HEARTH_BASE_IMAGE (the base both the app image and the test images build on),
HEARTH_TEST_CA_BUNDLE (a CA bundle for pip, uv and apt in the builds; default SSL_CERT_FILE),
HEARTH_COMPOSE_PROJECT (the Compose project, default hearth-compose-test: another name runs
beside it, with images of its own).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from hearth.db.embedded import WHEEL_MISSING

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PROJECT = "hearth-compose-test"
PROJECT = os.environ.get("HEARTH_COMPOSE_PROJECT") or DEFAULT_PROJECT
OVERRIDE = ROOT / "tests" / "compose" / "docker-compose.test.yml"
# Tagged by project, so that two projects never build over each other's images.
_TAG = "test" if PROJECT == DEFAULT_PROJECT else PROJECT
IMAGES = {
    "HEARTH_IMAGE": f"hearth-test/hearth:{_TAG}",
    "POSTGRES_IMAGE": f"hearth-test/postgres:{_TAG}",
    "REDIS_IMAGE": f"hearth-test/redis:{_TAG}",
}
CA_IMAGE = f"hearth-test/ca:{_TAG}"
# The base the Dockerfile names, which the test machines cannot pull: its size (amd64, on
# disk) as docker-library/repo-info records it (repos/python/local/3.11-slim-bookworm.md,
# python:3.11.16-slim-bookworm of 2026-08-13: "Virtual Size ~ 130.01 Mb").
SLIM_BASE = "python:3.11-slim-bookworm"
SLIM_BASE_SIZE = 130_010_000
SLIM_BASE_SOURCE = "docker-library/repo-info"
# What /opt/hearth (the virtualenv: all of Hearth's own files) holds, by kind, in MB.
_SIZES = """
import os, collections
kinds = collections.Counter()
for root, _, files in os.walk("/opt/hearth"):
    for name in files:
        path = os.path.join(root, name)
        if os.path.islink(path):
            continue
        kind = ("bytecode" if name.endswith(".pyc") else "source" if name.endswith(".py")
            else "compiled extensions" if ".so" in name else "other")
        kinds[kind] += os.path.getsize(path)
total = sum(kinds.values()) / 1e6
print(f"{total:.1f} MB: " + ", ".join(f"{k} {v / 1e6:.1f}" for k, v in kinds.most_common()))
"""
SERVICES = ("postgres", "redis", "api", "worker")
# What the worker and the api find in /run/secrets.
SECRETS = {
    "api": {"secret_key", "admin_password", "database_url"},
    "worker": {"secret_key", "database_url"},
}
# The label docker-compose.test.yml puts on the images built; and the one Compose put on them
# when it built them with BuildKit.
TEST_LABELS = (f"hearth-test.project={PROJECT}", f"com.docker.compose.project={PROJECT}")
# The classic builder keeps the last image of each build stage, untagged and unlabelled, as
# its cache: tagged here, with the label, so that a later run's prune removes the ones it
# replaced (and their layers) instead of leaving them behind. (tag, context, target)
STAGES = (
    (f"hearth-test/hearth-builder:{_TAG}", ROOT, "builder"),
    (f"hearth-test/postgres-install:{_TAG}", ROOT / "tests" / "compose" / "postgres", "install"),
)
# Compose interpolates from the environment before the env file: pass on only what reaches
# the engine, so a developer's LOG_LEVEL or COMPOSE_PROFILES cannot change the test.
COMPOSE_ENVIRONMENT = {
    name: value
    for name, value in os.environ.items()
    if name in ("PATH", "HOME", "TMPDIR", "LANG") or name.startswith("DOCKER_")
}
# The builds use the classic builder, which Docker 20.10 to 22 use without BuildKit and
# engines without buildx use at all: what builds there builds with BuildKit too, not the
# other way round (RUN --mount, heredocs).
CLASSIC_BUILDER = {**COMPOSE_ENVIRONMENT, "DOCKER_BUILDKIT": "0"}
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

    def run(self, *args: str, stdin: Path | None = None, env: dict[str, str] | None = None) -> str:
        """Run a compose command and return its output; a failure carries all of it."""
        with stdin.open("rb") if stdin else contextlib.nullcontext() as source:
            result = subprocess.run(
                self.command(*args),
                stdin=source,
                capture_output=True,
                check=False,
                cwd=ROOT,
                env=env or COMPOSE_ENVIRONMENT,
            )
        stdout = result.stdout.decode(errors="replace")
        stderr = result.stderr.decode(errors="replace")
        if result.returncode != 0:
            details = (stdout + stderr).rstrip()
            raise StackFailure(f"`docker compose {' '.join(args)}` failed:\n{details}")
        return stdout

    def exec_output(self, service: str, *command: str) -> str:
        return self.run("exec", "-T", service, *command).strip()

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


def psql(stack: Stack, sql: str) -> str:
    return stack.exec_output("postgres", "psql", "-U", "hearth", "-d", "hearth", "-tAc", sql)


def check_hardening(stack: Stack) -> None:
    """PostgreSQL and Redis publish no port; api and worker do not run as root and hold only
    the secrets they use; the vector extension exists (the init script ran); PostgreSQL was
    initialised with page checksums."""
    containers = stack.containers()
    for name in ("postgres", "redis"):
        ports = containers[name]["NetworkSettings"]["Ports"] or {}
        published = {port: hosts for port, hosts in ports.items() if hosts}
        check(not published, f"{name} publishes {published}; it must not")
    for name in ("api", "worker"):
        user = containers[name]["Config"]["User"]
        check(user not in ("", "0", "root"), f"{name} runs as root")
    for name, expected in SECRETS.items():
        found = set(stack.exec_output(name, "ls", "/run/secrets").split())
        check(found == expected, f"{name} has the secrets {sorted(found)}, not {sorted(expected)}")
    version = psql(stack, "SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    check(bool(version), "the vector extension was not created by deploy/docker/postgres/")
    checksums = psql(stack, "SHOW data_checksums")
    check(checksums == "on", f"data_checksums is {checksums!r}: POSTGRES_INITDB_ARGS was lost")
    log(
        "no PostgreSQL or Redis port published; api and worker not root; the worker without "
        f"admin_password; pgvector {version}; data_checksums {checksums}"
    )


def check_image_alone() -> None:
    """Without DATABASE_URL the image stops at once, saying so (it has no embedded
    PostgreSQL); its CA bundle is its base's: the build's never reached it."""
    alone = ["docker", "run", "--rm", "--read-only", "--cap-drop", "ALL"]
    key = f"SECRET_KEY={secrets.token_urlsafe(48)}"
    for command in ("serve", "worker"):
        result = subprocess.run(
            [*alone, "--env", key, IMAGES["HEARTH_IMAGE"], "hearth", command],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        check(
            result.returncode == 1 and result.stderr.strip() == WHEEL_MISSING,
            f"`hearth {command}` without DATABASE_URL in the image: exit {result.returncode}, "
            f"stderr:\n{result.stderr}",
        )
    bundle = "/etc/ssl/certs/ca-certificates.crt"
    digests = {
        image: docker("run", "--rm", "--entrypoint", "sha256sum", image, bundle).split()[0]
        for image in (IMAGES["HEARTH_IMAGE"], os.environ["HEARTH_BASE_IMAGE"])
    }
    check(len(set(digests.values())) == 1, f"the image's CA bundle is not its base's: {digests}")
    log(
        "the image alone: without DATABASE_URL, `hearth serve` and `hearth worker` stop with "
        "one line (exit 1); its CA bundle is its base's"
    )


def check_backup(stack: Stack, backups: Path, value: str) -> None:
    """The `backup` profile's service, once, with BACKUP_KEEP=1: a new dump that pg_restore
    reads, holding the setting saved before; the older dump that was there is gone."""
    older = backups / "hearth-20000101T000000Z.dump"
    older.write_bytes(b"")
    stack.run("--profile", "backup", "run", "--rm", "--env", "BACKUP_KEEP=1", "backup", "--once")
    dumps = sorted(backups.glob("hearth-*.dump"))
    check(len(dumps) == 1 and dumps[0] != older, f"after the backup, {backups} holds {dumps}")
    dump = dumps[0]
    mode = stat.S_IMODE(dump.stat().st_mode)
    check(mode == 0o600, f"{dump.name} has mode {mode:04o}, not 0600")
    listing = stack.run("exec", "-T", "postgres", "pg_restore", "--list", stdin=dump)
    check("TABLE DATA public settings" in listing, f"pg_restore --list of {dump.name}:\n{listing}")
    data = stack.run(
        "exec",
        "-T",
        "postgres",
        "pg_restore",
        "--data-only",
        "--table=settings",
        "--file=-",
        stdin=dump,
    )
    check(value in data, f"the saved llm_model={value} is not in {dump.name}")
    log(f"backup: {dump.name}, {dump.stat().st_size} bytes, read by pg_restore, holds {value}")


def report_image_size() -> None:
    """The app image's size, its base's, and what Hearth adds: its layers above the base (the
    same on any base), what they hold, and so the size on the official slim base."""
    base_name = os.environ["HEARTH_BASE_IMAGE"]
    image = json.loads(docker("image", "inspect", IMAGES["HEARTH_IMAGE"]))[0]["Size"]
    base = json.loads(docker("image", "inspect", base_name))[0]["Size"]
    layers = image - base
    log(
        f"image {IMAGES['HEARTH_IMAGE']}: {_mb(image)} = base {base_name} {_mb(base)} "
        f"+ Hearth's layers {_mb(layers)} ({_largest_layer(base_name)})"
    )
    contents = docker(
        "run", "--rm", "--entrypoint", "python3", IMAGES["HEARTH_IMAGE"], "-c", _SIZES
    )
    log(f"/opt/hearth holds {contents.strip()}")
    if base_name == SLIM_BASE:
        log(f"on {SLIM_BASE}, measured: {_mb(image)} (target: at most 250 MB)")
    else:
        log(
            f"on {SLIM_BASE}: {_mb(SLIM_BASE_SIZE + layers)} = {_mb(SLIM_BASE_SIZE)} (its size "
            f"by {SLIM_BASE_SOURCE}) + Hearth's layers {_mb(layers)} (target: at most 250 MB)"
        )


def _mb(size: float) -> str:
    return f"{size / 1_000_000:.1f} MB"


def _largest_layer(base_name: str) -> str:
    """The largest of the image's own layers, as `docker history` lists it."""
    base_layers = len(docker("history", "--quiet", base_name).split())
    rows = docker(
        "history", "--no-trunc", "--format", "{{.Size}}\t{{.CreatedBy}}", IMAGES["HEARTH_IMAGE"]
    )
    own = [row.split("\t", 1) for row in rows.splitlines()[:-base_layers]]
    if not own:
        return "no layer of its own"
    size, created_by = max(own, key=lambda row: _bytes(row[0]))
    # "/bin/sh -c #(nop) COPY dir:<digest> in /opt/hearth" reads "COPY dir in /opt/hearth".
    step = re.sub(r"^/bin/sh -c (#\(nop\) )?", "", " ".join(created_by.split()))
    step = re.sub(r"\b(file|dir):[0-9a-f]{64}", r"\1", step)
    return f"the largest, {size}: {step[:80]}"


def _bytes(text: str) -> float:
    """A size as `docker history` writes it (1.5kB, 119MB) in bytes."""
    units = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}
    for unit, factor in sorted(units.items(), key=lambda item: -len(item[0])):
        if text.endswith(unit):
            return float(text.removesuffix(unit)) * factor
    raise ValueError(text)


def report_memory(stack: Stack) -> None:
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


def run(stack: Stack, admin_password: str, backups: Path, builder_ca: str) -> None:
    started = time.monotonic()
    log(f"building the images on {os.environ['HEARTH_BASE_IMAGE']} (classic builder)")
    stack.run("build", env=CLASSIC_BUILDER)
    log(f"images built in {time.monotonic() - started:.1f} s")
    tag_build_stages(builder_ca)
    report_image_size()
    check_image_alone()

    started = time.monotonic()
    stack.run("up", "--detach", "--no-build", "--pull", "never")
    stack.wait_healthy("`up`", since=started)
    check_health(stack)
    check_hardening(stack)

    value = f"compose-check-{secrets.token_hex(4)}"
    with operator_session(stack, admin_password) as (client, token):
        answer = client.post("/config", json={"llm_model": value}, headers={"X-CSRF-Token": token})
        check(answer.status_code == 200, f"POST /config: HTTP {answer.status_code} {answer.text}")
        check(answer.json()["saved"] == ["llm_model"], f"POST /config saved {answer.json()}")
        log(f"saved llm_model={value} as the operator")
        check_backup(stack, backups, value)
        report_memory(stack)

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


def tag_build_stages(builder_ca: str) -> None:
    """Tag each builder stage the build just made (from the cache: it takes a moment), with
    the build arguments docker-compose.test.yml gives."""
    arguments = {"BASE_IMAGE": os.environ["HEARTH_BASE_IMAGE"], "CA_IMAGE": builder_ca}
    for tag, context, target in STAGES:
        command = ["docker", "build", "--quiet", "--target", target, "--tag", tag]
        command += ["--label", TEST_LABELS[0]]
        for name, value in arguments.items():
            command += ["--build-arg", f"{name}={value}"]
        result = subprocess.run(
            [*command, str(context)],
            env=CLASSIC_BUILDER,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise StackFailure(f"`{' '.join(command)}` failed: {result.stderr.strip()}")


def ca_image(directory: Path) -> str:
    """An image holding this machine's CA bundle (HEARTH_TEST_CA_BUNDLE, else SSL_CERT_FILE)
    for the builder stages (CA_IMAGE), or the base when there is none: its own bundle."""
    bundle = os.environ.get("HEARTH_TEST_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    if not bundle or not Path(bundle).is_file():
        return os.environ["HEARTH_BASE_IMAGE"]
    context = directory / "ca"
    context.mkdir()
    shutil.copyfile(bundle, context / "ca-certificates.crt")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY ca-certificates.crt /etc/ssl/certs/\n")
    result = subprocess.run(
        ["docker", "build", "--quiet", "--tag", CA_IMAGE, str(context)],
        env=CLASSIC_BUILDER,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StackFailure(f"cannot build {CA_IMAGE} from {bundle}: {result.stderr.strip()}")
    return CA_IMAGE


def main(argv: Sequence[str]) -> int:
    del argv
    if not os.environ.get("HEARTH_BASE_IMAGE"):
        log("FAILED: HEARTH_BASE_IMAGE is not set: run `make test-compose`, which sets it")
        return 1
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
        backups = directory / "backups"
        backups.mkdir()
        try:
            builder_ca = ca_image(directory)
        except StackFailure as exc:
            log(f"FAILED: {exc}")
            return 1
        port = free_port()
        variables = {
            **IMAGES,
            "HEARTH_BASE_IMAGE": os.environ["HEARTH_BASE_IMAGE"],
            "HEARTH_TEST_CA_IMAGE": builder_ca,
            "HEARTH_TEST_PROJECT": PROJECT,
            "HEARTH_TEST_SECRETS": str(secrets_dir),
            "HEARTH_BIND_ADDRESS": "127.0.0.1",
            "HEARTH_PORT": str(port),
            # The backup service writes as this process's user, into its directory.
            "BACKUP_DIR": str(backups),
            "BACKUP_USER": f"{os.getuid()}:{os.getgid()}",
        }
        env_file = directory / "env"
        env_file.write_text("".join(f"{key}={value}\n" for key, value in variables.items()))
        stack = Stack(env_file, port)
        admin_password = (secrets_dir / "admin_password").read_text().strip()

        status = 0
        try:
            stack.run("down", "--volumes", "--remove-orphans")  # what an aborted run left
            run(stack, admin_password, backups, builder_ca)
        except (StackFailure, httpx.HTTPError) as exc:
            log(f"FAILED: {exc}")
            stack.diagnose()
            status = 1
        finally:
            log("removing the stack and its volumes")
            try:
                stack.run("down", "--volumes", "--remove-orphans", "--timeout", "30")
                # Images of earlier runs that this run's builds replaced (untagged now).
                for label in TEST_LABELS:
                    docker("image", "prune", "--force", "--filter", f"label={label}")
            except StackFailure as exc:
                log(f"FAILED: {exc}")
                status = 1
    if status == 0:
        log(f"the Compose stack works; {time.monotonic() - started:.0f} s in all")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
