"""Throughput of tasks enqueued through Hearth's API, against a bare Celery client.

M=1000 tasks per side, in 2 rounds of hearth then baseline; the mean of the rounds. Hearth:
16 client threads, each with its own keep-alive connection, POST the M pings as fast as the
API takes them. Baseline: one thread calls ``send_task`` M times, then ``.get()`` on every
result. Completion time, for both sides alike: the latest ``date_done`` among the M results
(the worker writes it when it stores a result), read from Redis directly, every 50 ms, rather
than through the API, so that polling does not take CPU from the worker on a small machine.
tasks/s = M / (latest ``date_done`` - the wall clock just before the first send). Target:
>= 400 tasks/s. Also reported: the enqueue rate alone (M / time to send them all), which
tells whether the sender or the worker is the limit; the CPU seconds each process used during
the runs (psutil); and the worker's CPU time per task: at concurrency 1, with a prefetch of 1
and late acks, the main process and the pool child work on a task one after the other, which
bounds the rate.
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil
import redis
from celery import Celery
from celery.exceptions import TimeoutError as CeleryTimeout

from bench import common
from bench.common import BenchError
from bench.task_clients import REQUEST_TIMEOUT_S, TASK_NAME, ApiClient, celery_get, done_times

THROUGHPUT_TASKS = 1000  # per side and round
THROUGHPUT_ROUNDS = 2  # each round: hearth, then the baseline
API_THREADS = 16  # concurrent clients enqueueing through the API
THROUGHPUT_TIMEOUT_S = 60.0  # one run, sending and completion

TARGET_TASKS_PER_S = 400.0


@dataclass
class Throughput:
    tasks: int
    started_at: float  # Unix time just before the first send
    sent_in: float  # seconds to send them all
    last_done_at: float  # latest date_done
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds used, by process

    @property
    def tasks_per_s(self) -> float:
        return self.tasks / (self.last_done_at - self.started_at)

    @property
    def enqueued_per_s(self) -> float:
        return self.tasks / self.sent_in


def throughput_api(connect: Callable[[], ApiClient], client: redis.Redis) -> Throughput:
    """THROUGHPUT_TASKS pings POSTed by API_THREADS threads, each on its own connection."""
    deadline = time.monotonic() + THROUGHPUT_TIMEOUT_S
    task_ids = [""] * THROUGHPUT_TASKS
    slots = iter(range(THROUGHPUT_TASKS))  # shared: next() on it is atomic
    errors: list[BaseException] = []

    def sender() -> None:
        api = connect()
        try:
            while time.monotonic() < deadline and not errors:
                slot = next(slots, None)
                if slot is None:
                    return
                task_ids[slot] = api.send_ping()
        except BaseException as exc:  # noqa: BLE001 (reported by the main thread)
            errors.append(exc)
        finally:
            api.close()

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(API_THREADS)]
    started_at = time.time()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()) + REQUEST_TIMEOUT_S)
    sent_in = time.perf_counter() - started
    if errors:
        raise BenchError(f"enqueueing through the API failed: {errors[0]!r}")
    if any(thread.is_alive() for thread in threads) or not all(task_ids):
        raise BenchError(f"could not enqueue {THROUGHPUT_TASKS} tasks through the API in time")
    remaining = max(1.0, deadline - time.monotonic())
    last_done = max(done_times(client, task_ids, remaining))
    return Throughput(THROUGHPUT_TASKS, started_at, sent_in, last_done)


def throughput_celery(app: Celery, client: redis.Redis) -> Throughput:
    """THROUGHPUT_TASKS ``send_task`` calls from one thread, then ``.get()`` on each."""
    deadline = time.monotonic() + THROUGHPUT_TIMEOUT_S
    started_at = time.time()
    started = time.perf_counter()
    results = [app.send_task(TASK_NAME) for _ in range(THROUGHPUT_TASKS)]
    sent_in = time.perf_counter() - started
    try:
        for result in results:
            celery_get(app, result, max(0.1, deadline - time.monotonic()))
    except CeleryTimeout:
        raise BenchError(f"Celery's {THROUGHPUT_TASKS} tasks were not all done in time") from None
    last_done = max(done_times(client, [result.id for result in results], 5.0))
    return Throughput(len(results), started_at, sent_in, last_done)


# --- CPU time --------------------------------------------------------------------------


def watched_processes(server: int, worker: int) -> dict[str, list[int]]:
    """The pids whose CPU time the throughput runs report, by role."""
    redis_servers = []
    for process in psutil.process_iter(["name"]):
        if process.info["name"] != "redis-server":
            continue
        try:
            connections = process.net_connections(kind="tcp")
        except psutil.Error:
            continue
        if any(c.status == psutil.CONN_LISTEN and c.laddr.port == 6379 for c in connections):
            redis_servers.append(process.pid)
    try:
        pool = [child.pid for child in psutil.Process(worker).children(recursive=True)]
    except psutil.Error as exc:
        raise BenchError(f"hearth worker is gone: {exc}") from None
    return {
        "hearth serve": [server],
        "worker main": [worker],
        "worker pool": pool,
        "redis-server": redis_servers,
        "this script (clients)": [os.getpid()],
    }


def cpu_seconds(watched: dict[str, list[int]]) -> dict[str, float]:
    """User + system CPU seconds used so far by each role's processes."""
    totals: dict[str, float] = {}
    for role, pids in watched.items():
        totals[role] = 0.0
        for pid in pids:
            try:
                times = psutil.Process(pid).cpu_times()
            except psutil.Error:
                continue
            totals[role] += times.user + times.system
    return totals


def with_cpu(watched: dict[str, list[int]], run: Callable[[], Throughput]) -> Throughput:
    """``run()``, with the CPU seconds each watched process used meanwhile."""
    before = cpu_seconds(watched)
    result = run()
    after = cpu_seconds(watched)
    result.cpu = {role: after[role] - before[role] for role in watched if watched[role]}
    return result


# --- The measurement -------------------------------------------------------------------


@dataclass
class ThroughputResult:
    hearth: list[Throughput]  # by round
    baseline: list[Throughput]

    @staticmethod
    def rate(runs: list[Throughput]) -> float:
        return statistics.mean(run.tasks_per_s for run in runs)


def measure_throughput(
    connect: Callable[[], ApiClient],
    app: Celery,
    client: redis.Redis,
    server_pid: int,
    worker_pid: int,
) -> ThroughputResult:
    """THROUGHPUT_ROUNDS rounds of the API (each sender thread ``connect``s its own
    connection), then Celery's ``app``."""
    watched = watched_processes(server_pid, worker_pid)
    result = ThroughputResult([], [])
    for round_number in range(1, THROUGHPUT_ROUNDS + 1):
        print(
            f"throughput: round {round_number} of {THROUGHPUT_ROUNDS}, "
            f"{THROUGHPUT_TASKS} tasks each side ...",
            file=sys.stderr,
        )
        result.hearth.append(with_cpu(watched, lambda: throughput_api(connect, client)))
        result.baseline.append(with_cpu(watched, lambda: throughput_celery(app, client)))
    return result


# --- The report ------------------------------------------------------------------------


def missed(result: ThroughputResult) -> bool:
    return result.rate(result.hearth) < TARGET_TASKS_PER_S


def rows(result: ThroughputResult) -> list[tuple[str, ...]]:
    """The report's row: the mean rate of each side."""
    hearth_rate, baseline_rate = result.rate(result.hearth), result.rate(result.baseline)
    return [
        (
            f"throughput, M={THROUGHPUT_TASKS}, mean of {THROUGHPUT_ROUNDS}",
            f"{hearth_rate:.0f} tasks/s",
            f"{baseline_rate:.0f} tasks/s",
            f"{hearth_rate / baseline_rate:.2f}x",
            f">= {TARGET_TASKS_PER_S:g} tasks/s",
            common.met(hearth_rate >= TARGET_TASKS_PER_S),
        )
    ]


def details(result: ThroughputResult) -> list[str]:
    """The report's detail lines: each round's rates, and the CPU time each process used."""
    lines = []
    for name, runs, how in (
        ("hearth", result.hearth, f"{API_THREADS} client threads, POST /tasks/ping"),
        ("baseline", result.baseline, "one thread, send_task then .get() on each"),
    ):
        rounds = ", ".join(
            f"{run.tasks_per_s:.0f} tasks/s (enqueued at {run.enqueued_per_s:.0f}/s)"
            for run in runs
        )
        lines.append(f"  throughput {name} ({how}), by round: {rounds}")
        lines.append(f"    {_cpu_summary(runs)}")
    return lines


def _cpu_summary(runs: list[Throughput]) -> str:
    """CPU seconds by process over the runs, and the worker's CPU time per task."""
    wall = sum(run.last_done_at - run.started_at for run in runs)
    tasks = sum(run.tasks for run in runs)
    used: dict[str, float] = {}
    for run in runs:
        for role, seconds in run.cpu.items():
            used[role] = used.get(role, 0.0) + seconds
    by_role = ", ".join(f"{role} {seconds:.2f}" for role, seconds in used.items())
    main_ms = used.get("worker main", 0.0) / tasks * 1000
    pool_ms = used.get("worker pool", 0.0) / tasks * 1000
    return (
        f"CPU seconds used in {wall:.2f} s x {os.cpu_count()} CPUs: {by_role}; worker CPU per "
        f"task: main {main_ms:.2f} ms + pool child {pool_ms:.2f} ms, one after the other "
        f"(a ceiling near {1000 / (main_ms + pool_ms):.0f} tasks/s)"
        if main_ms + pool_ms > 0
        else f"CPU seconds used in {wall:.2f} s: {by_role}"
    )
