"""Start-up time and idle memory of ``hearth serve``, against a bare Uvicorn.

1. Start-up: ``hearth serve`` on a warm data dir with the embedded PostgreSQL (DATABASE_URL
   unset, HEARTH_DATA_DIR a temporary directory, initialised by one cold start first), from
   starting the process to the first HTTP 200 on ``/readyz``; median of 5 starts.
   Baseline: a bare Uvicorn serving an empty FastAPI app (one route), from starting the
   process to its first 200; median of 5. The two kinds of start alternate, so both see the
   same load on a shared machine. Target: hearth <= 2x the baseline. Beside it, the CPU
   seconds each process had used by then, which the machine's other work sways less.
2. Idle memory: RSS of the ``hearth serve`` process once it is ready, has answered a few
   requests and has been idle for ~2 s; the embedded PostgreSQL processes (the postmaster
   whose command line names the data dir, and its children) are reported separately.
   Baseline: the RSS of the bare Uvicorn app, measured the same way. Target: <= 1.6x the
   baseline.
"""

from __future__ import annotations

import signal
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import psutil
from tests.support.process import clean_environment, hearth_server
from tests.support.services import free_port

from bench import common, served_apps
from bench.common import LOOPBACK, MB, STOP_TIMEOUT_S, BenchError, Processes

STARTS = 5  # warm starts measured, of hearth and of the baseline each
COLD_START_TIMEOUT_S = 120.0  # the first start runs initdb
START_TIMEOUT_S = 30.0
IDLE_S = 2.0
REQUESTS_BEFORE_IDLE = 5  # per path

# Ratios to the baseline measured in the same run: a loaded or slower machine moves both.
TARGET_START_RATIO = 2.0
TARGET_RSS_RATIO = 1.6


# --- Timing a start and reading its memory ----------------------------------------------


def idle_rss(pid: int, port: int, paths: Sequence[str]) -> int:
    """RSS in bytes after a few requests to each path and IDLE_S seconds of rest."""
    common.get_each(
        port, paths, REQUESTS_BEFORE_IDLE, timeout=REQUESTS_BEFORE_IDLE * START_TIMEOUT_S
    )
    time.sleep(IDLE_S)
    rss: int = psutil.Process(pid).memory_info().rss
    return rss


# --- Embedded PostgreSQL ---------------------------------------------------------------


def postgres_processes(pgdata: Path) -> list[psutil.Process]:
    """The postmaster whose command line names ``pgdata``, and all its children."""
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


# --- The measurement -------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds process ``pid`` has used so far."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


@dataclass
class StartupResult:
    cold_start: float
    hearth_starts: list[float]
    baseline_starts: list[float]
    hearth_rss: int
    baseline_rss: int
    postgres: PostgresMemory
    # CPU seconds (user and system) each process had used when it first answered 200: less
    # swayed than the time by the other work of a shared machine. The embedded PostgreSQL,
    # which boots in processes of its own, is not counted.
    hearth_cpu: list[float] = field(default_factory=list)
    baseline_cpu: list[float] = field(default_factory=list)


def measure_startup(processes: Processes, data_dir: Path) -> StartupResult:
    """Times STARTS warm starts of each kind, alternating, after one cold start of hearth;
    reads the memory on the last start of each."""
    pgdata = data_dir / "postgres"
    hearth_env = clean_environment(HOST=LOOPBACK, HEARTH_DATA_DIR=str(data_dir))
    baseline_env = served_apps.environment(clean_environment())

    def start_hearth(timeout: float, *, last: bool = False) -> tuple[float, int, PostgresMemory]:
        """One ``hearth serve``, started and stopped by the test suite's helper."""
        port = free_port()
        rss, postgres = 0, PostgresMemory(0, 0, None)
        started = time.perf_counter()
        with hearth_server(hearth_env, processes.log_dir, port) as server:
            log = partial(common.tail, server.output)
            seconds = common.wait_for_200(server.process, port, "/readyz", started, timeout, log)
            hearth_cpu.append(cpu_seconds(server.process.pid))
            if last:  # memory: once, after the timed starts are done
                rss = idle_rss(server.process.pid, port, ["/livez", "/readyz", "/health"])
                postgres = postgres_memory(pgdata)
        wait_postgres_stopped(pgdata)
        return seconds, rss, postgres

    def start_baseline(*, last: bool) -> tuple[float, int]:
        port = free_port()
        started = time.perf_counter()
        process = processes.start(served_apps.command("empty", port), baseline_env)
        log = partial(processes.log_tail, process)
        seconds = common.wait_for_200(process, port, "/", started, START_TIMEOUT_S, log)
        baseline_cpu.append(cpu_seconds(process.pid))
        rss = idle_rss(process.pid, port, ["/"]) if last else 0
        processes.stop(process)
        return seconds, rss

    hearth_cpu: list[float] = []
    baseline_cpu: list[float] = []
    print("start-up: cold start of hearth serve (initdb) ...", file=sys.stderr)
    cold_start, _, _ = start_hearth(COLD_START_TIMEOUT_S)
    hearth_cpu.clear()  # the cold start's initdb and first migration are not compared

    hearth_starts: list[float] = []
    baseline_starts: list[float] = []
    for run in range(1, STARTS + 1):
        print(f"start-up: warm start {run} of {STARTS} ...", file=sys.stderr)
        last = run == STARTS
        seconds, hearth_rss, postgres = start_hearth(START_TIMEOUT_S, last=last)
        hearth_starts.append(seconds)
        seconds, baseline_rss = start_baseline(last=last)
        baseline_starts.append(seconds)
    return StartupResult(
        cold_start,
        hearth_starts,
        baseline_starts,
        hearth_rss,
        baseline_rss,
        postgres,
        hearth_cpu,
        baseline_cpu,
    )


# --- The report ------------------------------------------------------------------------


def rows(startup: StartupResult) -> list[tuple[str, ...]]:
    """The report's rows: start-up, idle RSS of the server, idle RSS of PostgreSQL."""
    hearth_start = statistics.median(startup.hearth_starts)
    baseline_start = statistics.median(startup.baseline_starts)
    hearth_mb = startup.hearth_rss / MB
    baseline_mb = startup.baseline_rss / MB
    return [
        (
            f"start-up to first 200, median of {STARTS}",
            f"{hearth_start:.2f} s",
            f"{baseline_start:.2f} s",
            f"{hearth_start - baseline_start:+.2f} s ({hearth_start / baseline_start:.1f}x)",
            f"<= {TARGET_START_RATIO:g}x",
            common.met(hearth_start / baseline_start <= TARGET_START_RATIO),
        ),
        *_cpu_rows(startup),
        (
            "idle RSS, server process",
            f"{hearth_mb:.1f} MB",
            f"{baseline_mb:.1f} MB",
            f"{hearth_mb - baseline_mb:+.1f} MB ({hearth_mb / baseline_mb:.1f}x)",
            f"<= {TARGET_RSS_RATIO:g}x",
            common.met(hearth_mb / baseline_mb <= TARGET_RSS_RATIO),
        ),
        (
            "idle RSS, embedded PostgreSQL",
            f"{startup.postgres.rss / MB:.1f} MB",
            "-",
            "-",
            "(separate)",
            "",
        ),
    ]


def _cpu_rows(startup: StartupResult) -> list[tuple[str, ...]]:
    if not startup.hearth_cpu or not startup.baseline_cpu:
        return []
    ours = statistics.median(startup.hearth_cpu)
    theirs = statistics.median(startup.baseline_cpu)
    return [
        (
            "  CPU used until then, server process",
            f"{ours:.2f} s",
            f"{theirs:.2f} s",
            f"{ours - theirs:+.2f} s ({ours / theirs:.1f}x)",
            "(reported)",
            "",
        )
    ]


def details(startup: StartupResult) -> list[str]:
    """The report's detail lines: every start, and the embedded PostgreSQL's memory."""

    def seconds(values: list[float]) -> str:
        return " ".join(f"{value:.2f}" for value in values) + " s"

    postgres = startup.postgres
    pss = f", PSS sum {postgres.pss / MB:.1f} MB" if postgres.pss is not None else ""
    return [
        f"  hearth serve -> /readyz 200, warm starts: {seconds(startup.hearth_starts)}",
        f"  cold start (initdb, first migration):      {startup.cold_start:.2f} s",
        f"  bare uvicorn empty app -> / 200:           {seconds(startup.baseline_starts)}",
        (
            f"  CPU until then, hearth serve / bare:       {seconds(startup.hearth_cpu)} / "
            f"{seconds(startup.baseline_cpu)}"
        ),
        (
            f"  embedded PostgreSQL: {postgres.processes} processes, RSS sum "
            f"{postgres.rss / MB:.1f} MB{pss} (RSS counts shared memory in every process)"
        ),
    ]
