"""``/health`` throughput of Hearth's app, against an empty route on the same app and server.

``GET /health`` requests per second, against ``GET /bench/empty`` (a route returning ``{}``)
added to the same app object built by ``hearth.app.factory.create_app``, served by
``hearth.app.server.run`` itself (one Uvicorn process, ``bench.served_apps``), with logging
at WARNING. The app uses a fresh database on the PostgreSQL at 127.0.0.1:5432 and Redis at
127.0.0.1:6379/15 (the test suite's servers: ``tests.support.services``), so the health
checks are real; their results are cached for HEALTH_CACHE_SECONDS (default 2 s), as in
production. Load: ``wrk`` with 2 threads and 32 connections, 10 s per route, in the order
empty, health, empty, health; the mean of each route. Target: health >= 0.8x empty.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import partial

from tests.support.process import clean_environment
from tests.support.services import free_port

from bench import common, served_apps
from bench.common import LOOPBACK, BenchError, Processes
from bench.served_apps import EMPTY_ROUTE

REDIS_URL = common.redis_url(15)
WRK_THREADS = 2
WRK_CONNECTIONS = 32
WRK_SECONDS = 10
WRK_ROUNDS = 2
WARM_UP_REQUESTS = 50  # per route, before the measured wrk runs
WARM_UP_TIMEOUT_S = 15.0
START_TIMEOUT_S = 30.0
INSTALL_TIMEOUT_S = 300.0

TARGET_THROUGHPUT_RATIO = 0.8


# --- wrk -------------------------------------------------------------------------------


def ensure_wrk() -> str:
    """The path of ``wrk``; installed with apt-get when missing and this runs as root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise BenchError(
            "wrk is not installed. Install the Debian package `wrk` "
            "(sudo apt-get install -y wrk) and run the benchmark again."
        )
    print("wrk is missing: installing it with apt-get ...", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    try:
        for attempt in ([install], [["apt-get", "update", "-q"], install]):
            results = [
                subprocess.run(
                    command, env=env, capture_output=True, timeout=INSTALL_TIMEOUT_S, check=False
                )
                for command in attempt
            ]
            if results[-1].returncode == 0 and (found := shutil.which("wrk")):
                return found
    except subprocess.TimeoutExpired:
        pass
    raise BenchError("could not install wrk with `apt-get install -y wrk`; install it and retry")


@dataclass
class WrkRun:
    route: str
    requests_per_second: float
    non_2xx: int
    socket_errors: int
    latency: str


def run_wrk(wrk: str, port: int, route: str) -> WrkRun:
    command = [
        wrk,
        f"-t{WRK_THREADS}",
        f"-c{WRK_CONNECTIONS}",
        f"-d{WRK_SECONDS}s",
        f"http://{LOOPBACK}:{port}{route}",
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=WRK_SECONDS + 30, check=False
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk did not finish within {WRK_SECONDS + 30} s") from None
    rate = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    if result.returncode != 0 or rate is None:
        raise BenchError(f"wrk failed on {route}:\n{result.stdout}{result.stderr}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", result.stdout)
    errors = re.search(r"Socket errors:(.*)", result.stdout)
    latency = re.search(r"Latency\s+(\S+)", result.stdout)
    return WrkRun(
        route=route,
        requests_per_second=float(rate.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(map(int, re.findall(r"\d+", errors.group(1)))) if errors else 0,
        latency=latency.group(1) if latency else "?",
    )


# --- The measurement -------------------------------------------------------------------


@dataclass
class ThroughputResult:
    runs: list[WrkRun]
    health_status: str

    def mean(self, route: str) -> float:
        return statistics.mean(r.requests_per_second for r in self.runs if r.route == route)


def measure_throughput(processes: Processes, wrk: str, database_url: str) -> ThroughputResult:
    """WRK_ROUNDS rounds of the empty route, then /health, on one server of Hearth's app."""
    port = free_port()
    env = clean_environment(
        HOST=LOOPBACK, DATABASE_URL=database_url, REDIS_URL=REDIS_URL, LOG_LEVEL="WARNING"
    )
    print("throughput: starting the app ...", file=sys.stderr)
    started = time.perf_counter()
    process = processes.start(served_apps.command("hearth", port), served_apps.environment(env))
    log = partial(processes.log_tail, process)
    common.wait_for_200(process, port, "/readyz", started, START_TIMEOUT_S, log)
    answers = common.get_each(port, [EMPTY_ROUTE, "/health"], WARM_UP_REQUESTS, WARM_UP_TIMEOUT_S)
    health_status = describe_health(answers["/health"])
    runs: list[WrkRun] = []
    for round_number in range(1, WRK_ROUNDS + 1):
        for route in (EMPTY_ROUTE, "/health"):
            print(
                f"throughput: round {round_number} of {WRK_ROUNDS}, {route} ({WRK_SECONDS} s) ...",
                file=sys.stderr,
            )
            runs.append(run_wrk(wrk, port, route))
    processes.stop(process)
    return ThroughputResult(runs, health_status)


def describe_health(answer: tuple[int, bytes] | None) -> str:
    """``ok (db ok, redis ok, llm unconfigured)`` from a /health answer."""
    if answer is None:
        return "no answer"
    status, body = answer
    try:
        report = json.loads(body)
        checks = ", ".join(f"{name} {c['status']}" for name, c in report["checks"].items())
        return f"{report['status']} ({checks})"
    except (ValueError, KeyError, TypeError, AttributeError):
        return f"HTTP {status}, unreadable body"


# --- The report ------------------------------------------------------------------------


def rows(throughput: ThroughputResult) -> list[tuple[str, ...]]:
    """The report's row: /health against the empty route."""
    health_rps = throughput.mean("/health")
    empty_rps = throughput.mean(EMPTY_ROUTE)
    ratio = health_rps / empty_rps if empty_rps else 0.0
    return [
        (
            "/health throughput",
            f"{health_rps:.0f} req/s",
            f"{empty_rps:.0f} req/s",
            f"{ratio:.2f}x",
            f">= {TARGET_THROUGHPUT_RATIO}x",
            common.met(ratio >= TARGET_THROUGHPUT_RATIO),
        )
    ]


def details(throughput: ThroughputResult) -> list[str]:
    """The report's detail lines: each wrk run, errors, and what /health said."""
    by_route = ", ".join(
        f"{run.route} {run.requests_per_second:.0f} (latency {run.latency})"
        for run in throughput.runs
    )
    non_2xx = sum(run.non_2xx for run in throughput.runs)
    socket_errors = sum(run.socket_errors for run in throughput.runs)
    return [
        (
            f"  throughput: wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{WRK_SECONDS}s, "
            f"baseline {EMPTY_ROUTE} on the same app and server; req/s in order: {by_route}"
        ),
        f"  non-2xx responses {non_2xx}, socket errors {socket_errors}",
        f"  /health during the runs: {throughput.health_status}",
    ]
