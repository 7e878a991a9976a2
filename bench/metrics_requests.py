"""The request side of the metrics benchmark (``bench.metrics``): two servers of Hearth's
app plus ``GET /bench/empty`` (``bench.served_apps``), with and without METRICS_ENABLED, both
up at once, under ``wrk``; their idle RSS; and the middleware alone, timed in-process."""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from tests.support.process import clean_environment
from tests.support.services import free_port

from bench import common, serve_throughput, served_apps
from bench.common import Processes
from bench.served_apps import EMPTY_ROUTE
from bench.worker_memory import memory_of

WRK_ROUNDS = 3
MIDDLEWARE_CALLS = 50_000
IDLE_S = 10.0
START_TIMEOUT_S = 60.0


@dataclass
class RequestCost:
    rps: dict[tuple[str, bool], list[float]] = field(default_factory=dict)
    server_rss: dict[bool, int] = field(default_factory=dict)
    middleware_us: float = 0.0


def serve(processes: Processes, env: dict[str, str], *, metrics: bool) -> tuple[int, int]:
    """Hearth's app plus the empty route, with or without metrics; its port and pid."""
    port = free_port()
    side = clean_environment(**env, METRICS_ENABLED=str(metrics).lower())
    process = processes.start(
        served_apps.command("hearth", port), served_apps.environment(side), name="serve"
    )
    common.wait_for_200(process, port, "/readyz", time.perf_counter(), START_TIMEOUT_S, lambda: "")
    return port, process.pid


def measure_throughput(
    processes: Processes, wrk: str, env: dict[str, str], result: RequestCost
) -> None:
    """Both servers up; wrk on each route of each, alternating; then their idle RSS."""
    servers = {metrics: serve(processes, env, metrics=metrics) for metrics in (True, False)}
    for port, _ in servers.values():
        common.get_each(port, [EMPTY_ROUTE, "/health"], 50, 15.0)
    for round_number in range(1, WRK_ROUNDS + 1):
        for route in (EMPTY_ROUTE, "/health"):
            order = list(servers.items())
            for metrics, (port, _) in order if round_number % 2 else order[::-1]:
                print(
                    f"throughput: round {round_number}, {route}, metrics {metrics} ...",
                    file=sys.stderr,
                )
                run = serve_throughput.run_wrk(wrk, port, route)
                result.rps.setdefault((route, metrics), []).append(run.requests_per_second)
    time.sleep(IDLE_S)
    for metrics, (_, pid) in servers.items():
        result.server_rss[metrics] = memory_of(pid).main_rss


def measure_middleware() -> float:
    """Microseconds the middleware adds to one request, in-process: a minimal ASGI app
    called bare and through ``MetricsMiddleware``, best of 5 runs of MIDDLEWARE_CALLS."""
    from types import SimpleNamespace

    from hearth.metrics.middleware import MetricsMiddleware
    from hearth.metrics.registry import AppMetrics

    async def answer(_scope: Scope, _receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(_message: Message) -> None:
        return None

    route = SimpleNamespace(path=EMPTY_ROUTE)
    scope: Scope = {"type": "http", "method": "GET", "path": EMPTY_ROUTE, "root_path": ""}
    scope["route"] = route
    wrapped = MetricsMiddleware(answer, AppMetrics.create())

    async def timed(app: ASGIApp) -> float:
        started = time.perf_counter()
        for _ in range(MIDDLEWARE_CALLS):
            await app(scope, receive, send)
        return time.perf_counter() - started

    async def best() -> tuple[float, float]:
        bare = min([await timed(answer) for _ in range(5)])
        measured = min([await timed(wrapped) for _ in range(5)])
        return bare, measured

    print("middleware: timing it in-process ...", file=sys.stderr)
    bare, measured = asyncio.run(best())
    return (measured - bare) / MIDDLEWARE_CALLS * 1e6
