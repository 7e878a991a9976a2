"""A Debian machine with systemd as PID 1, in a container on the real Docker engine, for
tests/systemd/in_container.py: the image (built once from tests/systemd/Dockerfile on the
Compose proof's debootstrapped base, cached by a tag that names its recipe), the container's
life (boot, reboot, removal), commands inside it, and the figures the run reports at its end.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.support.paths import ROOT

HERE = Path(__file__).parent
BASE_IMAGE = os.environ.get("HEARTH_BASE_IMAGE", "hearth-test/debian-python:bookworm-1")
IMAGE_REPOSITORY = "hearth-systemd-test/debian-systemd"
NAME_PREFIX = "hearth-systemd-test"
# Where the containers find the checkout, and install.sh's downloads: a uv cache of the
# test's own on the host, kept between runs as the image is (Docker creates it).
SOURCE_MOUNT = "/src"
UV_CACHE = Path(os.environ.get("HEARTH_SYSTEMD_TEST_UV_CACHE", "/var/tmp/hearth-systemd-test/uv"))
UV_CACHE_MOUNT = "/var/cache/hearth-test-uv"
CA_MOUNT = "/srv/hearth-test/ca.pem"
# `docker stop` waits this long for systemd's shutdown: the worker's TimeoutStopSec (90 s)
# and some.
STOP_SECONDS = 120

# "label: value" lines that tests/systemd/conftest.py prints at the end of the run.
FIGURES: list[str] = []


class MachineError(AssertionError):
    """A step failed; the message carries what the machine said."""


def figure(label: str, value: float, unit: str = " s") -> None:
    FIGURES.append(f"{label}: {value:.1f}{unit}")


def docker(*args: str, check: bool = True, timeout: float = 300) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        details = (result.stdout + result.stderr).strip()
        raise MachineError(f"`docker {' '.join(args[:3])} ...` failed:\n{details}")
    return result.stdout


def ensure_image() -> str:
    """The systemd image, built when no image of this recipe and base exists yet."""
    base_id = docker("image", "inspect", "--format", "{{.Id}}", BASE_IMAGE).strip()
    recipe = (HERE / "Dockerfile").read_bytes() + base_id.encode()
    tag = f"{IMAGE_REPOSITORY}:{hashlib.sha256(recipe).hexdigest()[:12]}"
    found = subprocess.run(["docker", "image", "inspect", tag], capture_output=True, timeout=30)
    if found.returncode == 0:
        return tag
    started = time.monotonic()
    # The host's network: apt reaches this machine's Debian mirror as the host does.
    built = subprocess.run(
        ["docker", "build", "--quiet", "--network", "host", "--build-arg",
         f"BASE_IMAGE={BASE_IMAGE}", "--tag", tag, "-"],
        input=(HERE / "Dockerfile").read_text(),
        capture_output=True,
        text=True,
        timeout=900,
    )  # fmt: skip
    if built.returncode != 0:
        raise MachineError(f"building {tag} failed:\n{built.stdout}{built.stderr}")
    figure("systemd image built", time.monotonic() - started)
    # Older recipes of this test's own image: removed, unless a running test still uses one.
    for old in docker("image", "ls", IMAGE_REPOSITORY, "--format", "{{.Tag}}").split():
        if old != tag.rsplit(":", 1)[1]:
            docker("image", "rm", f"{IMAGE_REPOSITORY}:{old}", check=False)
    return tag


def source_snapshot(directory: Path) -> Path:
    """A copy of what install.sh installs from: other work on the checkout during the test
    must not look like a change between two runs."""
    directory.mkdir(exist_ok=True)
    for name in ("pyproject.toml", "uv.lock", "requirements.txt", "README.md", "Makefile"):
        shutil.copy(ROOT / name, directory / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("src", "scripts", "deploy/systemd"):
        shutil.copytree(ROOT / name, directory / name, ignore=ignore)
    return directory


def _ca_bundle() -> Path | None:
    """The CA bundle of the host, for PyPI through a TLS-intercepting proxy: mounted read-only
    into the test's containers only, never into an image."""
    path = os.environ.get("SSL_CERT_FILE")
    return Path(path).resolve() if path and Path(path).is_file() else None


class Machine:
    """One container booted into systemd, with a read-only copy of the checkout at /src."""

    def __init__(self, image: str, mode: str, source: Path) -> None:
        self.image = image
        self.name = f"{NAME_PREFIX}-{mode}-{uuid.uuid4().hex[:8]}"
        self.source = source

    def boot(self) -> float:
        """Start the container and wait until systemd has booted; the seconds it took."""
        ca = _ca_bundle()
        started = time.monotonic()
        docker(
            "run", "--detach", "--name", self.name,
            # systemd mounts and makes namespaces for each unit's sandbox; nothing more.
            "--cap-add", "SYS_ADMIN",
            # The unit's own system-call filter must be the only one, as on a host.
            "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
            # systemd makes a cgroup per unit in the container's part of the host's tree:
            # MemoryMax= is a real limit.
            "--cgroupns", "host", "--volume", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
            "--tmpfs", "/run", "--tmpfs", "/run/lock",
            # The host's PostgreSQL and Redis on 127.0.0.1, PyPI as the host reaches it.
            "--network", "host",
            "--volume", f"{self.source}:{SOURCE_MOUNT}:ro",
            "--volume", f"{UV_CACHE}:{UV_CACHE_MOUNT}",
            *(["--volume", f"{ca}:{CA_MOUNT}:ro"] if ca else []),
            self.image,
        )  # fmt: skip
        self.wait_booted()
        return time.monotonic() - started

    def wait_booted(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            result = self.run("systemctl", "is-system-running", "--wait", check=False)
            state = result.stdout.strip()
            if state in ("running", "degraded"):
                return
            time.sleep(0.2)
        raise MachineError(f"systemd did not finish booting in {timeout:.0f} s: {state!r}")

    def run(
        self,
        *command: str,
        check: bool = True,
        stdin: str | None = None,
        environment: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [
                "docker", "exec", "--interactive",
                *(f"--env={key}={value}" for key, value in (environment or {}).items()),
                self.name, *command,
            ],
            input=stdin or "",
            capture_output=True,
            text=True,
            timeout=600,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise MachineError(
                f"`{' '.join(command)}` exited {result.returncode} in {self.name}:\n"
                f"{result.stdout}{result.stderr}"
            )
        return result

    def sh(self, script: str, *, check: bool = True) -> str:
        return self.run("sh", "-euc", script, check=check).stdout

    def install(self, *arguments: str) -> str:
        """deploy/systemd/install.sh, run as root would run it; its report."""
        environment = {"UV_CACHE_DIR": UV_CACHE_MOUNT, "UV_LINK_MODE": "copy"}
        if _ca_bundle():
            environment |= {"SSL_CERT_FILE": CA_MOUNT, "PIP_CERT": CA_MOUNT}
        script = f"{SOURCE_MOUNT}/deploy/systemd/install.sh"
        return self.run(script, *arguments, environment=environment).stdout

    def read(self, path: str) -> str:
        return self.run("cat", path).stdout

    def write(self, path: str, text: str) -> None:
        """Replace the file's content, keeping its owner and mode (as an editor would)."""
        self.run("sh", "-c", f"cat > {path}", stdin=text)

    def probe(self, *units: str) -> dict[str, Any]:
        """probe.py's report on ``units``: state, memory, exposure, each process' sandbox."""
        report = self.run("python3", "-", *units, stdin=(HERE / "probe.py").read_text())
        result: dict[str, Any] = json.loads(report.stdout)
        return result

    def journal(self, lines: int = 60) -> str:
        """The units' journal since this boot (systemd's lines about them included)."""
        return self.run(
            "journalctl", "--no-pager", "-o", "cat", "-n", str(lines), "-u", "hearth", "-u",
            "hearth-worker", check=False,
        ).stdout  # fmt: skip

    def wait_ready(self, port: int, timeout: float = 180) -> float:
        """Poll /readyz from the host until it answers 200; the seconds it took."""
        started = time.monotonic()
        last = "no answer"
        while time.monotonic() - started < timeout:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
            except httpx.TransportError as exc:
                last = repr(exc)
            else:
                if response.status_code == 200:
                    return time.monotonic() - started
                last = f"{response.status_code} {response.text[:300]}"
            time.sleep(0.2)
        raise MachineError(
            f"/readyz not 200 within {timeout:.0f} s (last: {last}). Journal:\n{self.journal()}"
        )

    def wait_worker(self, port: int, timeout: float = 90) -> dict[str, Any]:
        """Poll /health until the worker component is ok; that component."""
        deadline = time.monotonic() + timeout
        worker: dict[str, Any] = {}
        while time.monotonic() < deadline:
            health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()
            worker = health["checks"]["worker"]
            if worker["status"] == "ok":
                return worker
            time.sleep(0.5)
        raise MachineError(f"the worker is not ok after {timeout:.0f} s: {worker}")

    def shut_down(self) -> float:
        """A clean shutdown: systemd stops every unit; the seconds it took."""
        started = time.monotonic()
        docker("stop", "--time", str(STOP_SECONDS), self.name, timeout=STOP_SECONDS + 60)
        return time.monotonic() - started

    def start(self) -> None:
        """Boot the machine again (after shut_down)."""
        docker("start", self.name)

    def remove(self) -> None:
        # A clean shutdown first: systemd removes the cgroups it made in the host's tree.
        docker("stop", "--time", "30", self.name, check=False, timeout=120)
        docker("rm", "--force", self.name, check=False)
