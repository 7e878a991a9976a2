"""A real nginx (Debian's package, installed by ``scripts/ensure-nginx.sh``) as the reverse
proxy in front of a Hearth under test: a private instance on loopback, with its own
configuration, logs and temporary files under a directory of the test's. It never uses or
changes the system's service or /etc/nginx."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.services import free_port

NGINX = os.environ.get("HEARTH_NGINX", "/usr/sbin/nginx")
START_SECONDS = 15.0

# What the deployment guides tell an operator to write: the client's address appended to
# whatever X-Forwarded-For the client sent, which Hearth reads from the right.
_CONFIG = """\
daemon off;
master_process off;
worker_processes 1;
pid {home}/nginx.pid;
error_log {home}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {home}/access.log;
    client_body_temp_path {home}/client_body;
    proxy_temp_path {home}/proxy;
    fastcgi_temp_path {home}/fastcgi;
    uwsgi_temp_path {home}/uwsgi;
    scgi_temp_path {home}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""


@dataclass(frozen=True)
class Nginx:
    url: str
    home: Path


@contextmanager
def nginx_proxy(upstream_port: int, home: Path) -> Iterator[Nginx]:
    """A private nginx on 127.0.0.1, passing every request to ``upstream_port``; stopped
    on exit."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = home / "nginx.conf"
    config.write_text(_CONFIG.format(home=home, port=port, upstream=upstream_port))
    output = (home / "nginx.out").open("w")
    process = subprocess.Popen(
        [NGINX, "-e", str(home / "error.log"), "-p", str(home), "-c", str(config)],
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_port(port, process, home)
        yield Nginx(f"http://127.0.0.1:{port}", home)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        output.close()


def _wait_for_port(port: int, process: subprocess.Popen[bytes], home: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (home / "error.log").read_text() if (home / "error.log").exists() else ""
            raise AssertionError(f"nginx exited with {process.returncode}:\n{log}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            time.sleep(0.05)
        else:
            return
    raise AssertionError(f"nginx did not listen on 127.0.0.1:{port} in {START_SECONDS:g} s")


StartNginx = Callable[[int, Path], AbstractContextManager[Nginx]]


@pytest.fixture(scope="session")
def start_nginx() -> StartNginx:
    """``start_nginx(upstream_port, home)``: nginx in front of that port, for a ``with``.
    conftest.py marks the tests that use it ``nginx``."""
    return nginx_proxy
