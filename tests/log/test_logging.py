"""Logs: one JSON object a line with the agreed fields, every library routed through the same
pipeline, and no secret ever rendered."""

from __future__ import annotations

import io
import json
import logging
import string
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hearth.log import configure_logging, get_logger
from hearth.log.redaction import MASK, MIN_SECRET_LENGTH, Redactor

REQUIRED_FIELDS = {"timestamp", "level", "service", "event"}


@pytest.fixture
def captured() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Logging configured as in production (JSON), into a buffer; returns a reader."""
    buffer = io.StringIO()
    configure_logging(level="DEBUG", fmt="json", service="hearth-test", stream=buffer, secrets=[])

    def read() -> list[dict[str, Any]]:
        return [json.loads(line) for line in buffer.getvalue().splitlines() if line]

    yield read
    configure_logging(level="WARNING", fmt="json")


def test_every_line_has_the_agreed_fields(captured: Callable[[], list[dict[str, Any]]]) -> None:
    get_logger("hearth.test").info("thing_happened", count=3)
    [line] = captured()
    assert line.keys() >= REQUIRED_FIELDS
    assert line["event"] == "thing_happened"
    assert line["level"] == "info"
    assert line["service"] == "hearth-test"
    assert line["count"] == 3
    assert line["timestamp"].endswith("Z")


@pytest.mark.parametrize(
    "name", ["uvicorn.error", "uvicorn.access", "sqlalchemy.engine", "alembic"]
)
def test_library_loggers_share_the_pipeline(
    captured: Callable[[], list[dict[str, Any]]], name: str
) -> None:
    logging.getLogger(name).warning("library says %s", "hello")
    [line] = captured()
    assert line.keys() >= REQUIRED_FIELDS
    assert line["event"] == "library says hello"
    assert line["logger"] == name


def test_console_format_is_readable() -> None:
    buffer = io.StringIO()
    configure_logging(level="INFO", fmt="console", stream=buffer)
    get_logger("hearth.test").info("console_event", answer=42)
    configure_logging(level="WARNING", fmt="json")
    text = buffer.getvalue()
    assert "console_event" in text
    assert "answer=42" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_level_filters_lines(captured: Callable[[], list[dict[str, Any]]]) -> None:
    configure_logging(level="WARNING", fmt="json", stream=io.StringIO())
    buffer = io.StringIO()
    configure_logging(level="WARNING", fmt="json", stream=buffer)
    get_logger("hearth.test").info("quiet")
    get_logger("hearth.test").warning("loud")
    assert [json.loads(line)["event"] for line in buffer.getvalue().splitlines()] == ["loud"]


def test_sensitive_keys_are_masked_at_any_depth(
    captured: Callable[[], list[dict[str, Any]]],
) -> None:
    get_logger("hearth.test").info(
        "nested",
        api_token="t0k3n",
        config={"db": {"Password": "pw1", "user": "bob"}, "items": [{"secret_value": "s3"}]},
        AWS_ACCESS_KEY_ID="AKIA",
        credentials=None,
        session_cookie_secure=True,
        token_ttl=0,
    )
    [line] = captured()
    assert line["session_cookie_secure"] is True  # a yes/no gives nothing away
    assert line["token_ttl"] == MASK  # a number may (a PIN): masked
    assert line["api_token"] == MASK
    assert line["config"]["db"] == {"Password": MASK, "user": "bob"}
    assert line["config"]["items"] == [{"secret_value": MASK}]
    assert line["AWS_ACCESS_KEY_ID"] == MASK
    assert line["credentials"] is None


def test_url_passwords_are_masked_everywhere(captured: Callable[[], list[dict[str, Any]]]) -> None:
    get_logger("hearth.test").warning(
        "connecting to postgresql://hearth:pa55@db:5432/hearth",
        targets=["redis://:r3d1s@cache:6379/0", "http://user:p%40ss@llm:11434"],
    )
    [line] = captured()
    assert line["event"] == "connecting to postgresql://hearth:***@db:5432/hearth"
    assert line["targets"] == ["redis://:***@cache:6379/0", "http://user:***@llm:11434"]


def test_url_query_values_are_masked_everywhere(
    captured: Callable[[], list[dict[str, Any]]],
) -> None:
    get_logger("hearth.test").warning(
        "cannot connect to http://127.0.0.1:9/?token=s3cr3t: refused",
        endpoint="https://llm/v1?api-version=2024-10-21&sig=s3cr3t#s3cr3t",
    )
    [line] = captured()
    assert line["event"] == "cannot connect to http://127.0.0.1:9/?token=*** refused"
    assert line["endpoint"] == "https://llm/v1?api-version=2024-10-21&sig=***#***"


def test_configured_secret_values_are_masked_anywhere() -> None:
    buffer = io.StringIO()
    configure_logging(level="INFO", fmt="json", stream=buffer, secrets=["hunter2-is-my-password"])
    log = get_logger("hearth.test")
    log.info("the value hunter2-is-my-password leaked", note="x hunter2-is-my-password y")
    logging.getLogger("uvicorn.error").info("stdlib: %s", "hunter2-is-my-password")
    try:
        raise ValueError("boom hunter2-is-my-password")  # noqa: TRY301 (a traceback to log)
    except ValueError:
        log.exception("failed")
    configure_logging(level="WARNING", fmt="json")
    text = buffer.getvalue()
    assert "hunter2" not in text
    assert text.count(MASK) >= 4
    assert "ValueError: boom ***" in text  # the traceback stays, the secret goes


# --- property: no generated secret ever reaches rendered output -------------------------

secret_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]),
    min_size=MIN_SECRET_LENGTH,
    max_size=40,
).filter(lambda s: s.strip() == s and s != "")
filler = st.text(alphabet=string.printable, max_size=30)


@st.composite
def events_hiding(draw: st.DrawFn, secret: str) -> dict[str, Any]:
    """An event that holds ``secret`` in a random place: the message, a plain value, deep in
    a structure, glued between other text, in a URL, or as a dict key."""
    prefix, suffix = draw(filler), draw(filler)
    glued = f"{prefix}{secret}{suffix}"
    place = draw(st.sampled_from(["event", "value", "nested", "list", "key", "url", "repeat"]))
    event: dict[str, Any] = {"event": draw(filler) or "event"}
    if place == "event":
        event["event"] = glued
    elif place == "value":
        event["detail"] = glued
    elif place == "nested":
        event["context"] = {"outer": {"inner": [1, {"deep": glued}]}}
    elif place == "list":
        event["items"] = [draw(filler), glued, (glued, 3)]
    elif place == "key":
        event["context"] = {glued: "value"}
    elif place == "url":
        event["target"] = f"postgresql://user:{secret}@db/hearth"
    else:
        event["detail"] = glued * draw(st.integers(2, 4))
    return event


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), secret=secret_text)
def test_no_secret_reaches_rendered_output(data: st.DataObject, secret: str) -> None:
    event = data.draw(events_hiding(secret))
    redactor = Redactor([secret])
    rendered = structlog.processors.JSONRenderer()(
        None, "info", redactor(None, "info", dict(event))
    )
    decoded = json.dumps(json.loads(rendered), ensure_ascii=False)
    assert secret not in rendered
    assert secret not in decoded  # not even once the JSON escapes are undone


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(secret=secret_text, message=filler)
def test_no_secret_reaches_the_real_pipeline(secret: str, message: str) -> None:
    buffer = io.StringIO()
    configure_logging(level="INFO", fmt="json", stream=buffer, secrets=[secret])
    get_logger("hearth.test").info(f"{message}{secret}", detail=[secret, {"x": secret}])
    logging.getLogger("uvicorn.error").info("%s|%s", message, secret)
    configure_logging(level="WARNING", fmt="json")
    for line in buffer.getvalue().splitlines():
        assert secret not in json.dumps(json.loads(line), ensure_ascii=False)


# --- request id -------------------------------------------------------------------------


async def test_request_id_is_returned_and_bound_to_every_line(
    client_for: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
) -> None:
    buffer = io.StringIO()
    configure_logging(level="DEBUG", fmt="json", stream=buffer)
    try:
        async with client_for() as client:
            given_id = await client.get("/health", headers={"X-Request-ID": "probe-42"})
            generated = await client.get("/nowhere")
    finally:
        configure_logging(level="WARNING", fmt="json")
    assert given_id.headers["X-Request-ID"] == "probe-42"
    assert len(generated.headers["X-Request-ID"]) == 32
    assert generated.json()["request_id"] == generated.headers["X-Request-ID"]

    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    during_health = [line for line in lines if line.get("request_id") == "probe-42"]
    events = {line["event"] for line in during_health}
    assert {"health_check", "request_finished"} <= events
    finished = [line for line in lines if line["event"] == "request_finished"]
    assert {line["request_id"] for line in finished} == {
        "probe-42",
        generated.headers["X-Request-ID"],
    }


async def test_forged_request_ids_are_replaced(
    client_for: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
) -> None:
    async with client_for() as client:
        response = await client.get("/livez", headers={"X-Request-ID": 'x" injected="1'})
    assert response.headers["X-Request-ID"] != 'x" injected="1'
    assert len(response.headers["X-Request-ID"]) == 32
