"""The worker that ``hearth serve --with-worker`` runs beside the server, as a child process
it starts again, with a backoff, whenever it exits (a crash, or the embedded database lost)."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Sequence

from hearth.log import get_logger

log = get_logger(__name__)

# Between restarts: 1 s, doubling, at most this long; back to 1 s after a worker that ran
# this long (STEADY_SECONDS), so one crash a day is not met with a long wait.
MAX_RESTART_DELAY_SECONDS = 30.0
STEADY_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 60.0


class WorkerChild:
    """Run ``command`` until ``stop``; start it again each time it exits by itself."""

    def __init__(self, command: Sequence[str]) -> None:
        self.command = list(command)
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # ``stop`` never misses a process just started
        self._thread = threading.Thread(target=self._run, name="worker-child", daemon=True)

    def start(self) -> None:
        """Start the worker and the thread that restarts it."""
        self._spawn()
        self._thread.start()

    def stop(self) -> None:
        """SIGTERM the worker (Celery finishes its running tasks), wait, restart no more."""
        with self._lock:
            self._stopping.set()
            process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._thread.is_alive():
            self._thread.join()

    def _spawn(self) -> None:
        with self._lock:
            if not self._stopping.is_set():
                self._process = subprocess.Popen(self.command)

    def _run(self) -> None:
        delay = 1.0
        while True:
            process = self._process
            started = time.monotonic()
            status = process.wait() if process is not None else None
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= STEADY_SECONDS:
                delay = 1.0
            log.warning("worker_exited", exit_status=status, restart_in_seconds=delay)
            if self._stopping.wait(delay):
                return
            self.restarts += 1
            self._spawn()
            log.info("worker_restarted", restarts=self.restarts)
            delay = min(delay * 2, MAX_RESTART_DELAY_SECONDS)
