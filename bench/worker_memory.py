"""Idle memory of ``hearth worker``, against a bare ``celery worker``, and where it goes.

RSS of the ``hearth worker`` main process, and its sum with the pool's child, once the worker
has run one task and been idle for 3 s; and the PSS of the two together (target <= 1.25x the
baseline's), which counts a page the forked child shares with its parent once, where RSS
counts it in each. Every child of the worker is counted. Baseline:
``celery -A <tiny app> worker --concurrency 1 --pool prefork`` with the same
``--without-gossip --without-mingle`` as Hearth's worker, an app with one trivial task, on the
same Redis, measured the same way (before the Hearth worker starts, so the two never share the
queue). The Hearth worker is measured once more after the load, and again after the two
prunes its beat sends every hour (the health history, the task runs), which a worker that has
run for an hour has done. When a target is missed,
the memory that importing the worker's modules adds to a fresh interpreter is itemised.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import psutil
from celery import Celery
from tests.support.process import clean_environment

from bench import common
from bench.common import MB, BenchError, Processes
from bench.task_clients import REDIS_URL, START_TIMEOUT_S, wait_for_task
from hearth.worker.app import PRUNE_HEALTH_HISTORY_TASK, PRUNE_TASK_RUNS_TASK

CELERY = str(Path(sys.executable).with_name("celery"))
IDLE_S = 3.0

TARGET_PSS_RATIO = 1.25  # of the bare worker's, measured in the same run

BARE_APP_MODULE = "bench_bare_celery"
BARE_APP_SOURCE = f'''"""A bare Celery app with one trivial task: the baseline for worker memory."""

import os

from celery import Celery

app = Celery("bare", broker=os.environ["BENCH_REDIS_URL"], backend=os.environ["BENCH_REDIS_URL"])


@app.task(name="{BARE_APP_MODULE}.noop")
def noop():
    return None
'''

# Where the worker's main process gets its memory: the modules it imports, in groups, in the
# order a `hearth worker` imports them (roughly); measured in a fresh interpreter.
IMPORT_GROUPS: list[tuple[str, list[str]]] = [
    ("Celery's worker", ["celery.worker", "celery.apps.worker", "celery.concurrency.prefork"]),
    ("redis-py and kombu's Redis transport", ["kombu.transport.redis", "celery.backends.redis"]),
    ("Hearth's settings (pydantic)", ["hearth.config.settings", "hearth.log"]),
    ("SQLAlchemy and the models (heartbeat)", ["hearth.models", "hearth.worker.heartbeat"]),
    ("psycopg (heartbeat's driver)", ["psycopg"]),
    ("the rest of `hearth worker`", ["hearth.cli", "hearth.worker.run", "hearth.worker.tasks"]),
]

# Run in a fresh interpreter: its RSS at start, then after each group of IMPORT_GROUPS.
IMPORT_RSS_CODE = """
import importlib, json, os, sys
def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
steps = [["Python itself", rss()]]
for label, modules in json.loads(sys.argv[1]):
    for module in modules:
        importlib.import_module(module)
    steps.append([label, rss()])
print(json.dumps(steps))
"""


@dataclass
class Memory:
    main_rss: int
    total_rss: int  # the main process and all its children
    total_pss: int | None  # shared pages divided among the processes that map them
    children: int
    # Pages only the main process maps, and only its children (USS): written after the fork
    # (copy-on-write), or allocated since. RSS less these is what they share.
    main_private: int | None = None
    children_private: int | None = None


def memory_of(pid: int) -> Memory:
    try:
        main = psutil.Process(pid)
        processes = [main, *main.children(recursive=True)]
        rss = [process.memory_info().rss for process in processes]
    except psutil.Error as exc:
        raise BenchError(f"cannot read the memory of process {pid}: {exc}") from None
    try:
        full = [process.memory_full_info() for process in processes]
    except (psutil.Error, AttributeError):
        return Memory(rss[0], sum(rss), None, len(processes) - 1)
    return Memory(
        rss[0],
        sum(rss),
        sum(info.pss for info in full),
        len(processes) - 1,
        main_private=full[0].uss,
        children_private=sum(info.uss for info in full[1:]),
    )


def idle_memory(pid: int, what: str) -> Memory:
    """The memory of ``pid`` and its children after IDLE_S seconds of rest."""
    print(f"memory: {what}, idle {IDLE_S:g} s ...", file=sys.stderr)
    time.sleep(IDLE_S)
    return memory_of(pid)


def after_prunes(app: Celery, pid: int, log: Callable[[], str]) -> Memory:
    """The memory of ``pid`` and its children once its pool has run the hourly prunes."""
    for task in (PRUNE_HEALTH_HISTORY_TASK, PRUNE_TASK_RUNS_TASK):
        wait_for_task(app, task, f"hearth worker ({task})", log)
    return idle_memory(pid, "hearth worker after the hourly prunes")


def bare_worker_memory(processes: Processes, concurrency: int = 1) -> Memory:
    """Idle memory of a bare ``celery worker`` (one trivial task) with ``concurrency`` pool
    children, measured like Hearth's."""
    app_dir = processes.log_dir / "bare-app"
    app_dir.mkdir()
    (app_dir / f"{BARE_APP_MODULE}.py").write_text(BARE_APP_SOURCE)
    env = clean_environment(PYTHONPATH=str(app_dir), BENCH_REDIS_URL=REDIS_URL)
    command = [
        CELERY,
        "-A",
        BARE_APP_MODULE,
        "worker",
        "--concurrency",
        str(concurrency),
        "--pool",
        "prefork",
        "--loglevel",
        "WARNING",
        "--without-gossip",
        "--without-mingle",
    ]
    print("memory: bare celery worker ...", file=sys.stderr)
    process = processes.start(command, env, name="bare-worker")
    client = Celery("bare-client", broker=REDIS_URL, backend=REDIS_URL)
    try:
        log = partial(processes.log_tail, process)
        wait_for_task(client, f"{BARE_APP_MODULE}.noop", "the bare celery worker", log)
    finally:
        client.close()
    time.sleep(IDLE_S)
    memory = memory_of(process.pid)
    processes.stop(process)
    return memory


def import_rss(cwd: Path) -> str:
    """``Python itself 9 MB, Celery's worker +25 MB, ...``, or why it is not known."""
    try:
        result = subprocess.run(
            [sys.executable, "-c", IMPORT_RSS_CODE, json.dumps(IMPORT_GROUPS)],
            env=clean_environment(),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"not measured (the imports took over {START_TIMEOUT_S:g} s)"
    try:
        steps = json.loads(result.stdout)
    except ValueError:
        last_line = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return f"not measured ({last_line})"
    parts = [f"{steps[0][0]} {steps[0][1] / MB:.1f} MB"]
    for (_, before), (label, after) in itertools.pairwise(steps):
        parts.append(f"{label} +{(after - before) / MB:.1f} MB")
    return ", ".join(parts)


def over_target(memory: Memory, bare: Memory) -> bool:
    if memory.total_pss is None or bare.total_pss is None:
        return True  # unknown: itemise the imports anyway
    return memory.total_pss / bare.total_pss > TARGET_PSS_RATIO


# --- The report ------------------------------------------------------------------------


@dataclass
class WorkerMemory:
    idle: Memory  # hearth worker, after its first task
    bare: Memory  # the bare celery worker
    after_load: Memory  # hearth worker, after the latency and throughput runs
    after_prunes: Memory  # hearth worker, after the hourly prunes
    imports: str | None  # where the memory goes; measured when over target


def rows(result: WorkerMemory) -> list[tuple[str, ...]]:
    """The report's rows: RSS of the main process, and with its children; their PSS."""
    worker, bare = result.idle, result.bare
    lines: list[tuple[str, ...]] = [
        (label, _mb(ours), _mb(theirs), f"{ours / theirs:.2f}x", "", "")
        for label, ours, theirs in (
            ("idle RSS, worker main process", worker.main_rss, bare.main_rss),
            ("idle RSS, worker + children", worker.total_rss, bare.total_rss),
        )
    ]
    ours, theirs = worker.total_pss, bare.total_pss
    ratio = ours / theirs if ours is not None and theirs else None
    lines.append(
        (
            "idle PSS, worker + children",
            _mb(ours),
            _mb(theirs),
            "?" if ratio is None else f"{ratio:.2f}x",
            f"<= {TARGET_PSS_RATIO:g}x",
            "" if ratio is None else common.met(ratio <= TARGET_PSS_RATIO),
        )
    )
    return lines


def details(result: WorkerMemory) -> list[str]:
    """The report's detail lines: each worker's RSS and PSS, and the imports when over."""
    lines = [
        f"  {name}: main {_mb(memory.main_rss)}, with {memory.children} child(ren) RSS "
        f"{_mb(memory.total_rss)}, PSS {_mb(memory.total_pss)}; private to the main process "
        f"{_mb(memory.main_private)}, to the children {_mb(memory.children_private)}"
        for name, memory in (
            ("hearth worker, idle", result.idle),
            ("bare celery worker, idle", result.bare),
            ("hearth worker, idle after the load", result.after_load),
            ("hearth worker, idle after the hourly prunes", result.after_prunes),
        )
    ]
    if result.imports is not None:
        lines.append(
            "  the PSS target was missed; what importing the worker's modules adds to a fresh "
            f"interpreter's RSS: {result.imports}; the rest is what the processes wrote "
            "after the fork (a page the child writes to, if only to count a reference, is "
            "copied: it is then private to both) and their heap"
        )
    return lines


def _mb(value: int | None) -> str:
    return "?" if value is None else f"{value / MB:.1f} MB"
