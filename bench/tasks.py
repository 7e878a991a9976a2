"""Hearth's task-queue benchmark: latency and throughput of a task sent through the HTTP API,
and the idle memory of ``hearth worker``, each printed next to a baseline measured in the
same run on the same machine. It reports; it asserts nothing.

Set-up: a fresh database ``hearth_bench_tasks_<random>`` on the PostgreSQL at 127.0.0.1:5432
(user postgres), migrated with ``hearth migrate`` and dropped at the end; Redis at
127.0.0.1:6379, database 14, flushed before and after (the test suite's servers, unless
TEST_POSTGRES_URL or TEST_REDIS_URL name others: ``tests.support.services``).
``hearth serve`` (one Uvicorn process) and ``hearth worker --concurrency 1`` (a prefork pool
with one child) run with LOG_LEVEL WARNING and JSON logs. Both sides of every comparison use
that same worker process, so the ratios isolate what Hearth's API adds to a bare Celery
client.

What it measures, and against what, is told where it is measured: ``bench.task_latency``,
``bench.task_throughput`` and ``bench.worker_memory`` (the bare worker runs first, before
Hearth's starts).

``hearth serve`` is started and stopped by the test suite's helper
(``tests.support.process.hearth_server``: SIGTERM, then SIGKILL after 30 s); every other
process is started in its own session and stopped as a whole process group: SIGTERM, then
SIGKILL after 20 s; both also on error, Ctrl-C or SIGTERM. Every loop is bounded in count and
time. Traffic goes to 127.0.0.1 only. Exit status: 0 when it ran (whether or not a target was
met), 1 when it could not run.

Usage: ``make bench`` (after ``bench.server``) or ``.venv/bin/python -m bench.tasks``.
"""

from __future__ import annotations

import gc
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import redis
from tests.support.process import HEARTH, clean_environment, hearth_server, run_hearth
from tests.support.services import free_port

from bench import bytecode, common, task_latency, task_throughput, worker_memory
from bench.common import LOOPBACK, BenchError, Processes
from bench.task_clients import (
    REDIS_SOCKET_TIMEOUT_S,
    REDIS_URL,
    START_TIMEOUT_S,
    TASK_NAME,
    ApiClient,
    baseline_celery,
    wait_for_task,
)
from bench.task_latency import LatencySide
from bench.task_throughput import ThroughputResult
from bench.worker_memory import WorkerMemory

MIGRATE_TIMEOUT_S = 120.0


@dataclass
class Results:
    latency: tuple[LatencySide, LatencySide]  # hearth, baseline
    throughput: ThroughputResult
    memory: WorkerMemory


def print_report(results: Results, elapsed: float) -> None:
    hearth_latency, baseline_latency = results.latency
    rows = [
        ("figure", "hearth", "baseline", "hearth/baseline", "target", ""),
        *task_latency.rows(hearth_latency, baseline_latency),
        *task_throughput.rows(results.throughput),
        *worker_memory.rows(results.memory),
    ]
    details = [
        bytecode.report(),
        *task_latency.details(hearth_latency, baseline_latency),
        *task_throughput.details(results.throughput),
        *worker_memory.details(results.memory),
    ]
    common.print_report(
        "Hearth task benchmark: each figure beside its baseline, measured in this run",
        rows,
        details,
        elapsed,
    )
    if task_latency.missed(hearth_latency) or task_throughput.missed(results.throughput):
        print(
            "  a latency or throughput target was missed: the baseline uses the same worker, "
            "so hearth/baseline near 1x means the worker (Celery itself) is the limit, "
            "well above 1x means the API path is"
        )


# --- Set-up ----------------------------------------------------------------------------


def flush_redis() -> None:
    """Empty Redis database 14; on failure say so (this also runs during clean-up)."""
    client = common.redis_client(REDIS_URL, REDIS_SOCKET_TIMEOUT_S)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        print(f"bench: could not flush {REDIS_URL}: {exc}", file=sys.stderr)
    finally:
        client.close()


def migrate(env: dict[str, str], cwd: Path) -> None:
    try:
        result = run_hearth("migrate", env=env, cwd=cwd, timeout=MIGRATE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise BenchError(f"hearth migrate did not finish within {MIGRATE_TIMEOUT_S:g} s") from None
    if result.returncode != 0:
        raise BenchError(f"hearth migrate failed:\n{result.stdout}{result.stderr}")


def create_token(env: dict[str, str], cwd: Path) -> str:
    """An API token for the task routes, made as a user makes one: `hearth token create`."""
    name = f"bench-{secrets.token_hex(4)}"
    scopes = ("--scope", "read", "--scope", "write")
    result = run_hearth("token", "create", name, *scopes, env=env, cwd=cwd)
    if result.returncode != 0:
        raise BenchError(f"hearth token create failed:\n{result.stdout}{result.stderr}")
    return result.stdout.splitlines()[-1]


def run_benchmark(processes: Processes, database_url: str) -> Results:
    env = clean_environment(
        HOST=LOOPBACK, DATABASE_URL=database_url, REDIS_URL=REDIS_URL, LOG_LEVEL="WARNING"
    )
    print("migrating the database ...", file=sys.stderr)
    migrate(env, processes.log_dir)
    bare_memory = worker_memory.bare_worker_memory(processes)

    port = free_port()
    print("starting hearth serve and hearth worker ...", file=sys.stderr)
    with hearth_server(env, processes.log_dir, port) as server:
        server.wait_until("/readyz", timeout=START_TIMEOUT_S)
        worker = processes.start([HEARTH, "worker", "--concurrency", "1"], env, name="worker")
        token = create_token(env, processes.log_dir)
        api = ApiClient(port, token)
        app = baseline_celery(database_url)
        client = common.redis_client(REDIS_URL, REDIS_SOCKET_TIMEOUT_S)
        try:
            wait_for_task(app, TASK_NAME, "hearth worker", partial(processes.log_tail, worker))
            idle = worker_memory.idle_memory(worker.pid, "hearth worker")
            latency = task_latency.measure_latency(api, app, client)
            throughput = task_throughput.measure_throughput(
                partial(ApiClient, port, token), app, client, server.process.pid, worker.pid
            )
            after_load = worker_memory.idle_memory(worker.pid, "hearth worker after the load")
            after_prunes = worker_memory.after_prunes(
                app, worker.pid, partial(processes.log_tail, worker)
            )
        finally:
            api.close()
            client.close()
            app.close()
    over = worker_memory.over_target(idle, bare_memory)
    imports = worker_memory.import_rss(processes.log_dir) if over else None
    return Results(
        latency, throughput, WorkerMemory(idle, bare_memory, after_load, after_prunes, imports)
    )


# --- Entry point -----------------------------------------------------------------------


def benchmark() -> int:
    started = time.monotonic()
    common.check_services(REDIS_URL, REDIS_SOCKET_TIMEOUT_S)
    bytecode.ensure_compiled()
    work = Path(tempfile.mkdtemp(prefix="hearth-bench-tasks-")).resolve()
    database = f"hearth_bench_tasks_{secrets.token_hex(4)}"
    processes = Processes(work)
    try:
        flush_redis()
        database_url = common.create_database(database)
        results = run_benchmark(processes, database_url)
    finally:
        with common.signals_ignored():
            print("cleaning up ...", file=sys.stderr)
            processes.close()
            flush_redis()
            common.drop_database(database)
            shutil.rmtree(work, ignore_errors=True)
    print_report(results, time.monotonic() - started)
    return 0


def main() -> int:
    try:
        return common.run_main(benchmark)
    finally:
        # Celery results still referenced by an interrupted frame: dropped now, not while
        # Python shuts down (their __del__ talks to Redis).
        gc.collect()


if __name__ == "__main__":
    sys.exit(main())
