"""The ring of the last log events at WARNING or above: filled by the real pipeline after
the redaction (so it never holds a secret), bounded, and holding what was written."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hearth.log import configure_logging, get_logger, recent_events
from hearth.log.ring import CAPACITY, MAX_VALUE_CHARACTERS
from hearth.log.setup import log_ring

SECRET = "ring-test-secret-value-7f3a9c"


@pytest.fixture
def written() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The production pipeline (JSON) into a buffer, with SECRET configured and the ring
    emptied; returns a reader of the lines written."""
    buffer = io.StringIO()
    configure_logging(level="INFO", fmt="json", stream=buffer, secrets=[SECRET], repeat_limit=0)
    log_ring().clear()

    def read() -> list[dict[str, Any]]:
        return [json.loads(line) for line in buffer.getvalue().splitlines() if line]

    yield read
    configure_logging(level="WARNING", fmt="json")
    log_ring().clear()


def test_warnings_and_errors_are_kept_as_written_and_quieter_lines_are_not(
    written: Callable[[], list[dict[str, Any]]],
) -> None:
    log = get_logger("hearth.test")
    log.info("request_finished", status=200)
    log.warning("db_connect_retry", attempt=2)
    logging.getLogger("celery.worker").error("consumer: Cannot connect to %s", "redis://x")
    try:
        raise ValueError("boom")  # noqa: TRY301 (an exception with a traceback to log)
    except ValueError:
        log.exception("task_failed", task="embed")
    log.debug("not_written")

    kept = recent_events()
    assert [event["event"] for event in kept] == [
        "db_connect_retry",
        "consumer: Cannot connect to redis://x",
        "task_failed",
    ]
    # Exactly the lines written at those levels, as JSON renders them.
    assert kept == [line for line in written() if line["level"] != "info"]
    assert "ValueError: boom" in kept[2]["exception"]
    assert kept[1]["logger"] == "celery.worker"


def test_the_ring_holds_no_secret_however_it_was_logged(
    written: Callable[[], list[dict[str, Any]]],
) -> None:
    log = get_logger("hearth.test")
    log.warning(f"the secret {SECRET} in the event", detail=f"and {SECRET} in a field")  # noqa: G004
    log.error("url_failed", url="postgresql://hearth:pw-in-a-url-9@db:5432/hearth")
    log.warning("nested", payload={"token": "plain-token-value", "list": [SECRET]})
    logging.getLogger("library").warning("library says %s", SECRET)

    text = json.dumps(recent_events())
    for secret in (SECRET, "pw-in-a-url-9", "plain-token-value"):
        assert secret not in text
    assert text.count("***") >= 5
    assert len(recent_events()) == len(written()) == 4


def test_the_ring_keeps_the_newest_events_and_counts_the_dropped(
    written: Callable[[], list[dict[str, Any]]],
) -> None:
    log = get_logger("hearth.test")
    for number in range(CAPACITY + 50):
        log.warning("numbered", number=number)
    kept = recent_events()
    assert len(written()) == CAPACITY + 50
    assert [event["number"] for event in kept] == list(range(50, CAPACITY + 50))
    assert log_ring().dropped == 50


def test_long_values_are_cut(written: Callable[[], list[dict[str, Any]]]) -> None:
    get_logger("hearth.test").warning("long", detail="x" * (MAX_VALUE_CHARACTERS * 3))
    [event] = recent_events()
    assert len(event["detail"]) < MAX_VALUE_CHARACTERS + 50
    assert event["detail"].endswith(f"({MAX_VALUE_CHARACTERS * 2} more)")
    assert len(written()[0]["detail"]) == MAX_VALUE_CHARACTERS * 3  # the line itself is whole


def test_lines_the_repeat_limiter_holds_back_are_not_kept() -> None:
    buffer = io.StringIO()
    configure_logging(level="INFO", fmt="json", stream=buffer, repeat_limit=2)
    log_ring().clear()
    try:
        for _ in range(10):
            logging.getLogger("kombu").warning("Cannot connect, retrying")
        assert len(recent_events()) == 2
    finally:
        configure_logging(level="WARNING", fmt="json")  # sums up the 8 held back
        log_ring().clear()


def test_the_ring_is_a_copy_the_reader_cannot_change(
    written: Callable[[], list[dict[str, Any]]],
) -> None:
    get_logger("hearth.test").warning("kept", value=1)
    recent_events()[0]["value"] = 2
    assert recent_events()[0]["value"] == 1
    assert written()
