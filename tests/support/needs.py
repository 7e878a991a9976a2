"""What each marker of a slow test needs from this machine, how to tell that it is missing,
and how to get it. conftest.py asks only about the markers of the tests selected to run."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.browser import CHROMIUM
from tests.support.mail import missing_programs as missing_dovecot
from tests.support.nginx import NGINX
from tests.support.prometheus import PROMETHEUS, PROMTOOL
from tests.support.services import POSTGRES_ADMIN_URL, REDIS_URL, unreachable


@dataclass(frozen=True)
class Need:
    what: str
    missing: Callable[[], str | None]
    remedy: str


def _no_program(path: str) -> Callable[[], str | None]:
    def missing() -> str | None:
        found = Path(path).is_file() and os.access(path, os.X_OK)
        return None if found else f"{path} is not there"

    return missing


def _not_on_path(name: str) -> Callable[[], str | None]:
    return lambda: None if shutil.which(name) else f"{name} is not on PATH"


def _no_docker_engine() -> str | None:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    parts = urlsplit(host)
    if parts.scheme != "unix":
        return unreachable(f"tcp://{parts.netloc}", 2375)
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(parts.path)
        except OSError as exc:
            return f"no engine at {parts.path} ({exc})"
    return None


# Markers that need nothing from outside the virtualenv have no entry: `worker` (the
# processes it starts find their broker through `postgres`, `redis` or embedded PostgreSQL).
NEEDS = {
    "postgres": Need(
        "PostgreSQL (TEST_POSTGRES_URL)",
        lambda: unreachable(POSTGRES_ADMIN_URL, 5432),
        "make services (scripts/ensure-postgres.sh installs Debian's postgresql and starts it "
        "as root, or names the command), or set TEST_POSTGRES_URL to a server that trusts the "
        "connecting user",
    ),
    "redis": Need(
        "Redis (TEST_REDIS_URL)",
        lambda: unreachable(REDIS_URL, 6379),
        "make services (scripts/ensure-redis.sh installs Debian's redis-server and starts it "
        "as root, or names the command), or set TEST_REDIS_URL",
    ),
    "browser": Need(
        f"Chromium at {CHROMIUM} (HEARTH_CHROMIUM)",
        _no_program(CHROMIUM),
        "make browser (scripts/ensure-chromium.sh installs Debian's chromium as root), or set "
        "HEARTH_CHROMIUM; never `playwright install`",
    ),
    "mail": Need("Dovecot and openssl", missing_dovecot, "make mail-server"),
    "nginx": Need(
        f"nginx at {NGINX} (HEARTH_NGINX)",
        _no_program(NGINX),
        "make reverse-proxy (scripts/ensure-nginx.sh installs Debian's nginx as root)",
    ),
    "prometheus": Need(
        f"Prometheus at {PROMETHEUS} and promtool at {PROMTOOL}",
        lambda: _no_program(PROMETHEUS)() or _no_program(PROMTOOL)(),
        "make prometheus (scripts/ensure-prometheus.sh installs Debian's prometheus as root)",
    ),
    "systemd": Need(
        "systemd-analyze",
        _not_on_path("systemd-analyze"),
        "make validators (scripts/ensure-validators.sh installs Debian's systemd as root)",
    ),
    "docker": Need(
        "a Docker engine (DOCKER_HOST)",
        _no_docker_engine,
        "make test-compose starts one as root (scripts/test-compose.sh), or start dockerd",
    ),
}


def missing_needs(markers: Iterable[str]) -> list[str]:
    """For each of ``markers`` whose need this machine lacks: what, why, and the remedy."""
    problems = []
    for marker in sorted(set(markers) & NEEDS.keys()):
        need = NEEDS[marker]
        if reason := need.missing():
            problems.append(
                f"{need.what} [{marker}]: {reason.rstrip('.')}.\n    fix: {need.remedy}"
            )
    return problems
