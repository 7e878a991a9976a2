"""The config, login and logout pages in a real Chromium against a real `hearth serve` and a
fake LLM server, at a desktop and a phone width, with axe-core (WCAG 2.1 A/AA) on every
state: test before you save, errors tied to their fields, and the walk-through's rough edges.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from tests.support.axe import assert_accessible
from tests.support.fake_llm import black_hole, fake_llm
from tests.support.process import HearthServer, clean_environment, hearth_server
from tests.support.services import REDIS_URL, free_port
from tests.web.test_accessibility import WIDTHS

pytestmark = pytest.mark.redis

PASSWORD = "config-browser-operator-password"
# A test against a silent server runs out its 5 s: room for a loaded 2-core machine.
TEST_MS = 20_000


def button_of(page: Page, component: str) -> Locator:
    """The "Test connection" button of ``component``, by its accessible name."""
    return page.get_by_role("button", name=f"Test connection: {component}", exact=True)


async def focused_id(page: Page) -> str:
    """The id of the element that has the focus."""
    found: str = await page.evaluate("() => document.activeElement?.id ?? ''")
    return found


@pytest.mark.parametrize("width", sorted(WIDTHS))
async def test_config_login_and_logout_in_the_browser(
    browser: Browser, tmp_path: Path, fresh_database: str, width: str
) -> None:
    env = clean_environment(
        DATABASE_URL=fresh_database,
        REDIS_URL=REDIS_URL,
        ADMIN_PASSWORD=PASSWORD,
        HEALTH_CACHE_SECONDS="0",
    )
    context = await browser.new_context(viewport=WIDTHS[width])
    page = await context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    try:
        with fake_llm() as ollama, hearth_server(env, tmp_path, free_port()) as server:
            server.wait_until("/readyz", 200)
            await _login(page, server, width)
            await _try_before_saving(page, ollama.url, width)
            await _failed_save(page, width)
            await _saves(page, width)
            await _logout(page, server, width)
            assert server.stop() == 0
    finally:
        await context.close()
    assert [line for line in console if "Content Security Policy" in line] == []


async def _login(page: Page, server: HearthServer, width: str) -> None:
    # Sent to the login page, which says why, and where the password is.
    await page.goto(f"{server.url}/config")
    await expect(page).to_have_url(re.compile(r"/login\?next=/config$"))
    await expect(page.locator("#login-reason")).to_have_text("Log in to change settings.")
    where = page.get_by_role("region", name="Where the password is")
    for place in (".env", "secrets/admin_password", "Secret", "ADMIN_PASSWORD_FILE"):
        await expect(where).to_contain_text(place)
    await assert_accessible(page, f"/login sent from /config ({width})")
    await page.get_by_label("Operator password").fill("not it")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator(".flash.error")).to_have_text("Wrong password.")
    await expect(page.get_by_label("Operator password")).to_have_attribute("aria-invalid", "true")
    await assert_accessible(page, f"/login after a wrong password ({width})")
    await page.get_by_label("Operator password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page).to_have_url(f"{server.url}/config")
    await expect(page).to_have_title("Config · Hearth")
    # Five buttons, each named after its component; sources in plain words.
    for component in ("LLM", "Database", "Redis", "Worker", "Mail"):
        await expect(button_of(page, component)).to_have_count(1)
    source = page.locator("#field-llm_model .source")
    await expect(source).to_have_text("default")
    await assert_accessible(page, f"/config ({width})")


async def _try_before_saving(page: Page, llm_url: str, width: str) -> None:
    llm = button_of(page, "LLM")
    # A silent server: the button is disabled while its test runs, and keeps its width.
    with black_hole() as address:
        await page.get_by_label("LLM endpoint").fill(f"http://{address}")
        before = await llm.bounding_box()
        await llm.click()
        await expect(llm).to_be_disabled()
        await expect(page.locator("#test-llm-status")).to_be_visible()
        during = await llm.bounding_box()
        assert before is not None
        assert during is not None
        assert (during["width"], during["height"]) == (before["width"], before["height"])
        await assert_accessible(page, f"/config while a test runs ({width})")
        await expect(page.locator("#test-llm")).to_contain_text("within 5 s", timeout=TEST_MS)
        await expect(llm).to_be_enabled()
        await expect(page.locator("#test-llm-status")).to_be_hidden()

    # By keyboard: the button is disabled while it runs, and has the focus again after.
    database = button_of(page, "Database")
    await database.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#test-db")).to_contain_text("Tested at", timeout=TEST_MS)
    await expect(database).to_be_focused()

    # A bad URL: the message beside the field, tied to it; nothing tried.
    await page.get_by_label("LLM endpoint").fill("not a url")
    await llm.click()
    error = page.locator("#llm_endpoint-error")
    await expect(error).to_contain_text("must be an http:// or https:// URL")
    endpoint = page.get_by_label("LLM endpoint")
    await expect(endpoint).to_have_attribute("aria-invalid", "true")
    await expect(endpoint).to_have_attribute("aria-describedby", re.compile(r"llm_endpoint-error"))
    await expect(endpoint).to_have_value("not a url")
    await expect(page.locator("#test-llm")).to_contain_text("not tested")
    await assert_accessible(page, f"/config after a test of a bad URL ({width})")

    # The typed values, tried unsaved: time, latency and the server's models as choices.
    await page.get_by_label("LLM endpoint").fill(llm_url)
    await llm.click()
    result = page.locator("#test-llm")
    await expect(result.locator(".badge")).to_have_text("ok")
    await expect(result).to_contain_text("Values in the form (not saved), tested at")
    await expect(result.locator("time")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d UTC$"))
    await expect(result).to_contain_text(re.compile(r"in \d+ ms"))
    await expect(error).to_have_count(0)
    await expect(page.get_by_label("LLM endpoint")).not_to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_label("Chat model")).to_have_attribute("list", "llm-models")
    await expect(page.locator("#llm-models option")).to_have_attribute("value", "llama3.2:1b")
    await expect(page.locator("#field-llm_endpoint .source")).to_have_text("default")
    await assert_accessible(page, f"/config after a test of typed values ({width})")


async def _failed_save(page: Page, width: str) -> None:
    # A browser without a date picker sends what was typed; the server refuses it.
    await page.evaluate("() => { document.getElementById('event_date').type = 'text'; }")
    await page.get_by_label("Event date").fill("2026-02-30")
    await page.get_by_label("LLM endpoint").fill("ftp://nowhere")
    await page.get_by_role("button", name="Save").click()
    await expect(page).to_have_title(
        "Error: LLM endpoint and Event date need attention · Config · Hearth"
    )
    summary = page.get_by_role("alert").filter(has_text="Nothing was saved")
    await expect(summary).to_be_visible()
    assert await focused_id(page) == "error-summary"
    date = page.get_by_label("Event date")
    await expect(date).to_have_value("2026-02-30")
    await expect(date).to_have_attribute("aria-invalid", "true")
    await expect(date).to_have_attribute("aria-describedby", "event_date-help event_date-error")
    await assert_accessible(page, f"/config after a failed save ({width})")
    # Each entry of the summary leads to its field.
    await summary.get_by_role("link", name=re.compile(r"^Event date: must be a date")).click()
    await expect(page).to_have_url(re.compile(r"#event_date$"))
    await expect(date).to_be_in_viewport()
    assert await focused_id(page) == "event_date"


async def _saves(page: Page, width: str) -> None:
    await page.goto(page.url.split("#")[0])
    # A server that does not answer: saved, with a warning beside the field.
    await page.get_by_label("LLM endpoint").fill(f"http://127.0.0.1:{free_port()}")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator(".flash.warning")).to_contain_text("Saved: LLM endpoint.")
    note = page.locator("#llm_endpoint-note")
    await expect(note).to_contain_text("does not answer")
    await expect(page.get_by_label("LLM endpoint")).to_have_attribute(
        "aria-describedby", re.compile(r"llm_endpoint-note")
    )
    await expect(page.locator(".flash.success")).to_have_count(0)
    await assert_accessible(page, f"/config after saving a silent server ({width})")
    # Saved messages name the fields by their labels; the source says "saved here".
    await page.get_by_label("Chat model").fill("llama3.2:1b")
    await page.get_by_label("Embedding model").fill("bge-m3")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator(".flash.success")).to_have_text("Saved: Embedding model, Chat model.")
    await expect(page.locator("#field-llm_model .source")).to_have_text("saved here")
    # The other components' tests give their time and latency too.
    await button_of(page, "Database").click()
    await expect(page.locator("#test-db .badge")).to_have_text("ok")
    await expect(page.locator("#test-db")).to_contain_text(re.compile(r"Tested at .* UTC, in"))
    await assert_accessible(page, f"/config after saving and a test ({width})")


async def _logout(page: Page, server: HearthServer, width: str) -> None:
    before = await page.context.cookies()
    await page.get_by_role("button", name="Log out").click()
    await expect(page).to_have_url(f"{server.url}/")
    await expect(page.locator(".flash.success")).to_have_text("You are logged out.")
    await assert_accessible(page, f"/ after logging out ({width})")
    await page.reload()
    await expect(page.locator(".flash.success")).to_have_count(0)  # said once
    # A copy of the cookie from before the logout names a session that ended.
    await page.context.add_cookies(
        [
            {"name": c["name"], "value": c["value"], "domain": c["domain"], "path": c["path"]}
            for c in before
        ]
    )
    await page.goto(f"{server.url}/config")
    await expect(page).to_have_url(re.compile(r"/login\?next=/config$"))
    await expect(page.locator("#login-reason")).to_have_text(
        "Your session ended: log in again to carry on."
    )
    await assert_accessible(page, f"/login after the session ended ({width})")
