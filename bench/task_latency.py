"""Latency of one task, send to result, through Hearth's API against a bare Celery client.

N=200 sequential tasks per side, in blocks of 50 that alternate between the two sides (so
both see the same load on a shared machine), after 20 warm-up tasks each. Hearth:
``POST /tasks/ping``, then ``GET /tasks/{id}`` every 1 ms on the same keep-alive connection
(``http.client``) until the answer says SUCCESS; the time from just before the POST to that
first SUCCESS answer. Baseline: a Celery app in this process built by
``hearth.worker.app.create_celery`` itself (so its configuration is Hearth's) does
``send_task("hearth.ping").get()``; Celery's Redis backend is told of the result by pub/sub,
without polling. Reported: p50 (target <= 10 ms), p90, p99, and where the p50 goes: sending
(the POST round trip, or ``send_task``), queue and run (until the worker stored the result:
its ``date_done``, same host clock), and noticing (the rest: polling through the API, or the
pub/sub message).
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass, field

import redis
from celery import Celery
from celery.exceptions import TimeoutError as CeleryTimeout

from bench import common
from bench.common import BenchError
from bench.task_clients import TASK_NAME, ApiClient, celery_get, done_times

LATENCY_TASKS = 200  # per side
LATENCY_BLOCK = 50  # the sides alternate every this many tasks
WARM_UP_TASKS = 20  # per side, before the latency blocks
POLL_S = 0.001  # GET /tasks/{id} interval while waiting for a result
TASK_TIMEOUT_S = 10.0  # one round trip

TARGET_P50_MS = 10.0


@dataclass
class Trip:
    """One sequential round trip, in seconds."""

    total: float
    send: float  # the POST round trip, or send_task
    started_at: float  # Unix time just before sending
    task_id: str
    polls: int = 0


@dataclass
class LatencySide:
    trips: list[Trip] = field(default_factory=list)
    done_at: dict[str, float] = field(default_factory=dict)  # task id -> date_done

    def totals_ms(self) -> list[float]:
        return [trip.total * 1000 for trip in self.trips]

    def percentile(self, p: int) -> float:
        return statistics.quantiles(self.totals_ms(), n=100, method="inclusive")[p - 1]

    def breakdown_ms(self) -> tuple[float, float, float]:
        """Medians of: sending; from sending to the result stored; from stored to seen."""
        sends, queued, noticed = [], [], []
        for trip in self.trips:
            stored = self.done_at[trip.task_id] - trip.started_at
            sends.append(trip.send * 1000)
            queued.append((stored - trip.send) * 1000)
            noticed.append((trip.total - stored) * 1000)
        return statistics.median(sends), statistics.median(queued), statistics.median(noticed)


def api_round_trip(api: ApiClient) -> Trip:
    started_at = time.time()
    started = time.perf_counter()
    task_id = api.send_ping()
    sent = time.perf_counter() - started
    deadline = started + TASK_TIMEOUT_S
    polls = 0
    while time.perf_counter() < deadline:
        polls += 1
        if api.state(task_id) == "SUCCESS":
            return Trip(time.perf_counter() - started, sent, started_at, task_id, polls)
        time.sleep(POLL_S)
    raise BenchError(f"task {task_id} sent through the API was not done in {TASK_TIMEOUT_S:g} s")


def celery_round_trip(app: Celery) -> Trip:
    started_at = time.time()
    started = time.perf_counter()
    result = app.send_task(TASK_NAME)
    sent = time.perf_counter() - started
    try:
        celery_get(app, result, TASK_TIMEOUT_S)
    except CeleryTimeout:
        raise BenchError(
            f"task {result.id} sent by Celery was not done in {TASK_TIMEOUT_S:g} s"
        ) from None
    return Trip(time.perf_counter() - started, sent, started_at, result.id)


def measure_latency(
    api: ApiClient, app: Celery, client: redis.Redis
) -> tuple[LatencySide, LatencySide]:
    """Hearth's side and the baseline's, each with every trip and its ``date_done``."""
    for _ in range(WARM_UP_TASKS):
        api_round_trip(api)
        celery_round_trip(app)
    hearth, baseline = LatencySide(), LatencySide()
    for block in range(LATENCY_TASKS // LATENCY_BLOCK):
        print(
            f"latency: block {block + 1} of {LATENCY_TASKS // LATENCY_BLOCK} "
            f"({LATENCY_BLOCK} tasks each side) ...",
            file=sys.stderr,
        )
        hearth.trips.extend(api_round_trip(api) for _ in range(LATENCY_BLOCK))
        baseline.trips.extend(celery_round_trip(app) for _ in range(LATENCY_BLOCK))
    for side in (hearth, baseline):
        ids = [trip.task_id for trip in side.trips]
        side.done_at = dict(zip(ids, done_times(client, ids, TASK_TIMEOUT_S), strict=True))
    return hearth, baseline


# --- The report ------------------------------------------------------------------------


def missed(hearth: LatencySide) -> bool:
    return hearth.percentile(50) > TARGET_P50_MS


def rows(hearth: LatencySide, baseline: LatencySide) -> list[tuple[str, ...]]:
    """The report's rows: p50 (with its target), p90 and p99 of each side."""
    rows: list[tuple[str, ...]] = []
    for p in (50, 90, 99):
        ours, theirs = hearth.percentile(p), baseline.percentile(p)
        target = (
            (f"<= {TARGET_P50_MS:g} ms", common.met(ours <= TARGET_P50_MS)) if p == 50 else ("", "")
        )
        rows.append(
            (
                f"latency send->result p{p}, N={LATENCY_TASKS}",
                f"{ours:.2f} ms",
                f"{theirs:.2f} ms",
                f"{ours / theirs:.2f}x",
                *target,
            )
        )
    return rows


def details(hearth: LatencySide, baseline: LatencySide) -> list[str]:
    """The report's detail lines: how each side is timed, where its p50 goes, its spread."""
    lines = [
        (
            f"  latency: hearth = POST /tasks/ping, then GET /tasks/{{id}} every "
            f"{POLL_S * 1000:g} ms until SUCCESS; "
            f"baseline = create_celery(...).send_task({TASK_NAME!r}).get()"
        )
    ]
    for name, side, notice in (("hearth", hearth, "polling"), ("baseline", baseline, "pub/sub")):
        send, queued, noticed = side.breakdown_ms()
        polls = [trip.polls for trip in side.trips]
        extra = f", {statistics.median(polls):.0f} GETs (median)" if any(polls) else ""
        lines.append(
            f"  where the {name} p50 goes (medians): send {send:.2f} ms, queue and run until "
            f"stored {queued:.2f} ms, {notice} until seen {noticed:.2f} ms{extra}"
        )
    lines.append(
        f"  latency min/mean/max: hearth "
        f"{_spread(hearth.totals_ms())}, baseline {_spread(baseline.totals_ms())}"
    )
    return lines


def _spread(values: list[float]) -> str:
    return f"{min(values):.2f}/{statistics.mean(values):.2f}/{max(values):.2f} ms"
