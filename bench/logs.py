"""What the repeat limiter (``hearth.log.repeats``) and the ring of recent warnings
(``hearth.log.ring``) cost a log line, each against the same pipeline without it. It reports;
it asserts nothing.

The real pipeline (``configure_logging``, JSON, redaction) writes to ``/dev/null`` in this
process; the baseline is the same pipeline with the limiter's filter taken off the handler.
Three kinds of line, each timed as the best of ROUNDS rounds of LINES lines:

- a Hearth event below WARNING (``request_finished`` with its fields): never limited, the
  limiter only looks at it (target: at most 1.05x the baseline);
- a library warning with a template and arguments, let through (the limit raised out of
  reach, so the limiter does all its bookkeeping and then writes): target at most 1.10x;
- the same warning repeated past the limit: the limiter counts it instead of rendering it,
  so a flood costs less than writing it would (target: below 1x).

The ring, against the pipeline without its processor: a line below WARNING, which it only
looks at (target: at most 1.05x), and a warning, of which it keeps a copy (at most 1.10x).

Usage: ``make bench`` (or ``.venv/bin/python -m bench.logs``).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import structlog

from bench import common
from hearth.log import configure_logging, get_logger
from hearth.log.repeats import RepeatLimiter
from hearth.log.setup import log_ring

LINES = 4_000
ROUNDS = 7
OUT_OF_REACH = 10**9  # a limit no round reaches: every line is let through


@dataclass
class Case:
    figure: str
    run: Callable[[int], None]  # writes that many lines
    limit: int  # the limiter's limit while it is on
    met: Callable[[float], bool]  # whether "with / without" meets the target
    target: str
    part: Literal["limiter", "ring"] = "limiter"  # what the baseline goes without


def _request_finished(count: int) -> None:
    log = get_logger("hearth.access")
    for number in range(count):
        log.info("request_finished", method="GET", path="/health", status=200, duration_ms=number)


def _library_warning(count: int) -> None:
    consumer = logging.getLogger("celery.worker.consumer.consumer")
    for number in range(count):
        consumer.warning(
            "consumer: Cannot connect to %s: %s. Trying again in %d seconds... (%d/100)",
            "redis://127.0.0.1:6379/0",
            "Connection refused",
            number % 30,
            number % 100,
        )


CASES = [
    Case(
        "Hearth event below WARNING (request_finished), written",
        _request_finished,
        limit=5,
        met=lambda ratio: ratio <= 1.05,
        target="<= 1.05x",
    ),
    Case(
        "library warning with arguments, let through",
        _library_warning,
        limit=OUT_OF_REACH,
        met=lambda ratio: ratio <= 1.10,
        target="<= 1.10x",
    ),
    Case(
        "the same warning repeated past the limit, counted",
        _library_warning,
        limit=5,
        met=lambda ratio: ratio < 1.0,
        target="< 1x",
    ),
    Case(
        "ring: Hearth event below WARNING, looked at",
        _request_finished,
        limit=5,
        met=lambda ratio: ratio <= 1.05,
        target="<= 1.05x",
        part="ring",
    ),
    Case(
        "ring: library warning, kept",
        _library_warning,
        limit=OUT_OF_REACH,
        met=lambda ratio: ratio <= 1.10,
        target="<= 1.10x",
        part="ring",
    ),
]


def _without(part: str) -> None:
    """The pipeline as it was without ``part``: the limiter's filter, or the ring's processor."""
    for handler in logging.getLogger().handlers:
        if part == "limiter":
            handler.filters.clear()
        elif isinstance(handler.formatter, structlog.stdlib.ProcessorFormatter):
            ring = log_ring()
            kept = [p for p in handler.formatter.processors if p is not ring]
            handler.formatter.processors = kept


def _seconds_per_line(case: Case) -> tuple[float, float]:
    """Seconds per line with the part and without it, each the best of ROUNDS rounds; the
    two alternate, so a busy moment of the machine falls on both. The pipeline is configured
    afresh each round (a fresh count, a ring with its processor back)."""
    best = {True: float("inf"), False: float("inf")}
    with open(os.devnull, "w") as sink:  # noqa: PTH123 (a text stream for the handler)
        for _ in range(ROUNDS):
            for limited in (False, True):
                configure_logging(level="INFO", fmt="json", stream=sink, repeat_limit=case.limit)
                if not limited:
                    _without(case.part)
                started = time.perf_counter()
                case.run(LINES)
                best[limited] = min(best[limited], (time.perf_counter() - started) / LINES)
        configure_logging(level="WARNING", fmt="json", stream=sys.stderr)  # the sink closes
    return best[True], best[False]


def _filter_alone(case: Case) -> float:
    """Seconds per line of the limiter's filter by itself, on the record the case writes."""
    limiter = RepeatLimiter(limit=case.limit)
    records: list[logging.LogRecord] = []
    handler = _Keep(records)
    for name in ("hearth.access", "celery.worker.consumer.consumer"):
        logging.getLogger(name).addHandler(handler)
    with open(os.devnull, "w") as sink:  # noqa: PTH123 (a text stream for the handler)
        configure_logging(level="INFO", fmt="json", stream=sink, repeat_limit=0)
        case.run(1)
        configure_logging(level="WARNING", fmt="json", stream=sys.stderr)
    for name in ("hearth.access", "celery.worker.consumer.consumer"):
        logging.getLogger(name).removeHandler(handler)
    [record] = records
    count = LINES * 10
    started = time.perf_counter()
    for _ in range(count):
        limiter.filter(record)
    return (time.perf_counter() - started) / count


def _ring_alone(level: str) -> float:
    """Seconds per event of the ring's processor by itself, on a ``request_finished``-sized
    event at ``level`` (a fresh ring: one that keeps, or one that only looks)."""
    from hearth.log.ring import LogRing

    ring = LogRing()
    event = {
        "method": "GET",
        "path": "/health",
        "status": 200,
        "duration_ms": 1.5,
        "event": "request_finished",
        "request_id": "78cf7970746245bbbf3959c0cc1fdae2",
        "level": level,
        "logger": "hearth.access",
        "timestamp": "2026-11-30T21:20:34.567850Z",
        "service": "hearth",
    }
    count = LINES * 10
    started = time.perf_counter()
    for _ in range(count):
        ring(None, level, event)
    return (time.perf_counter() - started) / count


class _Keep(logging.Handler):
    """Keeps the records it is given: the very record a case's line becomes."""

    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def benchmark() -> int:
    started = time.monotonic()
    rows: list[tuple[str, ...]] = [("figure", "with it", "without", "with/without", "target", "")]
    alone: dict[str, tuple[float, float]] = {}  # the filter by itself, a line without it
    for case in CASES:
        print(f"log lines: {case.figure} ...", file=sys.stderr)
        with_limiter, without = _seconds_per_line(case)
        ratio = with_limiter / without
        if case.part == "limiter":
            alone[case.figure] = (_filter_alone(case), without)
        rows.append(
            (
                case.figure,
                f"{with_limiter * 1e6:.2f} us/line",
                f"{without * 1e6:.2f} us/line",
                f"{ratio:.2f}x",
                case.target,
                common.met(case.met(ratio)),
            )
        )
    details = [
        (
            f"  log lines: best of {ROUNDS} rounds of {LINES} lines each, JSON to /dev/null, in "
            "one process; without = the same pipeline with the limiter's filter (or the "
            "ring's processor) removed"
        ),
        *(
            f"  the filter by itself on the record of a {figure!r} line: {seconds * 1e6:.2f} "
            f"us, {seconds / line:.1%} of writing that line without it"
            for figure, (seconds, line) in alone.items()
        ),
    ]
    line = min(without for _, without in alone.values())
    details += [
        f"  the ring's processor by itself on an event at {level.upper()}: {seconds * 1e6:.2f} us, "
        f"{seconds / line:.1%} of writing a line without the limiter"
        for level, seconds in (("info", _ring_alone("info")), ("warning", _ring_alone("warning")))
    ]
    common.print_report(
        "Hearth log benchmark: the repeat limiter's and the ring's cost per line",
        rows,
        details,
        time.monotonic() - started,
    )
    return 0


def main() -> int:
    return common.run_main(benchmark)


if __name__ == "__main__":
    sys.exit(main())
