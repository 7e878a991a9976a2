"""The embedding pipeline: ``hearth worker`` processes embedding every pending document,
timed, with each worker's memory (main process and pool) sampled as it goes."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field

import psutil
import psycopg
from tests.support.process import HEARTH

from bench.common import MB, BenchError, Processes

SAMPLE_INTERVAL_S = 1.0
PIPELINE_TIMEOUT_S = 3600.0
STALL_TIMEOUT_S = 120.0  # no document embedded for this long: something is wrong


@dataclass
class Sample:
    seconds: float  # since the workers started
    embedded: int  # documents embedded so far
    rss: list[float]  # MB, each worker (main process and its pool children)


@dataclass
class Pipeline:
    """One run of the pipeline: its time, and the memory of each worker as it went."""

    workers: int
    documents: int
    wall_seconds: float  # from starting the workers until nothing is pending
    span_seconds: float  # from the first document stored to the last (PostgreSQL's clock)
    samples: list[Sample] = field(default_factory=list)

    def per_second(self) -> float:
        return self.documents / self.span_seconds

    def rss(self, worker: int) -> tuple[float, float, float | None]:
        """Worker ``worker``'s RSS once it was embedding, at the end, and its slope in MB
        per 10 000 documents (least squares over the samples after the first tenth)."""
        working = [s for s in self.samples if s.embedded > 0] or self.samples
        points = [(s.embedded, s.rss[worker]) for s in working if s.embedded >= self.documents / 10]
        return working[0].rss[worker], working[-1].rss[worker], _slope(points)


def _slope(points: list[tuple[int, float]]) -> float | None:
    if len(points) < 3:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread * 10_000


def _group_rss(pid: int) -> float:
    """RSS in MB of the process ``pid`` and its children."""
    try:
        process = psutil.Process(pid)
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            continue
    return total / MB


def _pending(connection: psycopg.Connection) -> int:
    # Through the partial index of pending documents: cheap however many are embedded.
    row = connection.execute("SELECT count(*) FROM documents WHERE embedded_at IS NULL").fetchone()
    return int(row[0]) if row else 0


def run_pipeline(
    processes: Processes, env: dict[str, str], url: str, workers: int, total: int
) -> Pipeline:
    """Start ``workers`` ``hearth worker --concurrency 1`` processes and wait until no
    document is pending; stop them."""
    started = time.perf_counter()
    running = [
        processes.start([HEARTH, "worker", "--concurrency", "1"], env, name=f"worker{n}")
        for n in range(workers)
    ]
    samples: list[Sample] = []
    last_progress, last_pending = started, total
    try:
        with psycopg.connect(url, autocommit=True) as connection:
            while True:
                pending = _pending(connection)
                now = time.perf_counter()
                samples.append(
                    Sample(now - started, total - pending, [_group_rss(p.pid) for p in running])
                )
                if pending == 0:
                    break
                if pending != last_pending:
                    last_progress, last_pending = now, pending
                _check_alive(processes, running)
                if now - last_progress > STALL_TIMEOUT_S or now - started > PIPELINE_TIMEOUT_S:
                    raise BenchError(
                        f"{pending} documents still pending after {now - started:.0f} s; "
                        f"a worker's output ends with:\n{processes.log_tail(running[0])}"
                    )
                if len(samples) % 30 == 0:
                    print(f"  {total - pending} of {total} embedded ...", file=sys.stderr)
                time.sleep(SAMPLE_INTERVAL_S)
            wall = time.perf_counter() - started
            row = connection.execute(
                "SELECT extract(epoch FROM max(embedded_at) - min(embedded_at)) FROM documents"
            ).fetchone()
    finally:
        for process in running:
            processes.stop(process)
    span = float(row[0]) if row and row[0] else wall
    return Pipeline(workers, total, wall, span, samples)


def _check_alive(processes: Processes, running: list[subprocess.Popen[bytes]]) -> None:
    for process in running:
        if process.poll() is not None:
            raise BenchError(
                f"a worker exited with status {process.returncode}:\n{processes.log_tail(process)}"
            )
