"""Hearth's task-queue benchmark: latency and throughput of a task sent through the HTTP API,
and the idle memory of ``hearth worker``, each printed next to a baseline measured in the
same run on the same machine. It reports; it asserts nothing.

Set-up: a fresh database ``hearth_bench_tasks_<random>`` on the PostgreSQL at 127.0.0.1:5432
(user postgres), migrated with ``hearth migrate`` and dropped at the end; Redis at
127.0.0.1:6379, database 14, flushed before and after. ``hearth serve`` (one Uvicorn process)
and ``hearth worker --concurrency 1`` (a prefork pool with one child) run with LOG_LEVEL
WARNING and JSON logs. Both sides of every comparison use that same worker process, so the
ratios isolate what Hearth's API adds to a bare Celery client.

What it measures, and against what:

1. Latency, send to result, N=200 sequential tasks per side, in blocks of 50 that alternate
   between the two sides (so both see the same load on a shared machine), after 20 warm-up
   tasks each. Hearth: ``POST /tasks/ping``, then ``GET /tasks/{id}`` every 1 ms on the same
   keep-alive connection (``http.client``) until the answer says SUCCESS; the time from just
   before the POST to that first SUCCESS answer. Baseline: a Celery app in this process built
   by ``hearth.worker.app.create_celery`` itself (so its configuration is Hearth's) does
   ``send_task("hearth.ping").get()``; Celery's Redis backend is told of the result by
   pub/sub, without polling. Reported: p50 (target <= 10 ms), p90, p99, and where the p50
   goes: sending (the POST round trip, or ``send_task``), queue and run (until the worker
   stored the result: its ``date_done``, same host clock), and noticing (the rest: polling
   through the API, or the pub/sub message).
2. Throughput, M=1000 tasks per side, in 2 rounds of hearth then baseline; the mean of the
   rounds. Hearth: 16 client threads, each with its own keep-alive connection, POST the M
   pings as fast as the API takes them. Baseline: one thread calls ``send_task`` M times,
   then ``.get()`` on every result. Completion time, for both sides alike: the latest
   ``date_done`` among the M results (the worker writes it when it stores a result), read
   from Redis directly, every 50 ms, rather than through the API, so that polling does not
   take CPU from the worker on a small machine. tasks/s = M / (latest ``date_done`` - the
   wall clock just before the first send). Target: >= 400 tasks/s. Also reported: the
   enqueue rate alone (M / time to send them all), which tells whether the sender or the
   worker is the limit; the CPU seconds each process used during the runs (psutil); and
   the worker's CPU time per task: at concurrency 1, with a prefetch of 1 and late acks,
   the main process and the pool child work on a task one after the other, which bounds
   the rate.
3. Idle memory: RSS of the ``hearth worker`` main process, and its sum with the pool's child,
   once the worker has run one task and been idle for 3 s (target <= 70 MB); PSS sums in
   the details (RSS counts the pages a forked child shares with its parent twice). Baseline:
   ``celery -A <tiny app> worker --concurrency 1 --pool prefork`` with the same
   ``--without-gossip --without-mingle`` as Hearth's worker, an app with one trivial task,
   on the same Redis, measured the same way (before the Hearth worker starts, so the two
   never share the queue). The Hearth worker is measured once more after the load.

Every process is started in its own session and stopped as a whole process group: SIGTERM,
then SIGKILL after 20 s, also on error, Ctrl-C or SIGTERM. Every loop is bounded in count and
time. Traffic goes to 127.0.0.1 only. Exit status: 0 when it ran (whether or not a target was
met), 1 when it could not run.

Usage: ``make bench`` (after ``bench/run.py``) or ``.venv/bin/python bench/tasks.py``.
"""

from __future__ import annotations

import gc
import http.client
import itertools
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import common
from common import BIN, HEARTH, LOOPBACK, MB, BenchError, ProcessGroups

if TYPE_CHECKING:
    import redis
    from celery import Celery
    from celery.result import AsyncResult

CELERY = str(BIN / "celery")

REDIS_URL = f"redis://{LOOPBACK}:6379/14"
REDIS_SOCKET_TIMEOUT_S = 10.0
RESULT_KEY_PREFIX = "celery-task-meta-"  # Celery's Redis result backend
TASK_NAME = "hearth.ping"

LATENCY_TASKS = 200  # per side
LATENCY_BLOCK = 50  # the sides alternate every this many tasks
WARM_UP_TASKS = 20  # per side, before the latency blocks
THROUGHPUT_TASKS = 1000  # per side and round
THROUGHPUT_ROUNDS = 2  # each round: hearth, then the baseline
API_THREADS = 16  # concurrent clients enqueueing through the API
POLL_S = 0.001  # GET /tasks/{id} interval while waiting for a result
REDIS_WATCH_S = 0.05  # interval of the completion check on Redis during throughput runs
IDLE_S = 3.0

START_TIMEOUT_S = 60.0
MIGRATE_TIMEOUT_S = 120.0
TASK_TIMEOUT_S = 10.0  # one latency round trip
THROUGHPUT_TIMEOUT_S = 60.0  # one throughput run, sending and completion
REQUEST_TIMEOUT_S = 10.0

TARGET_P50_MS = 10.0
TARGET_TASKS_PER_S = 400.0
TARGET_RSS_MB = 70.0

BARE_APP_MODULE = "bench_bare_celery"
BARE_APP_SOURCE = f'''"""A bare Celery app with one trivial task: the baseline for worker memory."""

import os

from celery import Celery

app = Celery("bare", broker=os.environ["BENCH_REDIS_URL"], backend=os.environ["BENCH_REDIS_URL"])


@app.task(name="{BARE_APP_MODULE}.noop")
def noop():
    return None
'''


# --- Memory ----------------------------------------------------------------------------


@dataclass
class Memory:
    main_rss: int
    total_rss: int  # the main process and all its children
    total_pss: int | None  # shared pages divided among the processes that map them
    children: int


def memory_of(pid: int) -> Memory:
    import psutil

    try:
        main = psutil.Process(pid)
        processes = [main, *main.children(recursive=True)]
        rss = [process.memory_info().rss for process in processes]
    except psutil.Error as exc:
        raise BenchError(f"cannot read the memory of process {pid}: {exc}") from None
    try:
        pss: int | None = sum(process.memory_full_info().pss for process in processes)
    except (psutil.Error, AttributeError):
        pss = None
    return Memory(rss[0], sum(rss), pss, len(processes) - 1)


# --- Redis and the database ------------------------------------------------------------


def flush_redis() -> None:
    """Empty Redis database 14; on failure say so (this also runs during clean-up)."""
    import redis

    client = common.redis_client(REDIS_URL, REDIS_SOCKET_TIMEOUT_S)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        print(f"bench: could not flush {REDIS_URL}: {exc}", file=sys.stderr)
    finally:
        client.close()


def run_captured(
    command: Sequence[str], env: dict[str, str], cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` to its end, with no input and its output captured as text; raises
    ``subprocess.TimeoutExpired`` (having killed it) if it runs longer than ``timeout``."""
    return subprocess.run(
        command,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def migrate(env: dict[str, str], cwd: Path) -> None:
    try:
        result = run_captured([HEARTH, "migrate"], env, cwd, MIGRATE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise BenchError(f"hearth migrate did not finish within {MIGRATE_TIMEOUT_S:g} s") from None
    if result.returncode != 0:
        raise BenchError(f"hearth migrate failed:\n{result.stdout}{result.stderr}")


# --- Talking to the API, to Celery and to Redis -----------------------------------------


class ApiClient:
    """One keep-alive HTTP connection to ``hearth serve``."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection(LOOPBACK, port, timeout=REQUEST_TIMEOUT_S)

    def close(self) -> None:
        self.connection.close()

    def request(self, method: str, path: str) -> tuple[int, bytes]:
        """Status and body. A keep-alive connection the server closed while it was idle is
        opened again, once: the request had not reached the server."""
        try:
            return self._exchange(method, path)
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            self.connection.close()
            return self._exchange(method, path)

    def _exchange(self, method: str, path: str) -> tuple[int, bytes]:
        self.connection.request(method, path)
        response = self.connection.getresponse()
        return response.status, response.read()

    def send_ping(self) -> str:
        status, body = self.request("POST", "/tasks/ping")
        if status != 202:
            raise BenchError(f"POST /tasks/ping answered {status}: {body[:300]!r}")
        task_id: str = json.loads(body)["id"]
        return task_id

    def state(self, task_id: str) -> str:
        status, body = self.request("GET", f"/tasks/{task_id}")
        if status != 200:
            raise BenchError(f"GET /tasks/{task_id} answered {status}: {body[:300]!r}")
        state: str = json.loads(body)["state"]
        if state == "FAILURE":
            raise BenchError(f"task {task_id} failed: {body[:300]!r}")
        return state

    def wait_ready(self, process: subprocess.Popen[bytes], log: Callable[[], str]) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    return
            except (OSError, http.client.HTTPException):
                self.connection.close()
            if process.poll() is not None:
                raise BenchError(f"hearth serve exited early; its output ends with:\n{log()}")
            time.sleep(0.05)
        raise BenchError(f"hearth serve was not ready within {START_TIMEOUT_S:g} s:\n{log()}")


def baseline_celery(database_url: str) -> Celery:
    """A Celery client configured by Hearth's own ``create_celery``, for the same Redis."""
    from hearth.config.settings import Settings
    from hearth.worker.app import create_celery

    # Everything create_celery reads is given here, so nothing comes from this environment.
    settings = Settings(
        _env_file=None,
        secret_key=secrets.token_urlsafe(48),
        database_url=database_url,
        redis_url=REDIS_URL,
        worker_imports="",
        task_visibility_timeout_seconds=Settings.model_fields[
            "task_visibility_timeout_seconds"
        ].default,
    )
    assert settings.database_url is not None
    return create_celery(settings, settings.database_url)


def celery_get(app: Celery, result: AsyncResult, timeout: float) -> None:
    """``result.get(timeout=timeout)``. When that is interrupted, Celery is told to forget
    the result at once: it would otherwise keep it until exit, then try to unsubscribe from
    Redis while Python shuts down (and print a traceback)."""
    try:
        result.get(timeout=timeout)
    except BaseException:
        app.backend.remove_pending_result(result)
        raise


def wait_for_task(app: Celery, name: str, what: str, log: Callable[[], str]) -> None:
    """One task round trip, to know a worker is consuming (its first can take a while)."""
    from celery.exceptions import TimeoutError as CeleryTimeout

    try:
        celery_get(app, app.send_task(name), START_TIMEOUT_S)
    except CeleryTimeout:
        raise BenchError(
            f"{what} ran no task within {START_TIMEOUT_S:g} s; its output ends with:\n{log()}"
        ) from None


def done_times(client: redis.Redis, task_ids: Sequence[str], timeout: float) -> list[float]:
    """Each task's ``date_done`` (Unix time), waiting up to ``timeout`` for all to be stored."""
    deadline = time.monotonic() + timeout
    done: dict[str, float] = {}
    while True:
        waiting = [task_id for task_id in task_ids if task_id not in done]
        for start in range(0, len(waiting), 500):
            batch = waiting[start : start + 500]
            for task_id, raw in zip(
                batch, client.mget([RESULT_KEY_PREFIX + t for t in batch]), strict=True
            ):
                if raw is None:
                    continue
                meta = json.loads(raw)
                if meta["status"] == "FAILURE":
                    raise BenchError(f"task {task_id} failed: {meta.get('result')!r}")
                if meta["status"] == "SUCCESS":
                    done[task_id] = datetime.fromisoformat(meta["date_done"]).timestamp()
        if len(done) == len(task_ids):
            return [done[task_id] for task_id in task_ids]
        if time.monotonic() > deadline:
            raise BenchError(
                f"{len(task_ids) - len(done)} of {len(task_ids)} tasks were not done "
                f"within {timeout:g} s"
            )
        time.sleep(REDIS_WATCH_S)


# --- Latency ---------------------------------------------------------------------------


@dataclass
class Trip:
    """One sequential round trip, in seconds."""

    total: float
    send: float  # the POST round trip, or send_task
    started_at: float  # Unix time just before sending
    task_id: str
    polls: int = 0


@dataclass
class LatencySide:
    trips: list[Trip] = field(default_factory=list)
    done_at: dict[str, float] = field(default_factory=dict)  # task id -> date_done

    def totals_ms(self) -> list[float]:
        return [trip.total * 1000 for trip in self.trips]

    def percentile(self, p: int) -> float:
        return statistics.quantiles(self.totals_ms(), n=100, method="inclusive")[p - 1]

    def breakdown_ms(self) -> tuple[float, float, float]:
        """Medians of: sending; from sending to the result stored; from stored to seen."""
        sends, queued, noticed = [], [], []
        for trip in self.trips:
            stored = self.done_at[trip.task_id] - trip.started_at
            sends.append(trip.send * 1000)
            queued.append((stored - trip.send) * 1000)
            noticed.append((trip.total - stored) * 1000)
        return statistics.median(sends), statistics.median(queued), statistics.median(noticed)


def api_round_trip(api: ApiClient) -> Trip:
    started_at = time.time()
    started = time.perf_counter()
    task_id = api.send_ping()
    sent = time.perf_counter() - started
    deadline = started + TASK_TIMEOUT_S
    polls = 0
    while time.perf_counter() < deadline:
        polls += 1
        if api.state(task_id) == "SUCCESS":
            return Trip(time.perf_counter() - started, sent, started_at, task_id, polls)
        time.sleep(POLL_S)
    raise BenchError(f"task {task_id} sent through the API was not done in {TASK_TIMEOUT_S:g} s")


def celery_round_trip(app: Celery) -> Trip:
    from celery.exceptions import TimeoutError as CeleryTimeout

    started_at = time.time()
    started = time.perf_counter()
    result = app.send_task(TASK_NAME)
    sent = time.perf_counter() - started
    try:
        celery_get(app, result, TASK_TIMEOUT_S)
    except CeleryTimeout:
        raise BenchError(
            f"task {result.id} sent by Celery was not done in {TASK_TIMEOUT_S:g} s"
        ) from None
    return Trip(time.perf_counter() - started, sent, started_at, result.id)


def measure_latency(
    api: ApiClient, app: Celery, client: redis.Redis
) -> tuple[LatencySide, LatencySide]:
    for _ in range(WARM_UP_TASKS):
        api_round_trip(api)
        celery_round_trip(app)
    hearth, baseline = LatencySide(), LatencySide()
    for block in range(LATENCY_TASKS // LATENCY_BLOCK):
        print(
            f"latency: block {block + 1} of {LATENCY_TASKS // LATENCY_BLOCK} "
            f"({LATENCY_BLOCK} tasks each side) ...",
            file=sys.stderr,
        )
        hearth.trips.extend(api_round_trip(api) for _ in range(LATENCY_BLOCK))
        baseline.trips.extend(celery_round_trip(app) for _ in range(LATENCY_BLOCK))
    for side in (hearth, baseline):
        ids = [trip.task_id for trip in side.trips]
        side.done_at = dict(zip(ids, done_times(client, ids, TASK_TIMEOUT_S), strict=True))
    return hearth, baseline


# --- Throughput ------------------------------------------------------------------------


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


def throughput_api(port: int, client: redis.Redis) -> Throughput:
    """THROUGHPUT_TASKS pings POSTed by API_THREADS threads, each on its own connection."""
    deadline = time.monotonic() + THROUGHPUT_TIMEOUT_S
    task_ids = [""] * THROUGHPUT_TASKS
    slots = iter(range(THROUGHPUT_TASKS))  # shared: next() on it is atomic
    errors: list[BaseException] = []

    def sender() -> None:
        api = ApiClient(port)
        try:
            while time.monotonic() < deadline and not errors:
                slot = next(slots, None)
                if slot is None:
                    return
                task_ids[slot] = api.send_ping()
        except BaseException as exc:  # reported by the main thread
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
    from celery.exceptions import TimeoutError as CeleryTimeout

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


def watched_processes(server: int, worker: int) -> dict[str, list[int]]:
    """The pids whose CPU time the throughput runs report, by role."""
    import psutil

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
    import psutil

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


# --- The worker's memory ----------------------------------------------------------------


def bare_worker_memory(processes: ProcessGroups, base_env: dict[str, str], work: Path) -> Memory:
    """Idle memory of a bare ``celery worker`` (one trivial task), measured like Hearth's."""
    from celery import Celery

    app_dir = work / "bare-app"
    app_dir.mkdir()
    (app_dir / f"{BARE_APP_MODULE}.py").write_text(BARE_APP_SOURCE)
    env = {**base_env, "PYTHONPATH": str(app_dir), "BENCH_REDIS_URL": REDIS_URL}
    command = [
        CELERY,
        "-A",
        BARE_APP_MODULE,
        "worker",
        "--concurrency",
        "1",
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
        wait_for_task(
            client,
            f"{BARE_APP_MODULE}.noop",
            "the bare celery worker",
            lambda: processes.log_tail(process),
        )
    finally:
        client.close()
    time.sleep(IDLE_S)
    memory = memory_of(process.pid)
    processes.stop(process)
    return memory


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


def import_rss(base_env: dict[str, str], cwd: Path) -> str:
    """``Python itself 9 MB, Celery's worker +25 MB, ...``, or why it is not known."""
    try:
        command = [sys.executable, "-c", IMPORT_RSS_CODE, json.dumps(IMPORT_GROUPS)]
        result = run_captured(command, base_env, cwd, START_TIMEOUT_S)
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


# --- The report ------------------------------------------------------------------------


@dataclass
class Results:
    latency: tuple[LatencySide, LatencySide]
    throughput: tuple[list[Throughput], list[Throughput]]  # rounds: hearth, baseline
    worker_memory: Memory
    bare_memory: Memory
    worker_memory_after_load: Memory
    import_rss: str | None  # where the worker's memory goes; measured when over target


def _mb(value: int | None) -> str:
    return "?" if value is None else f"{value / MB:.1f} MB"


def print_report(results: Results, elapsed: float) -> None:
    hearth_latency, baseline_latency = results.latency
    hearth_runs, baseline_runs = results.throughput
    hearth_rate = statistics.mean(run.tasks_per_s for run in hearth_runs)
    baseline_rate = statistics.mean(run.tasks_per_s for run in baseline_runs)
    worker, bare = results.worker_memory, results.bare_memory
    p50 = hearth_latency.percentile(50)

    rows = [("figure", "hearth", "baseline", "hearth/baseline", "target", "")]
    for p in (50, 90, 99):
        ours, theirs = hearth_latency.percentile(p), baseline_latency.percentile(p)
        target = (
            (f"<= {TARGET_P50_MS:g} ms", common.met(ours <= TARGET_P50_MS)) if p == 50 else ("", "")
        )
        rows.append(
            (
                f"latency send->result p{p}, N={LATENCY_TASKS}",
                f"{ours:.2f} ms",
                f"{theirs:.2f} ms",
                f"{ours / theirs:.2f}x",
                *target,
            )
        )
    rows.append(
        (
            f"throughput, M={THROUGHPUT_TASKS}, mean of {THROUGHPUT_ROUNDS}",
            f"{hearth_rate:.0f} tasks/s",
            f"{baseline_rate:.0f} tasks/s",
            f"{hearth_rate / baseline_rate:.2f}x",
            f">= {TARGET_TASKS_PER_S:g} tasks/s",
            common.met(hearth_rate >= TARGET_TASKS_PER_S),
        )
    )
    for label, ours_bytes, theirs_bytes in (
        ("idle RSS, worker main process", worker.main_rss, bare.main_rss),
        ("idle RSS, worker + pool child", worker.total_rss, bare.total_rss),
    ):
        rows.append(
            (
                label,
                _mb(ours_bytes),
                _mb(theirs_bytes),
                f"{ours_bytes / theirs_bytes:.2f}x",
                f"<= {TARGET_RSS_MB:g} MB",
                common.met(ours_bytes / MB <= TARGET_RSS_MB),
            )
        )
    common.print_heading(
        "Hearth task benchmark: each figure beside its baseline, measured in this run", elapsed
    )
    print(common.table(rows))
    print()
    print("Details:")
    print(
        f"  latency: hearth = POST /tasks/ping, then GET /tasks/{{id}} every {POLL_S * 1000:g} ms"
        f" until SUCCESS; baseline = create_celery(...).send_task({TASK_NAME!r}).get()"
    )
    for name, side, notice in (
        ("hearth", hearth_latency, "polling"),
        ("baseline", baseline_latency, "pub/sub"),
    ):
        send, queued, noticed = side.breakdown_ms()
        polls = [trip.polls for trip in side.trips]
        extra = f", {statistics.median(polls):.0f} GETs (median)" if any(polls) else ""
        print(
            f"  where the {name} p50 goes (medians): send {send:.2f} ms, queue and run until "
            f"stored {queued:.2f} ms, {notice} until seen {noticed:.2f} ms{extra}"
        )
    print(
        f"  latency min/mean/max: hearth "
        f"{_spread(hearth_latency.totals_ms())}, baseline {_spread(baseline_latency.totals_ms())}"
    )
    for name, runs, how in (
        ("hearth", hearth_runs, f"{API_THREADS} client threads, POST /tasks/ping"),
        ("baseline", baseline_runs, "one thread, send_task then .get() on each"),
    ):
        rounds = ", ".join(
            f"{run.tasks_per_s:.0f} tasks/s (enqueued at {run.enqueued_per_s:.0f}/s)"
            for run in runs
        )
        print(f"  throughput {name} ({how}), by round: {rounds}")
        print(f"    {_cpu_summary(runs)}")
    for name, memory in (
        ("hearth worker, idle", worker),
        ("bare celery worker, idle", bare),
        ("hearth worker, idle after the load", results.worker_memory_after_load),
    ):
        print(
            f"  {name}: main {_mb(memory.main_rss)}, with {memory.children} child(ren) RSS "
            f"{_mb(memory.total_rss)}, PSS {_mb(memory.total_pss)}"
        )
    if results.import_rss is not None:
        print(
            "  the RSS target was missed; what importing the worker's modules adds to a fresh "
            f"interpreter's RSS: {results.import_rss}; the rest is the running worker's heap "
            "and buffers"
        )
    if p50 > TARGET_P50_MS or hearth_rate < TARGET_TASKS_PER_S:
        print(
            "  a latency or throughput target was missed: the baseline uses the same worker, "
            "so hearth/baseline near 1x means the worker (Celery itself) is the limit, "
            "well above 1x means the API path is"
        )


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


def _spread(values: list[float]) -> str:
    return f"{min(values):.2f}/{statistics.mean(values):.2f}/{max(values):.2f} ms"


# --- Entry point -----------------------------------------------------------------------


def run_benchmark(processes: ProcessGroups, base_env: dict[str, str], database_url: str) -> Results:
    env = common.hearth_environment(
        base_env, DATABASE_URL=database_url, REDIS_URL=REDIS_URL, LOG_LEVEL="WARNING"
    )
    print("migrating the database ...", file=sys.stderr)
    migrate(env, processes.log_dir)
    bare_memory = bare_worker_memory(processes, base_env, processes.log_dir)

    port = common.free_port()
    print("starting hearth serve and hearth worker ...", file=sys.stderr)
    server = processes.start(
        [HEARTH, "serve", "--host", LOOPBACK, "--port", str(port)],
        {**env, "PORT": str(port)},
        name="serve",
    )
    api = ApiClient(port)
    api.wait_ready(server, lambda: processes.log_tail(server))
    worker = processes.start([HEARTH, "worker", "--concurrency", "1"], env, name="worker")
    app = baseline_celery(database_url)
    client = common.redis_client(REDIS_URL, REDIS_SOCKET_TIMEOUT_S)
    try:
        wait_for_task(app, TASK_NAME, "hearth worker", lambda: processes.log_tail(worker))
        print(f"memory: hearth worker, idle {IDLE_S:g} s ...", file=sys.stderr)
        time.sleep(IDLE_S)
        worker_memory = memory_of(worker.pid)

        latency = measure_latency(api, app, client)
        watched = watched_processes(server.pid, worker.pid)
        hearth_runs: list[Throughput] = []
        baseline_runs: list[Throughput] = []
        for round_number in range(1, THROUGHPUT_ROUNDS + 1):
            print(
                f"throughput: round {round_number} of {THROUGHPUT_ROUNDS}, "
                f"{THROUGHPUT_TASKS} tasks each side ...",
                file=sys.stderr,
            )
            hearth_runs.append(with_cpu(watched, lambda: throughput_api(port, client)))
            baseline_runs.append(with_cpu(watched, lambda: throughput_celery(app, client)))

        print(f"memory: hearth worker after the load, idle {IDLE_S:g} s ...", file=sys.stderr)
        time.sleep(IDLE_S)
        after_load = memory_of(worker.pid)
    finally:
        api.close()
        client.close()
        app.close()
    over = worker_memory.main_rss / MB > TARGET_RSS_MB
    imports = import_rss(base_env, processes.log_dir) if over else None
    return Results(
        latency, (hearth_runs, baseline_runs), worker_memory, bare_memory, after_load, imports
    )


def benchmark() -> int:
    started = time.monotonic()
    common.check_services(REDIS_URL, REDIS_SOCKET_TIMEOUT_S)
    base_env = common.clean_environment()
    work = Path(tempfile.mkdtemp(prefix="hearth-bench-tasks-")).resolve()
    database = f"hearth_bench_tasks_{secrets.token_hex(4)}"
    processes = ProcessGroups(work)
    try:
        flush_redis()
        database_url = common.create_database(database)
        results = run_benchmark(processes, base_env, database_url)
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
