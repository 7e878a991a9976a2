"""The worker that ``hearth serve --with-worker`` runs beside the server, as a child process
it starts again, with a backoff, whenever it exits (a crash, or the embedded database lost).

The server's ``worker`` health check asks it how long ago the worker running now was
started (``supervised_start_age``): a worker that has not reported yet is then shown as
starting, not as missing, for the first moments of every start.
"""

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
        self._started_at = 0.0  # monotonic: when the process in ``_process`` was started
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # ``stop`` never misses a process just started
        self._thread = threading.Thread(target=self._run, name="worker-child", daemon=True)

    def start(self) -> None:
        """Start the worker and the thread that restarts it; from now on it is the worker this
        process supervises (``supervised_start_age``)."""
        global _supervised  # noqa: PLW0603 (one supervised worker per process, see below)
        self._spawn()
        self._thread.start()
        _supervised = self

    def start_age(self) -> float | None:
        """Seconds since the worker running now was started; None while none runs (it
        exited and waits to be started again, or was stopped)."""
        with self._lock:
            process, started_at = self._process, self._started_at
        if process is None or process.poll() is not None:
            return None
        return time.monotonic() - started_at

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
        global _supervised  # noqa: PLW0603 (one supervised worker per process, see below)
        if _supervised is self:
            _supervised = None

    def _spawn(self) -> None:
        with self._lock:
            if not self._stopping.is_set():
                self._process = subprocess.Popen(self.command)
                self._started_at = time.monotonic()

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


# The worker this process supervises. The CLI starts it before the web app exists, and the
# app's health check is built by the runtime, which the CLI does not reach: the check asks
# here instead. A process runs at most one (``hearth serve --with-worker``).
_supervised: WorkerChild | None = None


def supervised_start_age() -> float | None:
    """Seconds since the worker this process supervises was last started, while it runs;
    None when this process supervises none (``hearth serve`` alone, ``hearth check``)."""
    child = _supervised
    return child.start_age() if child is not None else None
