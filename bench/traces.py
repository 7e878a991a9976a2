"""What traces cost ``hearth serve``: unset (OTEL_EXPORTER_OTLP_ENDPOINT empty) against set,
in the same run. It reports; it asserts nothing.

1. Start-up: ``hearth serve`` on a fresh database of the suite's PostgreSQL (migrated by a
   first start that is not counted), from starting the process to the first 200 on
   ``/readyz``; median of STARTS starts of each kind, alternating. Set, it exports to a local
   OTLP/HTTP receiver (``tests.support.otlp``) that decodes what it is sent.
2. Idle RSS of the server process, after a few requests to ``/livez``, ``/readyz``,
   ``/health`` and the dashboard and ~2 s of rest, on the last start of each kind.
   Target, unset: within the noise of the same server (traces off must cost nothing).
3. OpenTelemetry modules in a fresh process after ``create_app``, its lifespan and a few
   requests (``tests.traces.probe``), against a process that imports only FastAPI and
   redis-py: those import OpenTelemetry themselves (FastAPI's native telemetry; redis-py's
   observability module, when the SDK is installed). Target, unset: Hearth adds 0.
4. A log line written inside a span, trace ids on, against the same line with them off
   (the pipeline of ``configure_logging``, JSON to /dev/null; best of ROUNDS rounds).

Usage: ``make bench`` (or ``.venv/bin/python -m bench.traces``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from tests.support.otlp import otlp_receiver
from tests.support.paths import ROOT
from tests.support.process import clean_environment, hearth_server
from tests.support.services import free_port
from tests.support.tokens import create_with_cli

from bench import common
from bench.common import LOOPBACK, MB, Processes
from bench.serve_startup import idle_rss
from hearth.log import configure_logging, get_logger

STARTS = 5
START_TIMEOUT_S = 60.0
FIRST_START_TIMEOUT_S = 120.0  # migrations
IDLE_PATHS = ["/livez", "/readyz", "/health", "/"]
LINES = 4_000
ROUNDS = 7


@dataclass
class Kind:
    """One way of running: its environment, and what was measured."""

    name: str
    env: dict[str, str]
    starts: list[float] = field(default_factory=list)
    rss: int = 0


@dataclass
class Modules:
    baseline: list[str]
    unset: list[str]
    set: list[str]

    def added(self, modules: list[str]) -> list[str]:
        return [name for name in modules if name not in self.baseline]


def _start(kind: Kind, processes: Processes, timeout: float, *, last: bool) -> None:
    port = free_port()
    started = time.perf_counter()
    with hearth_server(kind.env, processes.log_dir, port) as server:
        log = partial(common.tail, server.output)
        seconds = common.wait_for_200(server.process, port, "/readyz", started, timeout, log)
        if last:
            kind.rss = idle_rss(server.process.pid, port, IDLE_PATHS)
    kind.starts.append(seconds)


def measure_starts(unset: Kind, traced: Kind, processes: Processes) -> None:
    """STARTS starts of each kind, alternating, after one uncounted start that migrates."""
    print("traces: first start (migrations) ...", file=sys.stderr)
    _start(unset, processes, FIRST_START_TIMEOUT_S, last=False)
    unset.starts.clear()
    for run in range(1, STARTS + 1):
        print(f"traces: start {run} of {STARTS}, unset and set ...", file=sys.stderr)
        for kind in (unset, traced):
            _start(kind, processes, START_TIMEOUT_S, last=run == STARTS)


def _probe(kind: str, env: dict[str, str], cwd: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.traces.probe", kind],
        env={**env, "PYTHONPATH": str(ROOT)},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise common.BenchError(f"tests.traces.probe {kind} failed:\n{done.stderr[-2000:]}")
    [line] = [line for line in done.stdout.splitlines() if line.startswith("PROBE ")]
    modules: list[str] = json.loads(line.removeprefix("PROBE "))["modules"]
    return [name for name in modules if name.startswith("opentelemetry")]


def measure_modules(unset: Kind, traced: Kind, cwd: Path) -> Modules:
    token = create_with_cli(unset.env, cwd, "write", name="bench-traces")
    return Modules(
        baseline=_probe("baseline", clean_environment(), cwd),
        unset=_probe("web", {**unset.env, "PROBE_TOKEN": token}, cwd),
        set=_probe("web", {**traced.env, "PROBE_TOKEN": token}, cwd),
    )


def measure_log_line() -> tuple[float, float]:
    """Seconds per ``request_finished`` line inside a span: trace ids on, and off."""
    tracer = TracerProvider().get_tracer("bench")  # the current span is what the line reads
    best = {True: float("inf"), False: float("inf")}
    with open(os.devnull, "w") as sink, tracer.start_as_current_span("request"):  # noqa: PTH123 (a text stream)
        for _ in range(ROUNDS):
            for trace_ids in (False, True):
                configure_logging(level="INFO", fmt="json", stream=sink, trace_ids=trace_ids)
                log = get_logger("hearth.access")
                started = time.perf_counter()
                for number in range(LINES):
                    log.info("request_finished", method="GET", path="/", status=200, ms=number)
                best[trace_ids] = min(best[trace_ids], (time.perf_counter() - started) / LINES)
        configure_logging(level="WARNING", fmt="json", stream=sys.stderr)
    return best[True], best[False]


def print_report(
    unset: Kind, traced: Kind, modules: Modules, line: tuple[float, float], elapsed: float
) -> None:
    start_unset, start_set = statistics.median(unset.starts), statistics.median(traced.starts)
    rss_unset, rss_set = unset.rss / MB, traced.rss / MB
    added_unset = modules.added(modules.unset)
    on, off = line
    rows = [
        ("figure", "traces set", "unset", "set vs unset", "target", ""),
        (
            f"start-up to first 200, median of {STARTS}",
            f"{start_set:.2f} s",
            f"{start_unset:.2f} s",
            f"{start_set - start_unset:+.2f} s ({start_set / start_unset:.2f}x)",
            "(reported)",
            "",
        ),
        (
            "idle RSS, server process",
            f"{rss_set:.1f} MB",
            f"{rss_unset:.1f} MB",
            f"{rss_set - rss_unset:+.1f} MB ({rss_set / rss_unset:.2f}x)",
            "(reported)",
            "",
        ),
        (
            "opentelemetry modules Hearth adds",
            str(len(modules.added(modules.set))),
            str(len(added_unset)),
            "-",
            "unset: 0",
            common.met(not added_unset),
        ),
        (
            "log line inside a span",
            f"{on * 1e6:.1f} us",
            f"{off * 1e6:.1f} us",
            f"{on / off:.2f}x",
            "(reported)",
            "",
        ),
    ]
    details = [
        f"  starts, unset: {' '.join(f'{s:.2f}' for s in unset.starts)} s",
        f"  starts, set:   {' '.join(f'{s:.2f}' for s in traced.starts)} s",
        (
            f"  opentelemetry modules loaded: FastAPI + redis-py alone {len(modules.baseline)}, "
            f"hearth unset {len(modules.unset)}, hearth set {len(modules.set)}"
        ),
        "  (FastAPI imports OpenTelemetry's API for its native telemetry; redis-py imports",
        "  the SDK's metrics when the SDK is installed, which Hearth refuses: hearth.log.plain)",
    ]
    common.print_report(
        "Hearth traces benchmark: OTEL_EXPORTER_OTLP_ENDPOINT set vs unset, this run",
        rows,
        details,
        elapsed,
    )


def benchmark() -> int:
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="hearth-bench-traces-")).resolve()
    database = f"hearth_bench_{secrets.token_hex(4)}"
    processes = Processes(work)
    try:
        database_url = common.create_database(database)
        with otlp_receiver() as receiver:
            unset = Kind("unset", clean_environment(HOST=LOOPBACK, DATABASE_URL=database_url))
            traced = Kind("set", {**unset.env, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url})
            measure_starts(unset, traced, processes)
            modules = measure_modules(unset, traced, work)
            spans = len(receiver.received())
        line = measure_log_line()
    finally:
        with common.signals_ignored():
            processes.close()
            common.drop_database(database)
            shutil.rmtree(work, ignore_errors=True)
    if spans == 0:
        raise common.BenchError("the receiver got no span: traces were not on when set")
    print_report(unset, traced, modules, line, time.monotonic() - started)
    return 0


def main() -> int:
    return common.run_main(benchmark)


if __name__ == "__main__":
    sys.exit(main())
