"""Real `hearth worker` processes and a Redis server the test owns."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from tests.support.process import HEARTH, json_lines

ROOT = Path(__file__).parents[2]


class WorkerProcess:
    def __init__(self, process: subprocess.Popen[str], output: Path) -> None:
        self.process = process
        self.output = output

    def logs(self) -> list[dict[str, Any]]:
        return json_lines(self.output.read_text())

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output.read_text():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"worker never logged {text!r}:\n{self.output.read_text()}")

    def kill(self) -> None:
        """SIGKILL the worker and its pool: no warm shutdown, no ack, no clean-up."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


@contextmanager
def hearth_worker(
    env: Mapping[str, str], cwd: Path, *, concurrency: int = 1
) -> Iterator[WorkerProcess]:
    """`hearth worker` with the test task modules; ready when Celery says so."""
    output = cwd / f"worker-{time.monotonic_ns()}.log"
    full_env = {
        **env,
        "PYTHONPATH": str(ROOT),
        "WORKER_IMPORTS": "tests.support.tasks",
    }
    with output.open("w") as sink:
        process = subprocess.Popen(
            [HEARTH, "worker", "--concurrency", str(concurrency)],
            env=full_env,
            cwd=cwd,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group, so a test can kill the pool too
        )
    worker = WorkerProcess(process, output)
    try:
        worker.wait_for_log(" ready.")
        yield worker
    finally:
        # SIGTERM to the main process only, as systemd's KillMode=mixed, Docker and
        # Kubernetes stop it: a pool child sent SIGTERM too, mid-task, can leave the warm
        # shutdown waiting for it. The whole group is killed if it does not end in time.
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


class OwnedRedis:
    """A redis-server on a port of its own, which the test may stop and start again."""

    def __init__(self, port: int, directory: Path, password: str | None = None) -> None:
        self.port = port
        self.directory = directory
        self.password = password
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if shutil.which("redis-server") is None:
            raise AssertionError("redis-server is not installed: apt-get install redis-server")
        options = {"port": str(self.port), "bind": "127.0.0.1", "save": "", "appendonly": "no"}
        options["dir"] = str(self.directory)
        if self.password:
            options["requirepass"] = self.password
        arguments = [part for key, value in options.items() for part in (f"--{key}", value)]
        self.process = subprocess.Popen(
            ["redis-server", *arguments],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                time.sleep(0.05)
            else:
                return
        raise AssertionError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
