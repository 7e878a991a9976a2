"""The embedded queue (the task queue in PostgreSQL, what ``make run`` uses): what sending a
task adds to a request, how soon a queued task starts, and what the whole stack costs at rest.
It reports; it asserts nothing.

Set-up: ``hearth serve --with-worker`` on a fresh data directory with the embedded PostgreSQL
(DATABASE_URL and REDIS_URL unset, LOG_LEVEL WARNING), warmed by a few requests; an API token
made with ``hearth token create``. No model is configured: the embedding runs the documents
queue end at once, so the worker's side stays small.

1. ``POST /documents`` (one short document: a row stored; the embedding run it asks for is
   sent after the answer, at once when no other was sent within 50 ms, else merged with the
   next), one at a time on a keep-alive connection, p50/p95 of ROUNDS. Baseline, alternated with
   it in the same run: a bare INSERT of the same row into ``documents`` through psycopg on
   one open connection (autocommit). Target: p50 <= 25 ms.
2. Queued -> started: ``POST /tasks/ping``, then the time from just before the POST to the
   task's start as its pool child recorded it, once the embedding runs the posts queued are
   done (the worker at rest) (``task_runs.started_at``, written by the
   worker on the same clock), p50/p95 of PINGS sent one at a time; also POST -> SUCCESS as a
   client sees it, polling ``GET /tasks/{id}`` every POLL_S. Target: p50 and p95 <= 100 ms.
3. Idle CPU of the whole process tree (server, worker and its pool, the embedded
   PostgreSQL's processes) over IDLE_S seconds after SETTLE_S of rest, as a percentage of
   one core, process by process (``bench.idle``: sampled each second, backends named by
   their client). Target: <= 1 %.

Usage: ``make bench`` or ``.venv/bin/python -m bench.embedded_queue``.
"""

from __future__ import annotations

import http.client
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from tests.support.process import clean_environment, hearth_server
from tests.support.services import free_port

from bench import common, idle, serve_startup
from bench.common import LOOPBACK, REQUEST_TIMEOUT_S, BenchError, Processes
from bench.tasks import create_token

START_TIMEOUT_S = 120.0  # the first start runs initdb
WORKER_TIMEOUT_S = 60.0
WARM_UP = 20
ROUNDS = 200
PINGS = 50
POLL_S = 0.005
SETTLE_S = 10.0
IDLE_S = 60.0
DRAIN_TIMEOUT_S = 300.0
RECORDED_TIMEOUT_S = 10.0  # the pool child writes its runs in batches

TARGET_POST_P50_MS = 25.0
TARGET_START_MS = 100.0
TARGET_IDLE_CPU_PERCENT = 1.0

DOCUMENT = {"text": "A short note about the garden shed, to be embedded.", "metadata": {"n": 1}}
BARE_INSERT = "INSERT INTO documents (text, metadata) VALUES (%s, %s) RETURNING id"


class Client:
    """One keep-alive connection to ``hearth serve``, presenting an API token."""

    def __init__(self, port: int, token: str) -> None:
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.connection = http.client.HTTPConnection(LOOPBACK, port, timeout=REQUEST_TIMEOUT_S)

    def request(self, method: str, path: str, body: object = None) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body)
        try:
            self.connection.request(method, path, body=data, headers=self.headers)
            response = self.connection.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # The server closed the idle keep-alive connection (a wait in between): again.
            self.connection.close()
            self.connection.request(method, path, body=data, headers=self.headers)
            response = self.connection.getresponse()
        return response.status, response.read()

    def expect(self, method: str, path: str, status: int, body: object = None) -> object:
        got, answer = self.request(method, path, body)
        if got != status:
            raise BenchError(f"{method} {path} answered {got}: {answer[:300]!r}")
        return json.loads(answer)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


# --- The measurements ------------------------------------------------------------------


@dataclass
class Result:
    post: list[float]
    insert: list[float]
    started: list[float]
    succeeded: list[float]
    idle: idle.Idle


def wait_for_worker(client: Client) -> None:
    """Until a ping has run: the worker is up and has taken from the queue."""
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    task = client.expect("POST", "/tasks/ping", 202)
    task_id = task["id"] if isinstance(task, dict) else ""
    while time.monotonic() < deadline:
        state = client.expect("GET", f"/tasks/{task_id}", 200)
        if isinstance(state, dict) and state["state"] == "SUCCESS":
            return
        time.sleep(0.1)
    raise BenchError(f"the worker ran no ping within {WORKER_TIMEOUT_S:g} s")


def measure_posts(client: Client, database: psycopg.Connection) -> tuple[list[float], list[float]]:
    """``POST /documents`` and the bare INSERT of the same row, alternated."""
    metadata = json.dumps(DOCUMENT["metadata"])

    def post() -> None:
        client.expect("POST", "/documents", 202, DOCUMENT)

    def insert() -> None:
        database.execute(BARE_INSERT, (DOCUMENT["text"], metadata)).fetchone()

    for _ in range(WARM_UP):
        post()
        insert()
    posts, inserts = [], []
    for _ in range(ROUNDS):
        posts.append(timed(post))
        inserts.append(timed(insert))
    return posts, inserts


def measure_starts(client: Client, database: psycopg.Connection) -> tuple[list[float], list[float]]:
    """Per ping: seconds from before its POST to its start, and to SUCCESS seen by a client."""
    sent: dict[str, float] = {}
    succeeded = []
    for _ in range(PINGS):
        began = time.time()
        task = client.expect("POST", "/tasks/ping", 202)
        task_id = str(task["id"]) if isinstance(task, dict) else ""
        sent[task_id] = began
        deadline = time.monotonic() + WORKER_TIMEOUT_S
        while time.monotonic() < deadline:
            state = client.expect("GET", f"/tasks/{task_id}", 200)
            if isinstance(state, dict) and state["state"] == "SUCCESS":
                succeeded.append(time.time() - began)
                break
            time.sleep(POLL_S)
        else:
            raise BenchError(f"ping {task_id} did not succeed within {WORKER_TIMEOUT_S:g} s")
        time.sleep(0.2)  # the worker at rest again: each ping is queued to an idle worker
    started = recorded_starts(database, sent)
    return [started[task_id] - began for task_id, began in sent.items()], succeeded


def recorded_starts(database: psycopg.Connection, sent: dict[str, float]) -> dict[str, float]:
    deadline = time.monotonic() + RECORDED_TIMEOUT_S
    while True:
        rows = database.execute(
            "SELECT task_id, extract(epoch FROM started_at) FROM task_runs WHERE task_id = ANY(%s)",
            (list(sent),),
        ).fetchall()
        if len(rows) == len(sent):
            return {str(task_id): float(epoch) for task_id, epoch in rows}
        if time.monotonic() > deadline:
            raise BenchError(f"{len(sent) - len(rows)} pings have no recorded run")
        time.sleep(0.2)


def wait_until_drained(database: psycopg.Connection) -> None:
    """Until the queue holds no message, waiting or taken: the ``POST /documents`` asked for
    embedding runs, and the worker works through them for a while after the posts."""
    started = time.monotonic()
    while database.execute("SELECT count(*) FROM task_messages").fetchone() != (0,):
        if time.monotonic() - started > DRAIN_TIMEOUT_S:
            raise BenchError(f"the queue was not drained within {DRAIN_TIMEOUT_S:g} s")
        time.sleep(0.2)
    print(f"  queue drained in {time.monotonic() - started:.1f} s", file=sys.stderr)


def measure_idle(server_pid: int, pgdata: Path) -> idle.Idle:
    """CPU the whole tree used over IDLE_S at rest, after SETTLE_S, by process."""
    time.sleep(SETTLE_S)
    return idle.measure(server_pid, pgdata, IDLE_S)


@contextmanager
def embedded_stack(processes: Processes, data_dir: Path) -> Iterator[tuple[int, int, str]]:
    """``hearth serve --with-worker`` on ``data_dir``: its pid, port and API token."""
    env = clean_environment(HOST=LOOPBACK, HEARTH_DATA_DIR=str(data_dir), LOG_LEVEL="WARNING")
    port = free_port()
    with hearth_server(env, processes.log_dir, port, args=["--with-worker"]) as server:
        server.wait_until("/readyz", timeout=START_TIMEOUT_S)
        token = create_token(env, processes.log_dir)
        yield server.process.pid, port, token


def run_benchmark(processes: Processes, data_dir: Path) -> Result:
    pgdata = data_dir / "postgres"
    print("starting hearth serve --with-worker (embedded PostgreSQL) ...", file=sys.stderr)
    with embedded_stack(processes, data_dir) as (pid, port, token):
        from hearth.db.embedded import running_database_url

        url = running_database_url(None, data_dir).replace("postgresql+psycopg://", "postgresql://")
        client = Client(port, token)
        wait_for_worker(client)
        with psycopg.connect(url, autocommit=True) as database:
            print(f"POST /documents and bare INSERTs, {ROUNDS} each ...", file=sys.stderr)
            posts, inserts = measure_posts(client, database)
            wait_until_drained(database)  # pings are queued to a worker at rest
            print(f"queued -> started, {PINGS} pings ...", file=sys.stderr)
            started, succeeded = measure_starts(client, database)
            wait_until_drained(database)
        client.connection.close()
        print(f"idle CPU over {IDLE_S:g} s ...", file=sys.stderr)
        at_rest = measure_idle(pid, pgdata)
    return Result(posts, inserts, started, succeeded, at_rest)


# --- The report ------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def rows(result: Result) -> list[tuple[str, ...]]:
    post50, insert50 = statistics.median(result.post), statistics.median(result.insert)
    started50, started95 = statistics.median(result.started), percentile(result.started, 0.95)
    cpu = result.idle.percent(result.idle.total)
    return [
        ("figure", "hearth", "baseline", "target", "verdict"),
        (
            "POST /documents p50",
            ms(post50),
            f"bare INSERT {ms(insert50)}",
            f"<= {TARGET_POST_P50_MS:g} ms",
            common.met(post50 * 1000 <= TARGET_POST_P50_MS),
        ),
        (
            "POST /documents p95",
            ms(percentile(result.post, 0.95)),
            f"bare INSERT {ms(percentile(result.insert, 0.95))}",
            "",
            "",
        ),
        (
            "queued -> started p50 / p95",
            f"{ms(started50)} / {ms(started95)}",
            "",
            f"<= {TARGET_START_MS:g} ms",
            common.met(started95 * 1000 <= TARGET_START_MS),
        ),
        (
            "POST -> SUCCESS seen by a client, p50 / p95",
            f"{ms(statistics.median(result.succeeded))} / {ms(percentile(result.succeeded, 0.95))}",
            "",
            "",
            "",
        ),
        (
            f"idle CPU, {sum(result.idle.processes.values())} processes, {IDLE_S:g} s",
            f"{cpu:.2f} % of a core",
            "",
            f"<= {TARGET_IDLE_CPU_PERCENT:g} %",
            common.met(cpu <= TARGET_IDLE_CPU_PERCENT),
        ),
    ]


def benchmark() -> int:
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="hearth-bench-queue-")).resolve()
    data_dir = work / "data"
    processes = Processes(work)
    try:
        result = run_benchmark(processes, data_dir)
    finally:
        with common.signals_ignored():
            print("cleaning up ...", file=sys.stderr)
            processes.close()
            serve_startup.stop_leftover_postgres(data_dir / "postgres")
            shutil.rmtree(work, ignore_errors=True)
    print()
    print("Embedded queue (the task queue in PostgreSQL), hearth serve --with-worker")
    print(common.table(rows(result)))
    print(f"\nIdle CPU over {IDLE_S:g} s, by process")
    print(common.table(idle.rows(result.idle)))
    print(f"\n({time.monotonic() - started:.0f} s)")
    return 0


def main() -> int:
    return common.run_main(benchmark)


if __name__ == "__main__":
    sys.exit(main())
