"""Repeated lines are counted, not written: the real pipeline (``configure_logging``) writing
JSON into a buffer, fed by Hearth's events and by standard-library loggers as Celery uses them."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from hearth.log import configure_logging, get_logger
from hearth.log.repeats import SUMMARY_EVENT

LIMIT = 3


class Logs:
    """Logging configured as in production (JSON) into a buffer of the test's own."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()

    def configure(self, limit: int = LIMIT, window: float = 60.0) -> None:
        configure_logging(
            level="INFO", fmt="json", stream=self.buffer, repeat_limit=limit, repeat_window=window
        )

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.buffer.getvalue().splitlines() if line]

    def summaries(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line["event"] == SUMMARY_EVENT]

    def end_windows(self) -> None:
        """Sum up what is held back now, as reconfiguring (and exiting) does."""
        self.configure()

    def wait_for_summaries(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(summaries := self.summaries()) < count:
            assert time.monotonic() < deadline, f"no summary within {timeout:g} s: {self.lines()}"
            time.sleep(0.02)
        return summaries


@pytest.fixture
def logs() -> Iterator[Logs]:
    logs = Logs()
    logs.configure()
    yield logs
    configure_logging(level="WARNING", fmt="json")


def test_a_repeated_event_is_written_limit_times_then_counted(logs: Logs) -> None:
    log = get_logger("hearth.test")
    for attempt in range(20):
        log.warning("db_connect_retry", attempt=attempt, reason=f"refused after {attempt} ms")
    written = [line for line in logs.lines() if line["event"] == "db_connect_retry"]
    assert [line["attempt"] for line in written] == [0, 1, 2]  # the first ones, in order
    logs.end_windows()
    [summary] = logs.summaries()
    assert summary["suppressed"] == 17
    assert summary["repeated_logger"] == "hearth.test"
    assert summary["repeated_event"] == "db_connect_retry"
    assert summary["level"] == "warning"
    assert summary["logger"] == "hearth.log.repeats"
    assert summary["window_seconds"] == 60.0


def test_a_library_template_is_the_same_line_whatever_its_numbers(logs: Logs) -> None:
    consumer = logging.getLogger("celery.worker.consumer.consumer")
    for attempt in range(1, 31):
        consumer.error(
            "consumer: Cannot connect to %s: %s.\nTrying again in %.2f seconds... (%s/100)\n",
            "redis://127.0.0.1:9/0",
            "Connection refused",
            attempt * 2.0,
            attempt,
        )
    written = [line for line in logs.lines() if line["logger"] == consumer.name]
    assert len(written) == LIMIT
    assert "(1/100)" in written[0]["event"]  # rendered in full, numbers and all
    logs.end_windows()
    [summary] = logs.summaries()
    assert summary["suppressed"] == 30 - LIMIT
    assert summary["level"] == "error"
    assert summary["repeated_event"].startswith("consumer: Cannot connect to %s: %s.")


def test_hearths_own_events_below_warning_are_never_limited(logs: Logs) -> None:
    log = get_logger("hearth.access")
    for number in range(50):
        log.info("request_finished", method="GET", path="/health", status=200, number=number)
    logs.end_windows()
    assert len([line for line in logs.lines() if line["event"] == "request_finished"]) == 50
    assert logs.summaries() == []


def test_a_library_line_below_warning_is_limited_only_word_for_word(logs: Logs) -> None:
    strategy = logging.getLogger("celery.worker.strategy")
    consumer = logging.getLogger("celery.worker.consumer.consumer")
    for number in range(20):
        strategy.info("Task %s[%s] received", "hearth.ping", f"id-{number}")
        consumer.info("Skipping prefetch count reduction after connection restart")
    logs.end_windows()
    events = [line["event"] for line in logs.lines()]
    assert len([e for e in events if e.endswith("received")]) == 20  # each says something new
    assert len([e for e in events if e.startswith("Skipping")]) == LIMIT
    [summary] = logs.summaries()
    assert summary["suppressed"] == 20 - LIMIT
    assert summary["level"] == "info"


def test_the_first_occurrence_of_anything_gets_through(logs: Logs) -> None:
    log = get_logger("hearth.test")
    for _ in range(10):
        log.error("task_failed")
    log.error("another_event")
    for _ in range(10):
        log.warning("login_failed", client="192.0.2.1", reason="wrong password")
    log.warning("login_failed", client="192.0.2.2", reason="wrong password")  # another caller
    get_logger("hearth.elsewhere").error("task_failed")  # the same event, another logger
    for error in (ValueError("one"), KeyError("two")):
        try:
            raise error
        except (ValueError, KeyError):
            log.exception("task_failed")  # the same event, a new kind of error
    # What logging.captureWarnings() does with a warning: one template, "%s", for them all.
    python_warnings = logging.getLogger("py.warnings")
    for _ in range(10):
        python_warnings.warning("%s", "app.py:1: UserWarning: first warning")
    python_warnings.warning("%s", "app.py:2: UserWarning: second warning")
    lines = logs.lines()
    assert [line["event"] for line in lines].count("another_event") == 1
    login_failures = [line["client"] for line in lines if line["event"] == "login_failed"]
    assert login_failures == [*["192.0.2.1"] * LIMIT, "192.0.2.2"]
    assert [line["logger"] for line in lines if line["event"] == "task_failed"].count(
        "hearth.elsewhere"
    ) == 1
    failed = [line for line in lines if line["event"] == "task_failed" and "exception" in line]
    assert ["ValueError" in line["exception"] for line in failed] == [True, False]
    assert "KeyError" in failed[1]["exception"]
    shown = [line["event"] for line in lines if line["logger"] == "py.warnings"]
    assert len([text for text in shown if "first warning" in text]) == LIMIT
    assert len([text for text in shown if "second warning" in text]) == 1


def test_the_summary_comes_when_the_window_ends_and_the_count_starts_again(logs: Logs) -> None:
    logs.configure(window=0.5)
    log = get_logger("hearth.test")
    for attempt in range(10):
        log.warning("broker_unreachable", attempt=attempt)
    [summary] = logs.wait_for_summaries(1)  # nothing else is logged: the window's end does it
    assert summary["suppressed"] == 10 - LIMIT
    assert summary["window_seconds"] == 0.5
    log.warning("broker_unreachable", attempt=10)
    assert logs.lines()[-1]["attempt"] == 10  # a new window: written again


def test_the_summary_comes_before_the_next_line_let_through(logs: Logs) -> None:
    clock_window = 0.3
    logs.configure(window=clock_window)
    log = get_logger("hearth.test")
    for attempt in range(LIMIT + 2):
        log.warning("broker_unreachable", attempt=attempt)
    logs.wait_for_summaries(1)
    log.warning("broker_unreachable", attempt=99)
    events = [(line["event"], line.get("attempt")) for line in logs.lines()]
    assert events[-2:] == [(SUMMARY_EVENT, None), ("broker_unreachable", 99)]


def test_threads_lose_and_double_count_nothing(logs: Logs) -> None:
    threads, each = 8, 400
    start = threading.Barrier(threads)

    def flood() -> None:
        start.wait()
        for attempt in range(each):
            logging.getLogger("kombu.connection").warning("Connection lost (%d)", attempt)

    workers = [threading.Thread(target=flood) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    logs.end_windows()
    written = [line for line in logs.lines() if line["logger"] == "kombu.connection"]
    [summary] = logs.summaries()
    assert len(written) == LIMIT
    assert summary["suppressed"] == threads * each - LIMIT


def test_the_summary_carries_no_one_elses_context(logs: Logs) -> None:
    log = get_logger("hearth.test")
    with structlog.contextvars.bound_contextvars(request_id="flood-request"):
        for _ in range(10):
            log.error("queue_send_failed")
    with structlog.contextvars.bound_contextvars(request_id="bystander"):
        logs.end_windows()
    [summary] = logs.summaries()
    assert "request_id" not in summary


def test_a_limit_of_zero_writes_every_line(logs: Logs) -> None:
    logs.configure(limit=0)
    for _ in range(30):
        get_logger("hearth.test").error("task_failed")
    logs.end_windows()
    assert len([line for line in logs.lines() if line["event"] == "task_failed"]) == 30
    assert logs.summaries() == []


def test_what_is_held_back_at_exit_is_summed_up() -> None:
    program = (
        "from hearth.log import configure_logging, get_logger\n"
        "configure_logging(level='INFO', fmt='json', repeat_limit=2)\n"
        "for attempt in range(50):\n"
        "    get_logger('hearth.test').error('db_unreachable', attempt=attempt)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["event"] for line in lines] == ["db_unreachable", "db_unreachable", SUMMARY_EVENT]
    assert lines[-1]["suppressed"] == 48
