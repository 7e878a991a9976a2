"""Sending through Apprise to real receivers on loopback: an HTTP server (``json://``), an
SMTP server (``mailto://``), one that is down and one that hangs."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator

import pytest

from hearth.log import configure_logging
from hearth.notify.schemas import Notice
from hearth.notify.sender import AppriseSender, UnusableNotifyUrl
from tests.notify.receivers import JsonReceiver, silent_port, smtp_receiver, text_of
from tests.support.services import free_port

TOKEN = "s3cr3t-W3bh00k-T0k3n"
NOTICE = Notice("Hearth: llm is down", "llm has been unreachable since 12:00 UTC.", "failure")


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """Every log line written during the test, as JSON lines, with no secret configured:
    what keeps the URLs out is the sender itself."""
    buffer = io.StringIO()
    configure_logging(level="DEBUG", fmt="json", stream=buffer, secrets=[])
    try:
        yield buffer
    finally:
        configure_logging(level="WARNING", fmt="json")


def events(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]


async def test_a_notice_reaches_a_json_receiver(receiver: JsonReceiver, logs: io.StringIO) -> None:
    sender = AppriseSender.build([receiver.url(f"/hook/{TOKEN}")])
    try:
        [delivery] = await sender.send(NOTICE)
    finally:
        sender.close()
    assert (delivery.sent, delivery.attempts, delivery.service) == (True, 1, "JSON")
    [post] = receiver.posts
    assert (post["title"], post["message"], post["type"]) == (
        NOTICE.title,
        NOTICE.body,
        "failure",
    )
    assert receiver.paths == [f"/hook/{TOKEN}"]
    [sent] = [e for e in events(logs) if e["event"] == "notification_sent"]
    assert (sent["notifier"], sent["scheme"], sent["receiver"]) == ("JSON", "json", 1)
    assert TOKEN not in logs.getvalue()


async def test_a_notice_reaches_an_smtp_server_as_mail() -> None:
    with smtp_receiver() as smtp:
        sender = AppriseSender.build([smtp.url()])
        try:
            [delivery] = await sender.send(NOTICE)
        finally:
            sender.close()
    assert delivery.sent, delivery.reason
    [message] = smtp.messages
    assert message["Subject"] == NOTICE.title
    assert message["From"] == "hearth@example.com"
    assert smtp.recipients == [["ops@example.com"]]
    assert NOTICE.body in text_of(message)


async def test_a_receiver_that_is_down_is_retried_then_given_up_and_the_others_still_get_it(
    receiver: JsonReceiver, logs: io.StringIO
) -> None:
    down = f"json://user:{TOKEN}@127.0.0.1:{free_port()}/{TOKEN}"
    sender = AppriseSender.build([down, receiver.url()], attempts=3, backoff_seconds=0.05)
    try:
        failed, sent = await sender.send(NOTICE)
    finally:
        sender.close()
    assert (failed.sent, failed.attempts) == (False, 3)
    assert (sent.sent, sent.attempts) == (True, 1)
    assert len(receiver.posts) == 1  # the receiver that was up got it once, not three times
    lines = events(logs)
    failures = [e for e in lines if e["event"] == "notification_failed"]
    assert [(e["receiver"], e["scheme"], e["attempt"]) for e in failures] == [
        (1, "json", 1),
        (1, "json", 2),
        (1, "json", 3),
    ]
    assert all("Connection refused" in str(e["reason"]) for e in failures), failures
    [given_up] = [e for e in lines if e["event"] == "notification_given_up"]
    assert given_up["level"] == "error"
    assert TOKEN not in logs.getvalue()
    assert TOKEN not in failed.reason


async def test_a_receiver_refusing_the_notice_is_retried_until_it_takes_it(
    receiver: JsonReceiver,
) -> None:
    receiver.failing = True
    sender = AppriseSender.build([receiver.url()], attempts=5, backoff_seconds=0.2)

    async def recover() -> None:
        while receiver.refused < 2:  # noqa: ASYNC110 (the receiver is another thread's)
            await asyncio.sleep(0.01)
        receiver.failing = False

    try:
        [delivery], _ = await asyncio.gather(sender.send(NOTICE), recover())
    finally:
        sender.close()
    assert delivery.sent
    assert delivery.attempts >= 3
    assert len(receiver.posts) == 1


async def test_a_receiver_that_hangs_times_out_and_the_event_loop_keeps_running() -> None:
    with silent_port() as port:
        sender = AppriseSender.build(
            [f"json://127.0.0.1:{port}/"], timeout=1.0, attempts=2, backoff_seconds=0.05
        )
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticking = asyncio.create_task(tick())
        try:
            [delivery] = await sender.send(NOTICE)
        finally:
            ticking.cancel()
            sender.close()
    assert (delivery.sent, delivery.attempts) == (False, 2)
    assert delivery.reason == "no answer within 1 s"
    assert ticks > 10


def test_a_url_apprise_cannot_use_is_refused_by_position_and_scheme() -> None:
    with pytest.raises(UnusableNotifyUrl) as refused:
        AppriseSender.build(["json://127.0.0.1:9/", f"nosuchservice://{TOKEN}"])
    assert "entry 2 (nosuchservice://…)" in str(refused.value)
    assert TOKEN not in str(refused.value)


def test_labels_name_receivers_without_their_urls() -> None:
    sender = AppriseSender.build([f"ntfys://ntfy.example.com/{TOKEN}", f"gotify://g.lan/{TOKEN}"])
    try:
        assert sender.labels == ["#1 ntfy (ntfys://)", "#2 Gotify (gotify://)"]
    finally:
        sender.close()
