"""What Hearth's benchmarks (``bench.server``, ``bench.tasks``) share and the test suite's
helpers (``tests.support``) do not provide: a launcher that stops whole process groups, the
bench databases, plain HTTP requests polled finely enough to time a start-up, signal handling
and the report's table. Free ports, the clean environment, ``hearth serve``, ``hearth migrate``
and where PostgreSQL and Redis are come from ``tests.support``, as the tests use them.
"""

from __future__ import annotations

import http.client
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import psycopg
import redis
from psycopg import sql
from tests.support import needs, services
from tests.support.postgres import OwnedPostgres
from tests.support.worker import OwnedRedis

LOOPBACK = "127.0.0.1"

STOP_TIMEOUT_S = 20.0
REQUEST_TIMEOUT_S = 5.0  # one plain GET
POLL_INTERVAL_S = 0.01  # waiting for a first 200: the start-up is timed by it

MB = 1024 * 1024


class BenchError(Exception):
    """The benchmark could not run; the message says why."""


# --- Processes -------------------------------------------------------------------------


class Processes:
    """Starts processes, each in its own session (so a Ctrl-C reaches this script only),
    with output to a log file; stops each as a whole process group (so a worker's pool goes
    with it), and on ``close()`` every one still running, the last started first."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: list[subprocess.Popen[bytes]] = []
        self.logs: dict[int, Path] = {}
        self._count = 0

    def start(
        self, command: Sequence[str], env: dict[str, str], name: str = "process"
    ) -> subprocess.Popen[bytes]:
        """Start ``command``; its output goes to ``<name>-<n>.log`` in the log directory."""
        self._count += 1
        log_path = self.log_dir / f"{name}-{self._count}.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                command,
                env=env,
                cwd=self.log_dir,  # no .env from the project: only the environment given
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.running.append(process)
        self.logs[process.pid] = log_path
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        """SIGTERM to the whole group and wait for the process; then SIGKILL to whatever is
        left of the group (a pool child, or a process that ignored SIGTERM)."""
        group = process.pid  # the session leader's pid is the group id
        _signal_group(process, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_TIMEOUT_S)
        if process.poll() is None or not _group_gone(group, 5.0):
            _signal_group(process, signal.SIGKILL)
            _group_gone(group, STOP_TIMEOUT_S)
            with suppress(subprocess.TimeoutExpired):  # then it cannot be stopped at all
                process.wait(timeout=STOP_TIMEOUT_S)
        if process in self.running:
            self.running.remove(process)

    def close(self) -> None:
        for process in reversed(list(self.running)):
            self.stop(process)

    def log_tail(self, process: subprocess.Popen[bytes]) -> str:
        path = self.logs.get(process.pid)
        return "" if path is None else tail(path)


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of the log at ``path``; empty if it cannot be read."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """``sig`` to the process group ``process`` leads; to the process alone if it has not
    made its group yet (just after the fork, before ``setsid``)."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        if process.poll() is None:
            with suppress(ProcessLookupError):
                os.kill(process.pid, sig)


def _group_gone(group: int, timeout: float) -> bool:
    """Wait until no process is left in ``group``; False if some are after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


# --- HTTP ------------------------------------------------------------------------------


def http_get(port: int, path: str, timeout: float = REQUEST_TIMEOUT_S) -> tuple[int, bytes] | None:
    """Status and body of ``GET http://127.0.0.1:port/path``, or None if nothing answered."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def get_each(
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


def wait_for_200(  # noqa: PLR0913, PLR0917 (what to poll, then when it started and for how long)
    process: subprocess.Popen[Any],
    port: int,
    path: str,
    started: float,
    timeout: float,
    log: Callable[[], str],
) -> float:
    """The seconds from ``started`` (``time.perf_counter()``) until ``path`` first answered
    200, polled every POLL_INTERVAL_S."""
    deadline = started + timeout
    while time.perf_counter() < deadline:
        answer = http_get(port, path)
        if answer is not None and answer[0] == 200:
            return time.perf_counter() - started
        if process.poll() is not None:
            args = process.args
            command = " ".join(map(str, args)) if isinstance(args, list) else str(args)
            raise BenchError(
                f"{command} exited with status {process.returncode} "
                f"before {path} answered 200; its output ends with:\n{log()}"
            )
        time.sleep(POLL_INTERVAL_S)
    raise BenchError(
        f"{path} did not answer 200 within {timeout:g} s; the server's output ends with:\n{log()}"
    )


# --- PostgreSQL and Redis --------------------------------------------------------------
# The servers the test suite uses (tests.support.services): 127.0.0.1:5432 and :6379 unless
# TEST_POSTGRES_URL or TEST_REDIS_URL name others.


def redis_url(database: int) -> str:
    """The URL of Redis database ``database`` on the test suite's Redis server."""
    return urlsplit(services.REDIS_URL)._replace(path=f"/{database}").geturl()


def redis_client(url: str, socket_timeout: float) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=socket_timeout)


def check_services(url: str, redis_socket_timeout: float) -> None:
    """PostgreSQL and Redis must be reachable, and Redis must answer at ``url``
    (PostgreSQL's log-in is proven by ``create_database``)."""
    if missing := needs.missing_needs(["postgres", "redis"]):
        raise BenchError("these services are needed:\n  " + "\n  ".join(missing))
    client = redis_client(url, redis_socket_timeout)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise BenchError(f"Redis at {url} is needed: {exc}") from None
    finally:
        client.close()


def create_database(name: str) -> str:
    """Create ``name`` on the test suite's PostgreSQL; return its URL."""
    try:
        with psycopg.connect(
            services.POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5
        ) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        raise BenchError(
            f"cannot create a database with {services.POSTGRES_ADMIN_URL}: {exc}"
        ) from None
    return urlsplit(services.POSTGRES_ADMIN_URL)._replace(path=f"/{name}").geturl()


def drop_database(name: str) -> None:
    """Drop ``name`` if it exists; on failure say so, since this runs during clean-up."""
    try:
        with psycopg.connect(
            services.POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5
        ) as admin:
            force = " WITH (FORCE)" if admin.info.server_version >= 130000 else ""
            statement = sql.SQL("DROP DATABASE IF EXISTS {}" + force)
            admin.execute(statement.format(sql.Identifier(name)))
    except psycopg.Error as exc:
        print(f"bench: could not drop the database {name}: {exc}", file=sys.stderr)


# --- The report ------------------------------------------------------------------------


def met(ok: bool) -> str:  # noqa: FBT001 (the verdict itself: met(measured <= target))
    return "met" if ok else "MISSED"


def table(rows: Sequence[Sequence[str]]) -> str:
    """``rows`` in columns padded to their widest cell, with a rule under the first row."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def print_report(
    title: str, rows: Sequence[Sequence[str]], details: Sequence[str], elapsed: float
) -> None:
    """The report: its title, the machine (Python, CPUs, load, time taken), the table of
    figures beside their baselines, then the details."""
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print()
    print(title)
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average at the end {load}, {elapsed:.0f} s in all"
    )
    print()
    print(table(rows))
    print()
    print("Details:")
    for line in details:
        print(line)


# --- Signals and the entry point -------------------------------------------------------


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def signals_ignored() -> Iterator[None]:
    """Let clean-up finish: a second Ctrl-C must not leave processes or a database behind.
    Each step of the clean-up is bounded in time, so this cannot hang for long."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_main(benchmark: Callable[[], int]) -> int:
    """``benchmark()``, cleaning up on SIGTERM as on Ctrl-C; 1 when it could not run."""
    signal.signal(signal.SIGTERM, _interrupt)  # clean up on SIGTERM as on Ctrl-C
    try:
        return benchmark()
    except (BenchError, AssertionError) as exc:  # the tests.support helpers assert
        print(f"bench: could not run: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; every process it started has been stopped", file=sys.stderr)
        return 1


@contextmanager
def owned_services(work: Path) -> Iterator[tuple[OwnedPostgres, OwnedRedis]]:
    """A PostgreSQL with pgvector and a Redis server, both this run's own."""
    postgres = OwnedPostgres(work / "postgres", services.free_port())
    broker = OwnedRedis(services.free_port(), work / "redis")
    try:
        postgres.init().start()
        broker.start()
        yield postgres, broker
    except subprocess.CalledProcessError as exc:
        stderr = exc.stderr.decode(errors="replace") if exc.stderr else ""
        raise BenchError(f"{exc.cmd[0]} failed: {stderr}") from None
    finally:
        broker.stop()
        if postgres.running():
            with suppress(subprocess.SubprocessError, OSError):
                postgres.stop()
