"""Hearth's server benchmark: start-up time, idle memory and ``/health`` throughput of
``hearth serve``, each printed next to a baseline measured in the same run on the same
machine. It reports; it asserts nothing.

What it measures, and against what, is told where it is measured: ``bench.serve_startup``
(start-up and idle memory, against a bare Uvicorn serving an empty FastAPI app) and
``bench.serve_tree`` (every process of ``hearth serve --with-worker`` on the embedded
PostgreSQL, against a bare Uvicorn plus a bare Celery worker), ``bench.serve_throughput``
(``/health`` against an empty route, with ``wrk``) and ``bench.request_bodies`` (memory
while huge bodies arrive, against idle memory). Both sides start from compiled bytecode, as
every deployment does (``bench.bytecode``). The
throughput runs use a fresh database on the PostgreSQL at 127.0.0.1:5432 (or the one
TEST_POSTGRES_URL names, as for the test suite), created and dropped by this script.

Every server it starts is stopped with SIGTERM and waited for (SIGKILL after 20 s; 30 s for
``hearth serve``, which the test suite's ``hearth_server`` starts and stops), also on error,
Ctrl-C or SIGTERM; wrk runs are killed if interrupted; an embedded PostgreSQL left
behind by a failed stop is shut down. Traffic goes to 127.0.0.1 only. Exit status: 0 when
it ran (whether or not a target was met), 1 when it could not run.

Usage: ``make bench`` (or ``.venv/bin/python -m bench.server``).
"""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench import bytecode, common, request_bodies, serve_startup, serve_throughput, serve_tree
from bench.common import Processes
from bench.request_bodies import BodiesResult
from bench.serve_startup import StartupResult
from bench.serve_throughput import ThroughputResult
from bench.serve_tree import TreeResult

REDIS_SOCKET_TIMEOUT_S = 5.0


def print_report(
    startup: StartupResult,
    tree: TreeResult,
    throughput: ThroughputResult,
    bodies: BodiesResult,
    elapsed: float,
) -> None:
    rows = [
        ("figure", "hearth", "baseline", "hearth vs baseline", "target", ""),
        *serve_startup.rows(startup),
        *serve_tree.rows(tree),
        *serve_throughput.rows(throughput),
        *request_bodies.rows(bodies),
    ]
    details = [
        bytecode.report(),
        *serve_startup.details(startup),
        *serve_tree.details(tree),
        *serve_throughput.details(throughput),
        *request_bodies.details(bodies),
    ]
    common.print_report(
        "Hearth benchmark: each figure beside its baseline, measured in this run",
        rows,
        details,
        elapsed,
    )


def benchmark() -> int:
    started = time.monotonic()
    wrk = serve_throughput.ensure_wrk()
    common.check_services(serve_throughput.REDIS_URL, REDIS_SOCKET_TIMEOUT_S)
    bytecode.ensure_compiled()
    work = Path(tempfile.mkdtemp(prefix="hearth-bench-")).resolve()
    data_dir = work / "data"
    database = f"hearth_bench_{secrets.token_hex(4)}"
    processes = Processes(work)
    try:
        startup = serve_startup.measure_startup(processes, data_dir)
        tree = serve_tree.measure_tree(processes, data_dir)
        database_url = common.create_database(database)
        throughput = serve_throughput.measure_throughput(processes, wrk, database_url)
        bodies = request_bodies.measure_bodies(processes, database_url)
    finally:
        with common.signals_ignored():
            print("cleaning up ...", file=sys.stderr)
            processes.close()
            serve_startup.stop_leftover_postgres(data_dir / "postgres")
            common.drop_database(database)
            shutil.rmtree(work, ignore_errors=True)
    print_report(startup, tree, throughput, bodies, time.monotonic() - started)
    return 0


def main() -> int:
    return common.run_main(benchmark)


if __name__ == "__main__":
    sys.exit(main())
