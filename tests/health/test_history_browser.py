"""The history section of /status in a real Chromium against a real `hearth serve`: loaded by
htmx under the page's strict CSP (nothing refused), a badge and "since" per component, and
90 slots that each say in words what their colour shows."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.support.process import HearthServer, clean_environment, hearth_server
from tests.support.services import REDIS_URL, free_port

pytestmark = pytest.mark.redis  # `hearth serve` gets the suite's Redis


async def _recorded(server: HearthServer, component: str) -> None:
    for _ in range(300):
        body = server.get("/health/history").json()
        if body["components"][component]["status"] is not None:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{component} never recorded:\n{server.output.read_text()}")


async def test_the_history_section_in_a_browser(
    page: Page, tmp_path: Path, fresh_database: str
) -> None:
    env = clean_environment(
        DATABASE_URL=fresh_database, REDIS_URL=REDIS_URL, HEALTH_MONITOR_SECONDS="1"
    )
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    with hearth_server(env, tmp_path, free_port()) as server:
        server.wait_until("/readyz", 200)
        await _recorded(server, "db")

        await page.goto(f"{server.url}/status")
        db = page.locator("#history-db")
        await expect(db.locator(".badge")).to_have_text("ok")
        await expect(db.locator("time")).to_have_text("just now")
        slots = db.locator(".history-bar .slot")
        await expect(slots).to_have_count(90)
        await expect(slots.last).to_have_class("slot ok")
        await expect(slots.first).to_have_class("slot none")
        label = await slots.last.get_attribute("aria-label")
        assert label is not None
        assert label.endswith("UTC: ok")
        await expect(page.locator("#history-llm .badge")).to_have_text("unconfigured")
        await expect(page.locator("#history-llm .share").first).to_have_text("\N{EN DASH}")
        await page.screenshot(path=tmp_path / "status-history.png", full_page=True)
    refused = [text for text in console if "Content Security Policy" in text]
    assert not refused, refused
