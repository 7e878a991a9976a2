"""The Diagnostics page in a real Chromium against a real ``hearth serve``: reached through the
login page, free of WCAG 2.1 A/AA violations at a desktop and a phone width, and its Copy
button works from the keyboard (the text in the clipboard is the report's)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, ViewportSize, expect

from tests.support.axe import assert_accessible
from tests.support.process import clean_environment, hearth_server
from tests.support.services import free_port

PASSWORD = "diag-browser-operator-password"
WIDTHS: dict[str, ViewportSize] = {
    "desktop": {"width": 1280, "height": 900},
    "phone": {"width": 390, "height": 844},
}
_MAX_TABS = 40  # the header's links and the page's controls come before the button


async def _tab_to(page: Page, element_id: str) -> None:
    """Press Tab until ``element_id`` has the focus, as a keyboard user would."""
    for _ in range(_MAX_TABS):
        await page.keyboard.press("Tab")
        if await page.evaluate("() => document.activeElement && document.activeElement.id") == (
            element_id
        ):
            return
    raise AssertionError(f"#{element_id} was not reached with {_MAX_TABS} presses of Tab")


@pytest.mark.parametrize("width", sorted(WIDTHS))
async def test_the_page_is_accessible_and_copies_by_keyboard(
    browser: Browser, tmp_path: Path, fresh_database: str, width: str
) -> None:
    env = clean_environment(
        DATABASE_URL=fresh_database, ADMIN_PASSWORD=PASSWORD, HEALTH_CACHE_SECONDS="0"
    )
    context = await browser.new_context(viewport=WIDTHS[width])
    await context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = await context.new_page()
    try:
        with hearth_server(env, tmp_path, free_port()) as server:
            server.wait_until("/readyz", 200)
            await page.goto(f"{server.url}/diagnostics")
            await expect(page).to_have_url(re.compile(r"/login\?next=/diagnostics$"))
            await page.get_by_label("Operator password").fill(PASSWORD)
            await page.get_by_role("button", name="Log in").click()
            await expect(page).to_have_url(f"{server.url}/diagnostics")
            await expect(page).to_have_title("Diagnostics · Hearth")
            await expect(page.get_by_role("link", name="Diagnostics")).to_have_attribute(
                "aria-current", "page"
            )
            report = page.locator("#report-text")
            await expect(report).to_contain_text("== Health: ")
            await expect(report).to_contain_text("== Log: this server")
            await assert_accessible(page, f"/diagnostics ({width})")

            await _tab_to(page, "copy-report")
            await page.keyboard.press("Enter")
            status = page.get_by_role("status").filter(has_text="Copied")
            await expect(status).to_have_text("Copied to the clipboard.")
            copied = await page.evaluate("() => navigator.clipboard.readText()")
            assert copied == await report.text_content()
            assert copied.startswith("Hearth diagnostics, ")
            await assert_accessible(page, f"/diagnostics after Copy ({width})")
    finally:
        await context.close()


async def test_without_javascript_the_text_is_there_and_no_dead_button(
    browser: Browser, tmp_path: Path, fresh_database: str
) -> None:
    env = clean_environment(DATABASE_URL=fresh_database, ADMIN_PASSWORD=PASSWORD)
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    try:
        with hearth_server(env, tmp_path, free_port()) as server:
            server.wait_until("/readyz", 200)
            await page.goto(f"{server.url}/login?next=/diagnostics")
            await page.get_by_label("Operator password").fill(PASSWORD)
            await page.get_by_role("button", name="Log in").click()
            await expect(page).to_have_url(f"{server.url}/diagnostics")
            await expect(page.locator("#report-text")).to_contain_text("Hearth diagnostics, ")
            await expect(page.locator("#copy-report")).to_be_hidden()
    finally:
        await context.close()
