"""Each task run, recorded by the pool child that ran it as the run ends: one INSERT … ON
CONFLICT per run into ``task_runs`` (the Tasks page's recent tasks and failures), written by
a thread of the child, on a connection of its own, in a batch every ``FLUSH_SECONDS``.

The record is a convenience, not the task's outcome (Celery's result backend has that): the
task only appends its run to a list, the write happens beside the next tasks, without waiting
for the disk (``synchronous_commit = off``), and a database that fails it never reaches a
task. After a failure the child stops writing for ``PAUSE_SECONDS``; the runs missed meanwhile
are counted in the next log line. A child killed outright loses the runs of its last
``FLUSH_SECONDS``; one that stops (a warm shutdown) writes them first.

Arguments are kept (for Retry) only as JSON of at most ``MAX_ARGUMENTS_BYTES`` and only when
no keyword looks like a secret: Hearth's tasks take ids and flags.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from celery.signals import (
    task_failure,
    task_postrun,
    task_prerun,
    task_retry,
    worker_process_init,
    worker_process_shutdown,
)

from hearth.kit.text import first_line
from hearth.kit.urls import libpq_url
from hearth.log import get_logger
from hearth.log.redaction import API_TOKEN, API_TOKEN_MASK, SENSITIVE_KEY
from hearth.worker import repository

if TYPE_CHECKING:
    import psycopg

log = get_logger(__name__)

MAX_ARGUMENTS_BYTES = 4096
MAX_ERROR_CHARS = 1000
# Ended runs are written by a thread of the child, every FLUSH_SECONDS, in one transaction:
# the task itself only appends to a list. At most MAX_PENDING wait (a database away). With
# nothing to write, the thread sleeps until a run ends (an idle worker does not wake for it).
FLUSH_SECONDS = 0.5
MAX_PENDING = 1000
PAUSE_SECONDS = 10.0
CONNECT_TIMEOUT_SECONDS = 2
STATEMENT_TIMEOUT_MS = 2000


@dataclass
class _Started:
    started_at: datetime
    clock: float
    arguments: str | None
    error: str | None = None


class RunRecorder:
    """The pool child's side: what each running task started with, the runs ended since
    the last write, and the thread and connection that write them (started on first use,
    after the fork)."""

    def __init__(self, database_url: str, node: str) -> None:
        self.database_url = database_url
        self.node = node
        self.running: dict[str, _Started] = {}
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()  # the pending runs, between the task and the writer
        self._wanted = threading.Event()  # set when a run is pending
        self._flushing = threading.Lock()  # one write at a time: the writer's or the last
        self._writer: threading.Thread | None = None
        self._connection: psycopg.Connection | None = None
        self._paused_until = 0.0
        self.missed = 0  # runs not recorded since the last write that succeeded

    def started(self, task_id: str, args: object, kwargs: object) -> None:
        """Note a run's start: its time and its arguments, as JSON when they may be kept."""
        self.running[task_id] = _Started(
            datetime.now(UTC), time.perf_counter(), arguments_json(args, kwargs)
        )

    def failed(self, task_id: str, error: BaseException | str | None) -> None:
        """Note why a run failed (or asked to be retried)."""
        current = self.running.get(task_id)
        if current is not None and error is not None:
            current.error = describe(error)

    def ended(self, task_id: str, name: str, state: str | None) -> None:
        """Hand the run that just ended to the writer; never raises, never waits."""
        current = self.running.pop(task_id, None)
        if current is None:
            return
        run = {
            "task_id": task_id,
            "name": name,
            "state": state or "UNKNOWN",
            "arguments": current.arguments,
            "worker": self.node,
            "started_at": current.started_at,
            "finished_at": datetime.now(UTC),
            "runtime_seconds": time.perf_counter() - current.clock,
            "error": current.error,
        }
        with self._lock:
            if len(self._pending) < MAX_PENDING:
                self._pending.append(run)
            else:  # the database has been away a while: the newest go unrecorded
                self.missed += 1
        self._wanted.set()
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_often, name="task-runs")
            self._writer.daemon = True  # the child's exit flushes (``worker_process_shutdown``)
            self._writer.start()

    def _write_often(self) -> None:
        while True:
            self._wanted.wait()
            time.sleep(FLUSH_SECONDS)  # the runs ending meanwhile go in the same write
            self._wanted.clear()
            self.flush()

    def flush(self) -> None:
        """Write the runs ended since the last write, in one transaction; never raises."""
        with self._flushing:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return
            if time.monotonic() < self._paused_until:
                self.missed += len(batch)
                return
            try:
                repository.record_runs(self._connect(), batch)
            except Exception as exc:  # noqa: BLE001 (psycopg's errors are many; none may reach a task)
                self.missed += len(batch)
                self._paused_until = time.monotonic() + PAUSE_SECONDS
                self.close()
                log.warning(
                    "task_run_not_recorded",
                    reason=first_line(exc),
                    missed=self.missed,
                    pause_seconds=PAUSE_SECONDS,
                )
                return
            if self.missed:
                log.info("task_runs_recorded_again", missed=self.missed)
                self.missed = 0

    def _connect(self) -> psycopg.Connection:
        if self._connection is None or self._connection.closed:
            import psycopg

            self._connection = psycopg.connect(
                libpq_url(self.database_url),
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                options=f"-c synchronous_commit=off -c statement_timeout={STATEMENT_TIMEOUT_MS}",
            )
        return self._connection

    def close(self) -> None:
        """Drop the connection (the next run opens another)."""
        if self._connection is not None:
            # A broken connection may fail to close too; it is dropped either way.
            with suppress(Exception):
                self._connection.close()
            self._connection = None


def arguments_json(args: object, kwargs: object) -> str | None:
    """``{"args", "kwargs"}`` as JSON text, or None when it may not be kept: too large, not
    JSON, or a keyword that looks like a secret."""
    kwargs = kwargs or {}
    if not isinstance(kwargs, dict) or any(SENSITIVE_KEY.search(str(key)) for key in kwargs):
        return None
    try:
        text = json.dumps({"args": list(args or ()), "kwargs": kwargs}, separators=(",", ":"))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    if len(text.encode()) > MAX_ARGUMENTS_BYTES or API_TOKEN.search(text):
        return None
    return text


def describe(error: BaseException | str) -> str:
    """A failure's reason: the error's type and first line, URLs and API tokens masked."""
    text = first_line(error) if isinstance(error, BaseException) else error.strip()
    if isinstance(error, BaseException):
        text = f"{type(error).__name__}: {text}"
    return API_TOKEN.sub(API_TOKEN_MASK, text)[:MAX_ERROR_CHARS]


_recorder: RunRecorder | None = None
_settings: tuple[str, str] = ("", "")


def install(database_url: str, node: str) -> None:
    """Record every run in the pool's children from now on (connected before the fork)."""
    global _settings  # noqa: PLW0603 (the database and the worker's name, set once before the fork)
    _settings = (database_url, node)
    worker_process_init.connect(_start_child, weak=False)
    worker_process_shutdown.connect(_stop_child, weak=False)
    task_prerun.connect(_task_started, weak=False)
    task_failure.connect(_task_failed, weak=False)
    task_retry.connect(_task_retried, weak=False)
    task_postrun.connect(_task_ended, weak=False)


def _start_child(**_kwargs: object) -> None:
    global _recorder  # noqa: PLW0603 (one per child process, made after the fork)
    _recorder = RunRecorder(*_settings)


def _stop_child(**_kwargs: object) -> None:
    if _recorder is not None:
        _recorder.flush()
        _recorder.close()


def _task_started(
    task_id: str | None = None,
    args: object = None,
    kwargs: object = None,
    **_kwargs: object,
) -> None:
    if _recorder is not None and task_id is not None:
        _recorder.started(task_id, args, kwargs)


def _task_failed(
    task_id: str | None = None, exception: BaseException | None = None, **_kwargs: object
) -> None:
    if _recorder is not None and task_id is not None:
        _recorder.failed(task_id, exception)


def _task_retried(request: Any = None, reason: object = None, **_kwargs: object) -> None:  # noqa: ANN401 (Celery's request)
    task_id = getattr(request, "id", None)
    if _recorder is not None and isinstance(task_id, str):
        error = reason if isinstance(reason, BaseException) else str(reason or "retried")
        _recorder.failed(task_id, error)


def _task_ended(
    task_id: str | None = None,
    task: Any = None,  # noqa: ANN401 (Celery's task)
    state: str | None = None,
    **_kwargs: object,
) -> None:
    if _recorder is not None and task_id is not None and task is not None:
        _recorder.ended(task_id, str(task.name), state)
