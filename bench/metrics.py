"""What the metrics cost: the request middleware's share of an empty route's throughput, the
time of a ``/metrics`` scrape with 10 000 tasks and 100 000 documents recorded, and idle
memory of ``hearth serve`` and ``hearth worker`` with and without metrics. Each figure is
printed beside its baseline, measured in the same run on the same machine. It reports; it
asserts nothing.

Throughput: two servers of Hearth's app plus ``GET /bench/empty`` (``bench.served_apps``),
one with METRICS_ENABLED=true, one with false, both up at once; ``wrk`` (2 threads, 32
connections, 10 s per run) on the empty route and ``/health``, alternating the two servers
(which goes first alternates too), WRK_ROUNDS rounds; the median of each round's ratio.
Target: the empty route with metrics at least 0.9x without (the middleware costs at most
10 %). On a shared machine runs vary more than that, so the middleware is also timed alone,
in-process (MIDDLEWARE_CALLS requests through it and through nothing, best of 5), and its
cost per request is set against the time of one empty-route request without metrics.

Scrape: a fresh database with 100 000 documents (half embedded), a ``hearth worker``
(prefork, 2 children) that ran 10 000 ``hearth.ping`` tasks (BENCH_METRICS_TASKS), its
snapshot in its heartbeat; SCRAPES scrapes of ``/metrics`` with a metrics token, one at a
time; median and 95th percentile, client side. Target: median <= 50 ms.

Memory: RSS of each server after the runs and IDLE_S seconds of rest; of each worker (main
process and pool children) after the same tasks and rest: with metrics against without.

The PostgreSQL and Redis of the test suite (``tests.support.services``); Redis database
BENCH_METRICS_REDIS_DB (default 13), flushed before and after; the database is dropped.
Usage: ``make bench`` or ``.venv/bin/python -m bench.metrics``.
"""

from __future__ import annotations

import http.client
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from celery import Celery
from prometheus_client.parser import text_string_to_metric_families
from tests.support.process import HEARTH, clean_environment, run_hearth
from tests.support.tokens import insert_token

from bench import common, serve_throughput
from bench.common import LOOPBACK, MB, BenchError, Processes
from bench.metrics_requests import (
    WRK_ROUNDS,
    RequestCost,
    measure_middleware,
    measure_throughput,
    serve,
)
from bench.served_apps import EMPTY_ROUTE
from bench.worker_memory import memory_of

REDIS_URL = common.redis_url(int(os.environ.get("BENCH_METRICS_REDIS_DB", "13")))
TASKS = int(os.environ.get("BENCH_METRICS_TASKS", "10000"))
DOCUMENTS = 100_000
SCRAPES = 50
IDLE_S = 10.0
START_TIMEOUT_S = 60.0
TASKS_TIMEOUT_S = 900.0
TARGET_MIDDLEWARE_RATIO = 0.9
TARGET_SCRAPE_MS = 50.0


@dataclass
class MetricsBench:
    requests: RequestCost = field(default_factory=RequestCost)
    worker_rss: dict[bool, tuple[int, int]] = field(default_factory=dict)  # main, total
    scrape_ms: list[float] = field(default_factory=list)
    scrape_bytes: int = 0
    tasks_counted: float = 0.0
    seconds: dict[bool, float] = field(default_factory=dict)  # running the tasks


def _get(port: int, path: str, token: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _sample_sum(body: bytes, name: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if sample.name == name
    )


def _fill_documents(database_url: str) -> None:
    print(f"scrape: storing {DOCUMENTS} documents ...", file=sys.stderr)
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO documents (text, embedded_at) SELECT 'document ' || i, "
            "CASE WHEN i %% 2 = 0 THEN now() END FROM generate_series(1, %s) AS i",
            (DOCUMENTS,),
        )
        connection.execute("VACUUM ANALYZE documents")


def run_tasks(
    processes: Processes, env: dict[str, str], *, metrics: bool, result: MetricsBench
) -> Processes:
    """A worker with or without metrics runs TASKS pings; its idle RSS after. Left running
    (metrics on) for the scrapes."""
    side = clean_environment(**env, METRICS_ENABLED=str(metrics).lower())
    worker = processes.start([HEARTH, "worker", "--concurrency", "2"], side, name="worker")
    client = Celery("bench-metrics", broker=REDIS_URL)
    try:
        time.sleep(5)  # the pool forks; the first heartbeat is written
        print(f"tasks: sending {TASKS} pings (metrics {metrics}) ...", file=sys.stderr)
        started = time.monotonic()
        for _ in range(TASKS):
            client.send_task("hearth.ping", ignore_result=True)
        redis = common.redis_client(REDIS_URL, 10)
        while redis.llen("celery") > 0:
            if time.monotonic() - started > TASKS_TIMEOUT_S or worker.poll() is not None:
                raise BenchError(
                    f"the worker did not drain the queue: {processes.log_tail(worker)}"
                )
            time.sleep(0.5)
        result.seconds[metrics] = time.monotonic() - started
    finally:
        client.close()
    time.sleep(IDLE_S)
    memory = memory_of(worker.pid)
    result.worker_rss[metrics] = (memory.main_rss, memory.total_rss)
    if not metrics:
        processes.stop(worker)
    return processes


def measure_scrapes(port: int, token: str, result: MetricsBench) -> None:
    """Wait until the worker's snapshot counts every task, then time SCRAPES scrapes."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, body = _get(port, "/metrics", token)
        result.tasks_counted = _sample_sum(body, "hearth_tasks_total")
        if status == 200 and result.tasks_counted >= TASKS:
            break
        time.sleep(1)
    for _ in range(SCRAPES):
        started = time.perf_counter()
        status, body = _get(port, "/metrics", token)
        result.scrape_ms.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise BenchError(f"/metrics answered {status}: {body[:200]!r}")
    result.scrape_bytes = len(body)


def benchmark() -> int:
    started = time.monotonic()
    wrk = serve_throughput.ensure_wrk()
    common.check_services(REDIS_URL, 10)
    work = Path(tempfile.mkdtemp(prefix="hearth-bench-metrics-")).resolve()
    database = f"hearth_bench_metrics_{secrets.token_hex(4)}"
    processes = Processes(work)
    redis = common.redis_client(REDIS_URL, 10)
    result = MetricsBench()
    try:
        redis.flushdb()
        database_url = common.create_database(database)
        base = {"DATABASE_URL": database_url, "REDIS_URL": REDIS_URL, "LOG_LEVEL": "WARNING"}
        done = run_hearth("migrate", env=clean_environment(**base), cwd=work, timeout=120)
        if done.returncode != 0:
            raise BenchError(f"hearth migrate failed: {done.stderr}")
        _fill_documents(database_url)
        token = insert_token(database_url, ("metrics",), name="bench")
        env = {**base, "HOST": LOOPBACK, "WORKER_HEARTBEAT_SECONDS": "2"}
        result.requests.middleware_us = measure_middleware()
        measure_throughput(processes, wrk, env, result.requests)
        run_tasks(processes, base | {"WORKER_HEARTBEAT_SECONDS": "2"}, metrics=False, result=result)
        run_tasks(processes, base | {"WORKER_HEARTBEAT_SECONDS": "2"}, metrics=True, result=result)
        port, _ = serve(processes, env, metrics=True)
        measure_scrapes(port, token, result)
    finally:
        with common.signals_ignored():
            print("cleaning up ...", file=sys.stderr)
            processes.close()
            common.drop_database(database)
            redis.flushdb()
            shutil.rmtree(work, ignore_errors=True)
    print_report(result, time.monotonic() - started)
    return 0


def print_report(result: MetricsBench, elapsed: float) -> None:
    rps = {key: statistics.mean(runs) for key, runs in result.requests.rps.items()}
    on, off = True, False

    def ratio(route: str) -> float:
        pairs = zip(result.requests.rps[route, on], result.requests.rps[route, off], strict=True)
        return statistics.median(with_ / without for with_, without in pairs)

    empty_ratio, health_ratio = ratio(EMPTY_ROUTE), ratio("/health")
    request_us = 1e6 / rps[EMPTY_ROUTE, off]
    share = result.requests.middleware_us / request_us
    median = statistics.median(result.scrape_ms)
    p95 = statistics.quantiles(result.scrape_ms, n=20)[-1]
    worker_on, worker_off = result.worker_rss[on], result.worker_rss[off]
    rows = [
        ("figure", "with metrics", "without", "ratio", "target", ""),
        (
            f"{EMPTY_ROUTE} throughput",
            f"{rps[EMPTY_ROUTE, on]:.0f} req/s",
            f"{rps[EMPTY_ROUTE, off]:.0f} req/s",
            f"{empty_ratio:.3f}x",
            f">= {TARGET_MIDDLEWARE_RATIO}x",
            common.met(empty_ratio >= TARGET_MIDDLEWARE_RATIO),
        ),
        (
            "middleware, in-process",
            f"{result.requests.middleware_us:.1f} us/request",
            f"{request_us:.0f} us/request",
            f"{share:.1%}",
            "<= 10%",
            common.met(share <= 1 - TARGET_MIDDLEWARE_RATIO),
        ),
        (
            "/health throughput",
            f"{rps['/health', on]:.0f} req/s",
            f"{rps['/health', off]:.0f} req/s",
            f"{health_ratio:.3f}x",
            "",
            "",
        ),
        (
            "/metrics scrape (median)",
            f"{median:.1f} ms",
            "",
            "",
            f"<= {TARGET_SCRAPE_MS:g} ms",
            common.met(median <= TARGET_SCRAPE_MS),
        ),
        (
            "idle RSS, hearth serve",
            *_memory(result.requests.server_rss[on], result.requests.server_rss[off]),
        ),
        ("idle RSS, worker main", *_memory(worker_on[0], worker_off[0])),
        ("idle RSS, worker + 2 children", *_memory(worker_on[1], worker_off[1])),
    ]
    details = [
        (
            f"  throughput: wrk -t2 -c32 -d10s, {WRK_ROUNDS} rounds, servers alternated, ratio "
            "the median of the rounds' ratios; req/s by run: "
            + ", ".join(
                f"{route} metrics {side}: {runs}"
                for (route, side), runs in result.requests.rps.items()
            )
        ),
        (
            f"  scrape: {SCRAPES} scrapes, median {median:.1f} ms, p95 {p95:.1f} ms, "
            f"max {max(result.scrape_ms):.1f} ms, {result.scrape_bytes} bytes; "
            f"{DOCUMENTS} documents, {result.tasks_counted:.0f} tasks counted of {TASKS} sent"
        ),
        (
            f"  tasks: {TASKS} pings ran in {result.seconds[on]:.1f} s with metrics, "
            f"{result.seconds[off]:.1f} s without (concurrency 2)"
        ),
    ]
    common.print_report(
        "Hearth metrics benchmark: each figure beside its baseline, measured in this run",
        rows,
        details,
        elapsed,
    )


def _memory(on: int, off: int) -> tuple[str, str, str, str, str]:
    return (f"{on / MB:.1f} MB", f"{off / MB:.1f} MB", f"{on / off:.3f}x", "", "")


def main() -> int:
    return common.run_main(benchmark)


if __name__ == "__main__":
    sys.exit(main())
