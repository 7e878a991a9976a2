"""A worker's task and LLM metrics, with a prefork pool: counted in the pool's children,
folded by the main process into a snapshot its heartbeat carries, exported by the web app's
``/metrics`` (one scrape target, one token: docs/metrics.md says why).

The children record into prometheus_client's multiprocess files, in a directory private to
this worker (``PROMETHEUS_MULTIPROC_DIR``, made fresh at start and removed at exit, with any
left by workers that were killed). The main process reads them at each heartbeat; the files
of a child that was replaced are added into one archive file and removed, so counts survive
the child and the directory holds one file per live child and kind, however long it runs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from celery.signals import (
    task_failure,
    task_postrun,
    task_prerun,
    task_retry,
    task_success,
    worker_process_init,
)

from hearth.log import get_logger
from hearth.metrics import snapshot

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from prometheus_client import Counter, Histogram

    from hearth.metrics.registry import LLMMetrics

log = get_logger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DIRECTORY_PREFIX = "hearth-worker-metrics-"
ARCHIVE = "archive"  # the file name's process part for the counts of children gone
# Hearth's tasks take from milliseconds (a ping) to a minute or two (a batch on a slow model).
TASK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


def prepare_directory() -> Path:
    """Make this worker's private metrics directory and name it in the environment, before
    the pool is forked; remove the directories of workers no longer running."""
    base = Path(tempfile.gettempdir())
    for old in base.glob(f"{DIRECTORY_PREFIX}*"):
        pid = old.name.removeprefix(DIRECTORY_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    directory = Path(tempfile.mkdtemp(prefix=f"{DIRECTORY_PREFIX}{os.getpid()}-", dir=base))
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory


def remove_directory(directory: Path) -> None:
    """Remove the metrics directory: the worker is stopping."""
    shutil.rmtree(directory, ignore_errors=True)
    os.environ.pop(MULTIPROC_ENV, None)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


class ChildMetrics:
    """What a pool child records: its tasks, and its calls of the LLM."""

    def __init__(self, node: str) -> None:
        from prometheus_client import Counter, Histogram, values

        from hearth.metrics.registry import LLMMetrics

        # Multiprocess values whatever imported prometheus_client first: the environment
        # names the directory (prepare_directory), read again here, after the fork.
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        self.node = node
        self.tasks: Counter = Counter(
            "hearth_tasks",
            "Tasks run, by task name, outcome and worker",
            ["task", "outcome", "worker"],
            registry=None,
        )
        self.duration: Histogram = Histogram(
            "hearth_task_duration_seconds",
            "How long each task ran, by task name and worker",
            ["task", "worker"],
            buckets=TASK_BUCKETS,
            registry=None,
        )
        self.llm: LLMMetrics = LLMMetrics.create(None, node)
        self.started: dict[str, float] = {}


_child: ChildMetrics | None = None
_node = ""


def llm_recorder() -> LLMMetrics | None:
    """Where this process's LLM calls are counted: the pool child's metrics; None outside
    a worker's child (or with METRICS_ENABLED=false)."""
    return _child.llm if _child is not None else None


def install(node: str) -> None:
    """Count tasks in the pool's children from now on (connected before the fork)."""
    # Imported here, before the fork, so the children share its pages instead of each
    # importing it again.
    import prometheus_client.multiprocess  # noqa: F401

    global _node  # noqa: PLW0603 (the worker's name, set once before the fork)
    _node = node
    worker_process_init.connect(_start_child, weak=False)
    task_prerun.connect(_task_started, weak=False)
    task_postrun.connect(_task_ended, weak=False)
    task_success.connect(_counter("succeeded"), weak=False)
    task_failure.connect(_counter("failed"), weak=False)
    task_retry.connect(_counter("retried"), weak=False)


def _start_child(**_kwargs: object) -> None:
    global _child  # noqa: PLW0603 (one per child process, made after the fork)
    if os.environ.get(MULTIPROC_ENV):
        _child = ChildMetrics(_node)


def _task_started(task_id: str | None = None, **_kwargs: object) -> None:
    if _child is not None and task_id is not None:
        _child.started[task_id] = time.perf_counter()


def _task_ended(task_id: str | None = None, task: Any = None, **_kwargs: object) -> None:  # noqa: ANN401 (Celery's task)
    if _child is None or task_id is None or task is None:
        return
    started = _child.started.pop(task_id, None)
    if started is not None:
        _child.duration.labels(task.name, _child.node).observe(time.perf_counter() - started)


def _counter(outcome: str) -> Callable[..., None]:
    def count(sender: Any = None, **_kwargs: object) -> None:  # noqa: ANN401 (Celery's task)
        if _child is not None and sender is not None:
            _child.tasks.labels(sender.name, outcome, _child.node).inc()

    return count


class Folder:
    """The main process's view of its children's metrics: one snapshot of them all."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def snapshot(self, live: Iterable[int]) -> list[dict[str, Any]]:
        """Every child's counts summed (those of children gone included), as JSON for the
        heartbeat; files of children no longer running are folded into the archive first."""
        from prometheus_client.multiprocess import MultiProcessCollector

        self._archive_gone(set(live))
        families = MultiProcessCollector.merge(self._files(), accumulate=True)  # type: ignore[no-untyped-call]
        return snapshot.encode(families)

    def _files(self) -> list[str]:
        return sorted(str(path) for path in self.directory.glob("*.db"))

    def _archive_gone(self, live: set[int]) -> None:
        from prometheus_client.mmap_dict import MmapedDict

        for path in self.directory.glob("*.db"):
            kind, _, owner = path.stem.partition("_")
            if not owner.isdigit() or int(owner) in live or _running(int(owner)):
                continue
            if kind not in ("counter", "histogram"):
                path.unlink(missing_ok=True)  # children record no gauge
                continue
            # prometheus_client is untyped here: its mmap files, read and written as it does.
            archive = MmapedDict(str(self.directory / f"{kind}_{ARCHIVE}.db"))  # type: ignore[no-untyped-call]
            try:
                gone = MmapedDict.read_all_values_from_file(str(path))  # type: ignore[no-untyped-call]
                for key, value, timestamp, _position in gone:
                    total, _ = archive.read_value(key)  # type: ignore[no-untyped-call]
                    archive.write_value(key, total + value, timestamp)  # type: ignore[no-untyped-call]
            finally:
                archive.close()  # type: ignore[no-untyped-call]
            with suppress(FileNotFoundError):
                path.unlink()
            log.debug("worker_metrics_archived", pid=int(owner))
