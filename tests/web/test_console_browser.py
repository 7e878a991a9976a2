"""The live console in a real Chromium, against a real `hearth serve`, a real worker and a
fake LLM server that comes and goes on one port.

The contradiction this guards against: the banner was drawn once with the page while the
table under it refreshed, so a page loaded while the LLM was down went on saying "LLM
unreachable" above a table saying "llm ok". Now one htmx answer refreshes the table, the
overall status, the banner and "checked N s ago" together. HEALTH_MONITOR_SECONDS=1, a real
setting (how often Hearth checks, and so how often the console refreshes), lets the test
watch the page's own polling.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.support.fake_llm import fake_llm
from tests.support.process import HearthServer, clean_environment, hearth_server
from tests.support.services import REDIS_URL, free_port
from tests.support.worker import hearth_worker

pytestmark = [pytest.mark.redis, pytest.mark.worker]

# Long enough for a loaded 2-core machine: a refresh comes every second.
CHANGE_MS = 30_000

# One look at the page, in one turn of its event loop (an htmx swap is one turn too).
_READ_PAGE = """() => {
  const rows = {};
  for (const row of document.querySelectorAll("#health-checks tr[id^=check-]")) {
    rows[row.id.slice(6)] = row.querySelector(".badge").textContent.trim();
  }
  const region = document.getElementById("llm-banner");
  return {
    rows,
    overall: document.querySelector("#health-overall .badge").textContent.trim(),
    banner: document.getElementById("degraded-banner") !== null,
    region: region === null ? null : region.getAttribute("role"),
    checked: document.querySelector("#health-checked time").getAttribute("datetime"),
  };
}"""


async def read_page(page: Page) -> dict[str, Any]:
    """The table, the overall status, the banner and the time of the oldest check shown."""
    found: dict[str, Any] = await page.evaluate(_READ_PAGE)
    return found


def assert_agrees(shown: dict[str, Any]) -> None:
    """The banner and the overall status say what the table says."""
    statuses = shown["rows"]
    expected = "degraded" if "unreachable" in statuses.values() else "ok"
    if statuses["db"] == "unreachable":
        expected = "down"
    assert shown["overall"] == expected, shown
    assert shown["banner"] == (statuses["llm"] == "unreachable"), shown
    assert shown["region"] == "status", shown  # the region stays, full or empty


async def next_refresh(page: Page, checked: str) -> str:
    """Wait until the page shows results checked later than ``checked``; their time."""
    await expect(page.locator("#health-checked time")).not_to_have_attribute(
        "datetime", checked, timeout=CHANGE_MS
    )
    shown = await read_page(page)
    assert shown["checked"] > checked  # ISO 8601 in UTC: later sorts after
    return str(shown["checked"])


async def test_banner_overall_status_and_table_change_together(
    page: Page, browser: Browser, tmp_path: Path, fresh_database: str
) -> None:
    llm_port = free_port()
    env = clean_environment(
        DATABASE_URL=fresh_database,
        REDIS_URL=REDIS_URL,
        LLM_ENDPOINT=f"http://127.0.0.1:{llm_port}",
        HEALTH_CACHE_SECONDS="0",
        HEALTH_MONITOR_SECONDS="1",
        WORKER_HEARTBEAT_SECONDS="1",
    )
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    # Every refresh answered 200 (Chromium's own look for a /favicon.ico aside).
    refused: list[str] = []
    page.on(
        "response",
        lambda r: (
            refused.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico")
            else None
        ),
    )
    with ExitStack() as stack:
        server = stack.enter_context(hearth_server(env, tmp_path, free_port()))
        server.wait_until("/readyz", 200)  # migrated: the worker's heartbeat table exists
        stack.enter_context(hearth_worker(env, tmp_path)).wait_for_log(" ready.")
        server.wait_for_check("worker", "ok")
        for path in ("/", "/status"):
            await _watch(page, server, path, llm_port)
        await _without_javascript(browser, server, llm_port)
        assert server.stop() == 0
    # No CSP refusal, no htmx error (a swap without its target is logged as one).
    assert [e for e in errors if not e.startswith("Failed to load resource")] == []
    assert refused == []


async def _watch(page: Page, server: HearthServer, path: str, llm_port: int) -> None:
    banner = page.locator("#degraded-banner")
    # The LLM is down: the page is drawn with the banner, and agrees with itself.
    await page.goto(f"{server.url}{path}")
    await expect(banner).to_contain_text("AI features unavailable — LLM unreachable")
    await expect(page.locator("#check-llm .badge")).to_have_text("unreachable")
    shown = await read_page(page)
    assert_agrees(shown)
    assert shown["overall"] == "degraded"

    # Refreshes that change nothing leave the banner alone (the same element: a screen
    # reader has nothing new to announce), and the keyboard focus where it was, even on a
    # link inside the table's part, which each refresh replaces.
    await page.evaluate("document.getElementById('degraded-banner').dataset.drawn = 'first'")
    await page.locator("#degraded-banner-login").focus()
    checked = await next_refresh(page, shown["checked"])
    await expect(page.locator("#degraded-banner[data-drawn=first]")).to_have_count(1)
    await expect(page.locator("#degraded-banner-login")).to_be_focused()
    await page.locator("#health-details-login").focus()
    checked = await next_refresh(page, checked)
    await expect(page.locator("#health-details-login")).to_be_focused()

    # The LLM comes up: with the next refresh the banner goes, the overall status and the
    # table say ok, and the freshness line says when.
    with fake_llm(llm_port):
        await expect(banner).to_have_count(0, timeout=CHANGE_MS)
        shown = await read_page(page)
        assert_agrees(shown)
        assert (shown["rows"]["llm"], shown["overall"]) == ("ok", "ok")
        assert shown["checked"] > checked
        await expect(page.locator("#health-details-login")).to_be_focused()
        checked = await next_refresh(page, shown["checked"])
        assert_agrees(await read_page(page))

    # It goes down again: the banner comes back, with the table and the overall status.
    await expect(banner).to_contain_text("LLM unreachable", timeout=CHANGE_MS)
    shown = await read_page(page)
    assert_agrees(shown)
    assert (shown["rows"]["llm"], shown["overall"]) == ("unreachable", "degraded")
    assert shown["checked"] > checked
    await expect(page.locator("#health-details-login")).to_be_focused()


async def _without_javascript(browser: Browser, server: HearthServer, llm_port: int) -> None:
    """No script: each page is a complete snapshot that agrees with itself."""
    context = await browser.new_context(java_script_enabled=False)
    try:
        page = await context.new_page()
        for up in (False, True):
            with ExitStack() as stack:
                if up:
                    stack.enter_context(fake_llm(llm_port))
                # /status first: it waits for fresh results, which the dashboard (drawn
                # from the last ones, so as never to wait) then shows.
                for path in ("/status", "/"):
                    await page.goto(f"{server.url}{path}")
                    rows = page.locator("#health-checks tr[id^=check-]")
                    await expect(rows).to_have_count(5)
                    await expect(page.locator("#health-checked")).to_contain_text("Checked ")
                    llm = await page.locator("#check-llm .badge").text_content()
                    banner = await page.locator("#degraded-banner").count()
                    assert (llm, banner) == (("ok", 0) if up else ("unreachable", 1)), path
    finally:
        await context.close()
