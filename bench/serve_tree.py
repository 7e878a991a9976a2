"""Idle memory of every process of ``hearth serve --with-worker`` on the embedded PostgreSQL
(what ``make run`` starts), against a bare Uvicorn plus a bare Celery worker.

Started on the warm data dir of the start-up measurement (``bench.serve_startup``), without
DATABASE_URL or REDIS_URL: the queue is the embedded PostgreSQL. Once ``/health`` reports the
worker ``ok`` (its heartbeat written, its pool started and its start-up embedding run done)
and everything has been idle for IDLE_S seconds, the RSS and PSS of each process are read:
the server, the worker's main process, each of its children (the pool), and the embedded
PostgreSQL's processes. Baseline: a bare Uvicorn serving an empty FastAPI app (PSS read the
same way) plus a bare ``celery worker`` with one trivial task on Redis and as many pool
children as Hearth's worker has (``bench.worker_memory``), both measured in this run. The
ratio compares the Hearth processes with the two bare ones; the embedded PostgreSQL, which
neither baseline has, is reported beside it and counted in the total.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import psutil
from tests.support.process import clean_environment, hearth_server
from tests.support.services import free_port

from bench import common, serve_startup, served_apps, worker_memory
from bench.common import LOOPBACK, MB, BenchError, Processes

IDLE_S = 3.0
WORKER_TIMEOUT_S = 90.0  # the worker waits for the server's migrations, then starts its pool
POOL_CHILD = "worker, pool child"


@dataclass
class ProcessMemory:
    role: str
    rss: int
    pss: int


@dataclass
class TreeResult:
    hearth: list[ProcessMemory]  # the server, the worker and its children
    postgres: serve_startup.PostgresMemory
    bare_uvicorn_pss: int
    bare_worker: worker_memory.Memory


def _pss(process: psutil.Process) -> int:
    try:
        pss: int = process.memory_full_info().pss
    except (psutil.Error, AttributeError) as exc:
        raise BenchError(f"cannot read the PSS of process {process.pid}: {exc}") from None
    return pss


def _memory(process: psutil.Process, role: str) -> ProcessMemory:
    return ProcessMemory(role, process.memory_info().rss, _pss(process))


def hearth_tree(server_pid: int) -> list[ProcessMemory]:
    """The server and every process below it, each named by its role."""
    server = psutil.Process(server_pid)
    found = [_memory(server, "hearth serve")]
    for child in server.children():
        if child.name() == "postgres":  # counted with the embedded PostgreSQL's processes
            continue
        found.append(_memory(child, "worker, main process"))
        found.extend(_memory(grandchild, POOL_CHILD) for grandchild in child.children())
    return found


def _worker_ok(port: int) -> bool:
    answer = common.http_get(port, "/health")
    if answer is None:
        return False
    try:
        checks = json.loads(answer[1]).get("checks", {})
    except ValueError:
        return False
    return bool(checks.get("worker", {}).get("status") == "ok")


def bare_uvicorn_pss(processes: Processes) -> int:
    """PSS of a bare Uvicorn serving an empty FastAPI app, idle after a few requests."""
    port = free_port()
    process = processes.start(
        served_apps.command("empty", port), served_apps.environment(clean_environment())
    )
    log = partial(processes.log_tail, process)
    common.wait_for_200(process, port, "/", time.perf_counter(), serve_startup.START_TIMEOUT_S, log)
    serve_startup.idle_rss(process.pid, port, ["/"])
    pss = _pss(psutil.Process(process.pid))
    processes.stop(process)
    return pss


def measure_tree(processes: Processes, data_dir: Path) -> TreeResult:
    """Every process of an idle ``hearth serve --with-worker`` on ``data_dir``, and the two
    bare baselines."""
    pgdata = data_dir / "postgres"
    env = clean_environment(HOST=LOOPBACK, HEARTH_DATA_DIR=str(data_dir))
    port = free_port()
    print("memory: hearth serve --with-worker (embedded) ...", file=sys.stderr)
    with hearth_server(env, processes.log_dir, port, args=("--with-worker",)) as server:
        log = partial(common.tail, server.output)
        started = time.perf_counter()
        common.wait_for_200(server.process, port, "/readyz", started, WORKER_TIMEOUT_S, log)
        deadline = time.monotonic() + WORKER_TIMEOUT_S
        while not _worker_ok(port):
            if time.monotonic() > deadline or server.process.poll() is not None:
                raise BenchError(
                    f"the worker of hearth serve --with-worker never reported:\n{log()}"
                )
            time.sleep(0.5)
        time.sleep(IDLE_S)
        tree = hearth_tree(server.process.pid)
        postgres = serve_startup.postgres_memory(pgdata)
    serve_startup.wait_postgres_stopped(pgdata)
    print("memory: bare uvicorn and bare celery worker ...", file=sys.stderr)
    uvicorn_pss = bare_uvicorn_pss(processes)
    children = sum(process.role == POOL_CHILD for process in tree)
    bare_worker = worker_memory.bare_worker_memory(processes, concurrency=max(children, 1))
    return TreeResult(tree, postgres, uvicorn_pss, bare_worker)


# --- The report ------------------------------------------------------------------------


def rows(result: TreeResult) -> list[tuple[str, ...]]:
    """One row: the PSS of Hearth's processes against the two bare ones; and the total."""
    ours = sum(process.pss for process in result.hearth)
    bare_pss = result.bare_worker.total_pss
    if bare_pss is None:
        raise BenchError("cannot read the PSS of the bare celery worker")
    theirs = result.bare_uvicorn_pss + bare_pss
    postgres = result.postgres.pss or 0
    return [
        (
            f"idle PSS, serve --with-worker ({len(result.hearth)} processes)",
            f"{ours / MB:.1f} MB",
            f"{theirs / MB:.1f} MB",
            f"{(ours - theirs) / MB:+.1f} MB ({ours / theirs:.2f}x)",
            "(reported)",
            "",
        ),
        (
            "  the same, with the embedded PostgreSQL",
            f"{(ours + postgres) / MB:.1f} MB",
            "-",
            "-",
            "(reported)",
            "",
        ),
    ]


def details(result: TreeResult) -> list[str]:
    """Each process of the tree, and the baselines it is held against."""
    lines = [
        f"  serve --with-worker, {process.role}: RSS {process.rss / MB:.1f} MB, "
        f"PSS {process.pss / MB:.1f} MB"
        for process in result.hearth
    ]
    postgres = result.postgres
    pss = "?" if postgres.pss is None else f"{postgres.pss / MB:.1f} MB"
    lines.append(
        f"  serve --with-worker, embedded PostgreSQL: {postgres.processes} processes, "
        f"RSS sum {postgres.rss / MB:.1f} MB, PSS {pss}"
    )
    bare = result.bare_worker
    lines.append(
        f"  baseline: bare uvicorn PSS {result.bare_uvicorn_pss / MB:.1f} MB + bare celery "
        f"worker (main and {bare.children} child) PSS "
        f"{(bare.total_pss or 0) / MB:.1f} MB"
    )
    return lines
