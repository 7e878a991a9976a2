"""Hearth's benchmark: start-up time, idle memory and ``/health`` throughput, each printed next
to a baseline measured in the same run on the same machine. It reports; it asserts nothing.

What it measures, and against what:

1. Start-up: ``hearth serve`` on a warm data dir with the embedded PostgreSQL (DATABASE_URL
   unset, HEARTH_DATA_DIR a temporary directory, initialised by one cold start first), from
   starting the process to the first HTTP 200 on ``/readyz``; median of 5 starts.
   Baseline: a bare Uvicorn serving an empty FastAPI app (one route), from starting the
   process to its first 200; median of 5. The two kinds of start alternate, so both see the
   same load on a shared machine. Target: hearth <= 1.5 s.
2. Idle memory: RSS of the ``hearth serve`` process once it is ready, has answered a few
   requests and has been idle for ~2 s; the embedded PostgreSQL processes (the postmaster
   whose command line names the data dir, and its children) are reported separately.
   Baseline: the RSS of the bare Uvicorn app, measured the same way. Target: <= 100 MB.
3. Throughput: ``GET /health`` requests per second, against ``GET /bench/empty`` (a route
   returning ``{}``) added to the same app object built by ``hearth.web.app.create_app``,
   served by ``hearth.web.server.run`` itself (one Uvicorn process), with logging
   at WARNING. The app uses a fresh database on the PostgreSQL at 127.0.0.1:5432 (created and
   dropped by this script) and Redis at 127.0.0.1:6379/15, so the health checks are real;
   their results are cached for HEALTH_CACHE_SECONDS (default 2 s), as in production.
   Load: ``wrk`` with 2 threads and 32 connections, 10 s per route, in the order empty,
   health, empty, health; the mean of each route. Target: health >= 0.8x empty.

Every server it starts is stopped with SIGTERM and waited for (SIGKILL after 20 s), also on
error, Ctrl-C or SIGTERM; wrk runs are killed if interrupted; an embedded PostgreSQL left
behind by a failed stop is shut down. Traffic goes to 127.0.0.1 only. Exit status: 0 when
it ran (whether or not a target was met), 1 when it could not run.

Usage: ``make bench`` (or ``.venv/bin/python bench/run.py``). The ``--serve-*`` options
are internal: they are how the script serves the apps it measures, in subprocesses.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import common
from common import HEARTH, LOOPBACK, MB, STOP_TIMEOUT_S, BenchError, Processes

# Third-party modules are imported where they are used, so that the baseline served by
# ``--serve-empty-app`` imports FastAPI and Uvicorn and nothing else.

SCRIPT = str(Path(__file__).resolve())

STARTS = 5  # warm starts measured, of hearth and of the baseline each
COLD_START_TIMEOUT_S = 120.0  # the first start runs initdb
START_TIMEOUT_S = 30.0
POLL_INTERVAL_S = 0.01
REQUEST_TIMEOUT_S = 5.0
IDLE_S = 2.0
REQUESTS_BEFORE_IDLE = 5  # per path

REDIS_URL = f"redis://{LOOPBACK}:6379/15"
REDIS_SOCKET_TIMEOUT_S = 5.0
WRK_THREADS = 2
WRK_CONNECTIONS = 32
WRK_SECONDS = 10
WRK_ROUNDS = 2
WARM_UP_REQUESTS = 50  # per route, before the measured wrk runs
WARM_UP_TIMEOUT_S = 15.0
INSTALL_TIMEOUT_S = 300.0

TARGET_START_S = 1.5
TARGET_RSS_MB = 100.0
TARGET_THROUGHPUT_RATIO = 0.8

EMPTY_ROUTE = "/bench/empty"


# --- The apps served in subprocesses ----------------------------------------------------


async def _empty_route() -> dict[str, Any]:
    return {}


def serve_empty_app(port: int) -> int:
    """The baseline: a bare Uvicorn serving an empty FastAPI app with one route."""
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()
    app.add_api_route("/", _empty_route, methods=["GET"])
    signal.signal(signal.SIGTERM, lambda signum, frame: None)  # exit 0 after a clean stop
    uvicorn.run(app, host=LOOPBACK, port=port, log_level="warning", access_log=False)
    return 0


def serve_bench_app(port: int) -> int:
    """Hearth's real app plus ``GET /bench/empty``, served by ``hearth.web.server.run``."""
    from hearth.config.loader import load_settings
    from hearth.log import configure_logging
    from hearth.web.app import create_app
    from hearth.web.server import run

    settings = load_settings(host=LOOPBACK, port=port, log_level="WARNING")
    configure_logging(
        level="WARNING",
        fmt=settings.log_format,
        service=settings.service_name,
        secrets=settings.secret_values(),
    )
    app = create_app(settings)
    app.add_api_route(EMPTY_ROUTE, _empty_route, methods=["GET"])
    return run(settings, app)


# --- Processes -------------------------------------------------------------------------


def http_get(port: int, path: str) -> tuple[int, bytes] | None:
    """Status and body of ``GET http://127.0.0.1:port/path``, or None if nothing answered."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=REQUEST_TIMEOUT_S)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def requests(
    port: int, paths: Sequence[str], count: int, timeout: float
) -> dict[str, tuple[int, bytes] | None]:
    """``count`` requests to each path, one at a time, for at most ``timeout`` seconds;
    the last answer of each path."""
    deadline = time.monotonic() + timeout
    answers: dict[str, tuple[int, bytes] | None] = dict.fromkeys(paths)
    for _ in range(count):
        if time.monotonic() > deadline:
            break
        for path in paths:
            answers[path] = http_get(port, path)
    return answers


def start_until_ok(
    processes: Processes,
    command: Sequence[str],
    env: dict[str, str],
    port: int,
    path: str,
    timeout: float = START_TIMEOUT_S,
) -> tuple[subprocess.Popen[bytes], float]:
    """Start ``command``; return it and the seconds until ``path`` first answered 200."""
    started = time.perf_counter()
    process = processes.start(command, env)
    deadline = started + timeout
    while time.perf_counter() < deadline:
        answer = http_get(port, path)
        if answer is not None and answer[0] == 200:
            return process, time.perf_counter() - started
        if process.poll() is not None:
            raise BenchError(
                f"{' '.join(command)} exited with status {process.returncode} "
                f"before {path} answered 200; its output ends with:\n{processes.log_tail(process)}"
            )
        time.sleep(POLL_INTERVAL_S)
    raise BenchError(
        f"{path} did not answer 200 within {timeout:g} s; the server's output ends with:\n"
        f"{processes.log_tail(process)}"
    )


def idle_rss(process: subprocess.Popen[bytes], port: int, paths: Sequence[str]) -> int:
    """RSS in bytes after a few requests to each path and IDLE_S seconds of rest."""
    import psutil

    requests(port, paths, REQUESTS_BEFORE_IDLE, timeout=REQUESTS_BEFORE_IDLE * START_TIMEOUT_S)
    time.sleep(IDLE_S)
    rss: int = psutil.Process(process.pid).memory_info().rss
    return rss


# --- Embedded PostgreSQL ---------------------------------------------------------------


def postgres_processes(pgdata: Path) -> list[Any]:
    """The postmaster whose command line names ``pgdata``, and all its children."""
    import psutil

    found: dict[int, psutil.Process] = {}
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] == "postgres" and str(pgdata) in " ".join(cmdline):
            found[process.pid] = process
            try:
                found.update({child.pid: child for child in process.children(recursive=True)})
            except psutil.Error:
                continue
    return list(found.values())


@dataclass
class PostgresMemory:
    processes: int
    rss: int
    pss: int | None  # shared pages divided among the processes that map them


def postgres_memory(pgdata: Path) -> PostgresMemory:
    import psutil

    rss, pss, count = 0, 0, 0
    pss_known = True
    for process in postgres_processes(pgdata):
        try:
            rss += process.memory_info().rss
            count += 1
        except psutil.Error:
            continue
        try:
            pss += process.memory_full_info().pss
        except (psutil.Error, AttributeError):
            pss_known = False
    return PostgresMemory(count, rss, pss if pss_known else None)


def wait_postgres_stopped(pgdata: Path) -> None:
    pid_file = pgdata / "postmaster.pid"
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while pid_file.exists():
        if time.monotonic() > deadline:
            raise BenchError(f"embedded PostgreSQL still running: {pid_file} is still there")
        time.sleep(0.05)


def stop_leftover_postgres(pgdata: Path) -> None:
    """After an error: stop an embedded PostgreSQL that hearth did not stop (fast shutdown)."""
    import psutil

    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] != "postgres" or str(pgdata) not in " ".join(
            process.info["cmdline"] or []
        ):
            continue
        try:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=STOP_TIMEOUT_S)
        except psutil.NoSuchProcess:
            continue
        except psutil.TimeoutExpired:
            process.kill()


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


# --- The measurements ------------------------------------------------------------------


@dataclass
class StartupResult:
    cold_start: float
    hearth_starts: list[float]
    baseline_starts: list[float]
    hearth_rss: int
    baseline_rss: int
    postgres: PostgresMemory


def measure_startup(
    processes: Processes, base_env: dict[str, str], data_dir: Path
) -> StartupResult:
    pgdata = data_dir / "postgres"

    def start_hearth(timeout: float) -> tuple[subprocess.Popen[bytes], int, float]:
        port = common.free_port()
        env = common.hearth_environment(base_env, HEARTH_DATA_DIR=str(data_dir), PORT=str(port))
        command = [HEARTH, "serve", "--host", LOOPBACK, "--port", str(port)]
        process, seconds = start_until_ok(processes, command, env, port, "/readyz", timeout)
        return process, port, seconds

    def start_baseline() -> tuple[subprocess.Popen[bytes], int, float]:
        port = common.free_port()
        command = [sys.executable, SCRIPT, "--serve-empty-app", str(port)]
        process, seconds = start_until_ok(processes, command, base_env, port, "/")
        return process, port, seconds

    print("start-up: cold start of hearth serve (initdb) ...", file=sys.stderr)
    process, _, cold_start = start_hearth(COLD_START_TIMEOUT_S)
    processes.stop(process)
    wait_postgres_stopped(pgdata)

    hearth_starts: list[float] = []
    baseline_starts: list[float] = []
    hearth_rss = baseline_rss = 0
    postgres = PostgresMemory(0, 0, None)
    for run in range(1, STARTS + 1):
        print(f"start-up: warm start {run} of {STARTS} ...", file=sys.stderr)
        last = run == STARTS
        process, port, seconds = start_hearth(START_TIMEOUT_S)
        hearth_starts.append(seconds)
        if last:  # memory: once, after the timed starts are done
            hearth_rss = idle_rss(process, port, ["/livez", "/readyz", "/health"])
            postgres = postgres_memory(pgdata)
        processes.stop(process)
        wait_postgres_stopped(pgdata)

        process, port, seconds = start_baseline()
        baseline_starts.append(seconds)
        if last:
            baseline_rss = idle_rss(process, port, ["/"])
        processes.stop(process)
    return StartupResult(
        cold_start, hearth_starts, baseline_starts, hearth_rss, baseline_rss, postgres
    )


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


@dataclass
class ThroughputResult:
    runs: list[WrkRun]
    health_status: str

    def mean(self, route: str) -> float:
        return statistics.mean(r.requests_per_second for r in self.runs if r.route == route)


def measure_throughput(
    processes: Processes, base_env: dict[str, str], wrk: str, database_url: str
) -> ThroughputResult:
    port = common.free_port()
    env = common.hearth_environment(
        base_env, DATABASE_URL=database_url, REDIS_URL=REDIS_URL, LOG_LEVEL="WARNING"
    )
    command = [sys.executable, SCRIPT, "--serve-bench-app", str(port)]
    print("throughput: starting the app ...", file=sys.stderr)
    process, _ = start_until_ok(processes, command, env, port, "/readyz")
    answers = requests(port, [EMPTY_ROUTE, "/health"], WARM_UP_REQUESTS, WARM_UP_TIMEOUT_S)
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


def print_report(startup: StartupResult, throughput: ThroughputResult, elapsed: float) -> None:
    hearth_start = statistics.median(startup.hearth_starts)
    baseline_start = statistics.median(startup.baseline_starts)
    hearth_mb = startup.hearth_rss / MB
    baseline_mb = startup.baseline_rss / MB
    postgres = startup.postgres
    health_rps = throughput.mean("/health")
    empty_rps = throughput.mean(EMPTY_ROUTE)
    ratio = health_rps / empty_rps if empty_rps else 0.0

    rows = [
        ("figure", "hearth", "baseline", "hearth vs baseline", "target", ""),
        (
            f"start-up to first 200, median of {STARTS}",
            f"{hearth_start:.2f} s",
            f"{baseline_start:.2f} s",
            f"{hearth_start - baseline_start:+.2f} s ({hearth_start / baseline_start:.1f}x)",
            f"<= {TARGET_START_S} s",
            common.met(hearth_start <= TARGET_START_S),
        ),
        (
            "idle RSS, server process",
            f"{hearth_mb:.1f} MB",
            f"{baseline_mb:.1f} MB",
            f"{hearth_mb - baseline_mb:+.1f} MB ({hearth_mb / baseline_mb:.1f}x)",
            f"<= {TARGET_RSS_MB:.0f} MB",
            common.met(hearth_mb <= TARGET_RSS_MB),
        ),
        (
            "idle RSS, embedded PostgreSQL",
            f"{postgres.rss / MB:.1f} MB",
            "-",
            "-",
            "(separate)",
            "",
        ),
        (
            "/health throughput",
            f"{health_rps:.0f} req/s",
            f"{empty_rps:.0f} req/s",
            f"{ratio:.2f}x",
            f">= {TARGET_THROUGHPUT_RATIO}x",
            common.met(ratio >= TARGET_THROUGHPUT_RATIO),
        ),
    ]

    def seconds(values: list[float]) -> str:
        return " ".join(f"{value:.2f}" for value in values) + " s"

    pss = f", PSS sum {postgres.pss / MB:.1f} MB" if postgres.pss is not None else ""
    by_route = ", ".join(
        f"{run.route} {run.requests_per_second:.0f} (latency {run.latency})"
        for run in throughput.runs
    )
    non_2xx = sum(run.non_2xx for run in throughput.runs)
    socket_errors = sum(run.socket_errors for run in throughput.runs)
    common.print_heading(
        "Hearth benchmark: each figure beside its baseline, measured in this run", elapsed
    )
    print(common.table(rows))
    print()
    print("Details:")
    print(f"  hearth serve -> /readyz 200, warm starts: {seconds(startup.hearth_starts)}")
    print(f"  cold start (initdb, first migration):      {startup.cold_start:.2f} s")
    print(f"  bare uvicorn empty app -> / 200:           {seconds(startup.baseline_starts)}")
    print(
        f"  embedded PostgreSQL: {postgres.processes} processes, RSS sum "
        f"{postgres.rss / MB:.1f} MB{pss} (RSS counts shared memory in every process)"
    )
    print(
        f"  throughput: wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{WRK_SECONDS}s, "
        f"baseline {EMPTY_ROUTE} on the same app and server; req/s in order: {by_route}"
    )
    print(f"  non-2xx responses {non_2xx}, socket errors {socket_errors}")
    print(f"  /health during the runs: {throughput.health_status}")


# --- Entry point -----------------------------------------------------------------------


def benchmark() -> int:
    started = time.monotonic()
    wrk = ensure_wrk()
    common.check_services(REDIS_URL, REDIS_SOCKET_TIMEOUT_S)
    base_env = common.clean_environment()
    work = Path(tempfile.mkdtemp(prefix="hearth-bench-")).resolve()
    data_dir = work / "data"
    database = f"hearth_bench_{secrets.token_hex(4)}"
    processes = Processes(work)
    try:
        startup = measure_startup(processes, base_env, data_dir)
        database_url = common.create_database(database)
        throughput = measure_throughput(processes, base_env, wrk, database_url)
    finally:
        with common.signals_ignored():
            print("cleaning up ...", file=sys.stderr)
            processes.close()
            stop_leftover_postgres(data_dir / "postgres")
            common.drop_database(database)
            shutil.rmtree(work, ignore_errors=True)
    print_report(startup, throughput, time.monotonic() - started)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    internal = parser.add_mutually_exclusive_group()
    internal.add_argument("--serve-empty-app", type=int, metavar="PORT", help=argparse.SUPPRESS)
    internal.add_argument("--serve-bench-app", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_empty_app:
        return serve_empty_app(args.serve_empty_app)
    if args.serve_bench_app:
        return serve_bench_app(args.serve_bench_app)
    return common.run_main(benchmark)


if __name__ == "__main__":
    sys.exit(main())
