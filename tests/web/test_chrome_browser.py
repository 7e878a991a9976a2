"""The console's shared chrome in a real Chromium against a real `hearth serve`, at a desktop
and a phone width: the health tables (row labels set like their row, one name per component
on every page, borders only between rows and across the whole row), the LLM banner (one
block that leads to the fix), the header's "Log out", the main action's button, and the
skip link."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Locator, Page, ViewportSize, expect

from hearth.web.templating import COMPONENT_LABELS
from tests.support.layout import TARGET_PX
from tests.support.process import HearthServer, clean_environment, hearth_server
from tests.support.services import REDIS_URL, free_port

pytestmark = pytest.mark.redis  # `hearth serve` gets the suite's Redis

WIDTHS: dict[str, ViewportSize] = {
    "desktop": {"width": 1280, "height": 900},
    "phone": {"width": 390, "height": 844},
}
PASSWORD = "chrome-test-operator-password"
FIX = "/config#llm_endpoint"
TABLES = "table.checks, table.history, table.history-events"

# Per body row of each table: the row's label, its style and that of a data cell, whether
# the badge's middle lies within the label's line, and which stretches of the row's bottom
# edge carry a border (from the row itself or from its cells).
_ROWS = """(selector) => [...document.querySelectorAll(selector)].map(table => {
  const box = table.getBoundingClientRect();
  return [...table.tBodies[0].rows].map(row => {
    const label = row.querySelector("th[scope=row]");
    const range = document.createRange();
    range.selectNodeContents(label);
    const line = range.getClientRects()[0];
    const badge = row.querySelector(".badge");
    let aligned = null;
    if (badge && table.matches(".checks")) {
      const b = badge.getBoundingClientRect();
      const middle = (b.top + b.bottom) / 2;
      aligned = middle >= line.top && middle <= line.bottom;
    }
    const edges = [];
    for (const el of [row, ...row.cells]) {
      const style = getComputedStyle(el);
      if (parseFloat(style.borderBottomWidth) > 0 && style.borderBottomStyle !== "none") {
        const r = el.getBoundingClientRect();
        edges.push([r.left - box.left, r.right - box.left]);
      }
    }
    const labelStyle = getComputedStyle(label);
    return {
      label: label.textContent.trim(), transform: labelStyle.textTransform,
      size: labelStyle.fontSize, tableSize: getComputedStyle(table).fontSize,
      aligned, edges, width: box.width,
    };
  });
})"""


def _covered(edges: list[list[float]], width: float) -> bool:
    """Whether the stretches cover the whole width (a border across the whole row)."""
    reach = 0.0
    for left, right in sorted(edges):
        if left > reach + 1:
            return False
        reach = max(reach, right)
    return reach >= width - 1


async def _assert_tables(page: Page, where: str) -> None:
    tables: list[list[dict[str, Any]]] = await page.evaluate(_ROWS, TABLES)
    assert tables, where
    for rows in tables:
        for index, row in enumerate(rows):
            label = f"{where}, row {row['label']!r}"
            assert row["label"] in COMPONENT_LABELS.values(), label
            # A row's label, not a column header: no capitals, the size of the row's text.
            assert row["transform"] == "none", label
            assert row["size"] == row["tableSize"], (label, row)
            assert row["aligned"] in (None, True), f"{label}: the badge is off its label's line"
            if index == len(rows) - 1:
                assert row["edges"] == [], f"{label}: a border under the last row"
            else:
                assert _covered(row["edges"], row["width"]), f"{label}: partial border {row}"


async def _style(locator: Locator, *names: str) -> dict[str, str]:
    found: dict[str, str] = await locator.evaluate(
        "(el, names) => Object.fromEntries(names.map(n => [n, getComputedStyle(el)[n]]))",
        list(names),
    )
    return found


async def _log_in(page: Page, server: HearthServer) -> None:
    await page.goto(f"{server.url}/login")
    await page.get_by_label("Operator password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("button", name="Log out")).to_be_visible()


@pytest.mark.parametrize("width", sorted(WIDTHS))
async def test_the_shared_chrome(
    browser: Browser, tmp_path: Path, fresh_database: str, width: str
) -> None:
    env = clean_environment(
        DATABASE_URL=fresh_database,
        REDIS_URL=REDIS_URL,
        ADMIN_PASSWORD=PASSWORD,
        LLM_ENDPOINT=f"http://127.0.0.1:{free_port()}",  # configured, and nobody answers
        HEALTH_CACHE_SECONDS="0",
        HEALTH_MONITOR_SECONDS="300",
    )
    context = await browser.new_context(viewport=WIDTHS[width])
    try:
        page = await context.new_page()
        with hearth_server(env, tmp_path, free_port()) as server:
            server.wait_until("/readyz", 200)
            server.wait_for_check("llm", "unreachable")
            await _skip_link(page, server)
            await _banner(page, server, width)  # logs in on the way
            await _health_tables(page, server, width)
            await _header_and_main_action(page, server)
            assert server.stop() == 0
    finally:
        await context.close()


async def _skip_link(page: Page, server: HearthServer) -> None:
    """The first Tab shows "Skip to content"; Enter takes the keyboard past the header."""
    await page.goto(f"{server.url}/status")
    skip = page.get_by_role("link", name="Skip to content")
    await expect(skip).not_to_be_in_viewport()
    await page.keyboard.press("Tab")
    await expect(skip).to_be_focused()
    await expect(skip).to_be_in_viewport()
    box = await skip.bounding_box()
    assert box is not None
    assert box["height"] >= TARGET_PX
    await page.keyboard.press("Enter")
    await expect(page.locator("main#main")).to_be_focused()
    await page.keyboard.press("Tab")  # the next stop is in the page, not the navigation
    assert await page.evaluate("document.activeElement.closest('main') !== null")


async def _banner(page: Page, server: HearthServer, width: str) -> None:
    """One block: the title on one line at 1280 px, two at 390, the detail and the link
    flowing after it; it leads to the LLM's settings (through the login for a visitor)."""
    banner = page.locator("#degraded-banner")
    await page.goto(f"{server.url}/")
    await expect(banner).to_contain_text("AI features unavailable — LLM unreachable.")
    lines = await banner.locator("strong").evaluate("el => el.getClientRects().length")
    assert lines == (1 if width == "desktop" else 2), lines
    block = await banner.evaluate(
        "el => [el.querySelectorAll(':scope > p').length,"
        " el.querySelector('p').getBoundingClientRect().width,"
        " el.clientWidth - parseFloat(getComputedStyle(el).paddingLeft)"
        " - parseFloat(getComputedStyle(el).paddingRight)]"
    )
    assert block[0] == 1
    assert abs(block[1] - block[2]) < 1, block  # the text takes the whole banner's width
    # A visitor logs in first, and lands on the fix.
    await banner.get_by_role("link", name="Log in to see why and fix it").click()
    await expect(page).to_have_url(re.compile(r"/login\?next="))
    await page.get_by_label("Operator password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page).to_have_url(f"{server.url}{FIX}")
    await expect(page.locator("#llm_endpoint")).to_be_in_viewport()
    # The operator reads why, and goes straight to the fix from any page.
    await page.goto(f"{server.url}/status")
    await expect(banner.locator(".banner-detail")).to_contain_text("127.0.0.1")
    await banner.get_by_role("link", name="Check the LLM settings").click()
    await expect(page).to_have_url(f"{server.url}{FIX}")


async def _health_tables(page: Page, server: HearthServer, width: str) -> None:
    """The dashboard's and /status's tables, their history included, as the operator sees
    them (details make the rows tall) and as a visitor does."""
    for path, ready in (("/", "#check-db .detail"), ("/status", "#history-db .badge")):
        await page.goto(f"{server.url}{path}")
        await expect(page.locator(ready)).to_be_visible()
        await page.wait_for_load_state("networkidle")
        await _assert_tables(page, f"{path} at {width}")
        names = page.locator("#health-checks tbody th[scope=row]")
        await expect(names).to_have_text(["Database", "Redis", "LLM", "Worker", "Mail"])
    history = page.locator("#health-history table.history tbody th[scope=row]")
    await expect(history).to_have_text(["Database", "Redis", "LLM", "Worker", "Mail"])


async def _header_and_main_action(page: Page, server: HearthServer) -> None:
    """The header's "Log out" looks like the links beside it; "Go to Config" like the
    primary button it is meant to be."""
    await page.goto(f"{server.url}/")
    nav = page.get_by_role("navigation", name="Main")
    names = ("color", "backgroundColor", "borderTopWidth", "fontWeight", "paddingLeft")
    link = await _style(nav.get_by_role("link", name="Health"), *names)
    logout = await _style(nav.get_by_role("button", name="Log out"), *names)
    assert logout == link
    main_action = page.get_by_role("link", name="Go to Config")
    primary = await _style(main_action, "backgroundColor", "color", "borderTopColor")
    card = await _style(page.locator(".card").first, "backgroundColor")
    assert primary["backgroundColor"] != card["backgroundColor"]
    await page.goto(f"{server.url}/tokens")
    create = page.get_by_role("button", name="Create token")  # a primary <button>
    assert await _style(create, "backgroundColor", "color", "borderTopColor") == primary
