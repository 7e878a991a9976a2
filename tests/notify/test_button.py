"""The app with NOTIFY_URLS: the config page's "Send test notification" button, the
notifier beside the app, and a bad URL refused at start-up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from hearth.app.factory import create_app
from hearth.config.settings import Settings
from hearth.db.unit import Sessions
from hearth.errors import StartupError
from hearth.models import AuditEvent, HealthEvent
from tests.notify.receivers import JsonReceiver, eventually, silent_port, smtp_receiver, text_of
from tests.support.app import served, served_to_operator
from tests.support.services import free_port

PASSWORD = "operator-password-for-the-notify-tests"
TOKEN = "n0tify-T0ken-in-the-url"
ROUTE = "/config/notifications/test"


def operator(
    make_settings: Callable[..., Settings], **overrides: Any
) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    """The app, and a client logged in as the operator, sending its CSRF token."""
    return served_to_operator(make_settings(admin_password=PASSWORD, **overrides))


async def test_the_operator_sends_a_test_notification_to_every_receiver(
    make_settings: Callable[..., Settings], receiver: JsonReceiver, engine: AsyncEngine
) -> None:
    with smtp_receiver() as smtp:
        urls = f"{receiver.url(f'/{TOKEN}')}, {smtp.url()}"
        async with operator(make_settings, notify_urls=urls) as client:
            page = await client.get("/config", headers={"Accept": "text/html"})
            answer = await client.post(ROUTE)
            fragment = await client.post(ROUTE, headers={"HX-Request": "true"})
    assert 'hx-post="/config/notifications/test"' in page.text
    assert "#1 JSON (json://)" in page.text
    assert TOKEN not in page.text
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "deliveries": [
            {"receiver": "#1 JSON (json://)", "sent": True, "reason": ""},
            {"receiver": "#2 E-Mail (mailto://)", "sent": True, "reason": ""},
        ]
    }
    assert fragment.status_code == 200
    assert "sent" in fragment.text
    assert TOKEN not in fragment.text
    assert receiver.titles() == ["Hearth: test notification"] * 2
    assert "Sent from the config page by operator" in receiver.posts[0]["message"]
    assert [message["Subject"] for message in smtp.messages] == ["Hearth: test notification"] * 2
    assert "reach you" in text_of(smtp.messages[0])
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.select(AuditEvent.actor, AuditEvent.details)
            .where(AuditEvent.action == "notification_tested")
            .order_by(AuditEvent.id.desc())
            .limit(1)
        )
        [(actor, details)] = rows.all()
    assert actor == "operator"
    assert details == {"receivers": {"#1 JSON (json://)": "sent", "#2 E-Mail (mailto://)": "sent"}}


async def test_a_receiver_that_is_down_shows_as_failed_with_a_reason_and_no_secret(
    make_settings: Callable[..., Settings],
) -> None:
    with silent_port() as port:
        async with operator(make_settings, notify_urls=f"json://127.0.0.1:{port}/{TOKEN}") as c:
            answer = await c.post(ROUTE)
    [delivery] = answer.json()["deliveries"]
    assert delivery["sent"] is False
    assert "timed out" in delivery["reason"]  # Apprise's own 4 s read timeout, before ours
    assert TOKEN not in answer.text


async def test_the_button_is_the_operators_alone_and_needs_the_csrf_token(
    make_settings: Callable[..., Settings], receiver: JsonReceiver
) -> None:
    app = create_app(make_settings(admin_password=PASSWORD, notify_urls=receiver.url()))
    async with served(app) as client:
        anonymous = await client.post(ROUTE)
        browser = await client.post(ROUTE, headers={"Accept": "text/html"})
    assert anonymous.status_code == 401
    assert browser.status_code in (302, 303)
    assert browser.headers["location"].startswith("/login")
    async with operator(make_settings, notify_urls=receiver.url()) as client:
        forged = await client.post(ROUTE, headers={"X-CSRF-Token": "forged"})
    assert forged.status_code == 403
    assert receiver.posts == []


async def test_without_notify_urls_the_page_and_the_button_say_how_to_set_it(
    make_settings: Callable[..., Settings],
) -> None:
    async with operator(make_settings) as client:
        page = await client.get("/config", headers={"Accept": "text/html"})
        answer = await client.post(ROUTE)
    assert 'id="notifications-off"' in page.text
    assert "NOTIFY_URLS" in page.text
    assert answer.status_code == 409
    assert "set NOTIFY_URLS" in answer.json()["detail"]


async def test_health_answers_while_a_notice_hangs_on_its_receiver(
    make_settings: Callable[..., Settings],
) -> None:
    with silent_port() as port:
        async with operator(make_settings, notify_urls=f"json://127.0.0.1:{port}/") as client:
            sending = asyncio.create_task(client.post(ROUTE))
            await asyncio.sleep(0.5)  # the notice is in its thread, waiting for an answer
            health = await client.get("/health")
            assert not sending.done()  # answered while the send still hangs
            assert health.status_code == 200
            await sending


async def test_a_url_apprise_cannot_use_stops_start_up_without_echoing_it(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(notify_urls=f"json://127.0.0.1:9/ nosuch://{TOKEN}"))
    with pytest.raises(StartupError) as refused:
        async with served(app):
            pass
    assert "NOTIFY_URLS: entry 2 (nosuch://…)" in refused.value.message
    assert TOKEN not in refused.value.message


async def test_the_app_sends_down_from_its_own_loop(
    make_settings: Callable[..., Settings], receiver: JsonReceiver, sessions: Sessions
) -> None:
    """The notifier runs beside the app: a change recorded five minutes ago that the app's own
    check confirms (an LLM server that does not answer) is sent, once, without a request."""
    settings = make_settings(
        notify_urls=receiver.url(),
        llm_provider="ollama",
        llm_endpoint=f"http://127.0.0.1:{free_port()}",
    )
    async with served(create_app(settings)) as client:
        assert (await client.get("/health")).json()["checks"]["llm"]["status"] == "unreachable"
        async with sessions() as session, session.begin():
            session.add(
                HealthEvent(
                    component="llm",
                    status="unreachable",
                    detail="connection refused",
                    changed_at=datetime.now(UTC) - timedelta(minutes=5),
                )
            )

        async def sent() -> bool:
            return bool(receiver.posts)

        await eventually(sent)
    assert receiver.titles() == ["Hearth: llm is down"]
    assert "Detail: connection refused" in receiver.posts[0]["message"]
