"""The operator console in a real Chromium, against a real `hearth serve` process."""

from __future__ import annotations

import re
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Locator, Page, Route, expect

from hearth.web.headers import CONTENT_SECURITY_POLICY
from tests.support.fake_llm import fake_ollama
from tests.support.process import clean_environment, hearth_server
from tests.support.services import REDIS_URL, free_port
from tests.support.tokens import bearer
from tests.support.worker import hearth_worker

pytestmark = pytest.mark.redis  # both tests give `hearth serve` the suite's Redis

PASSWORD = "browser-test-operator-password"


def _test_button(page: Page, component: str) -> Locator:
    """A "Test connection" button, by its accessible name ("Test connection: LLM")."""
    return page.get_by_role("button", name=f"Test connection: {component}", exact=True)


@pytest.mark.worker
async def test_operator_console(page: Page, tmp_path: Path, fresh_database: str) -> None:
    with ExitStack() as stack:
        await _console_walkthrough(page, tmp_path, fresh_database, stack)


async def _console_walkthrough(
    page: Page, tmp_path: Path, fresh_database: str, stack: ExitStack
) -> None:
    port = free_port()
    env = clean_environment(
        DATABASE_URL=fresh_database,
        REDIS_URL=REDIS_URL,
        ADMIN_PASSWORD=PASSWORD,
        HEALTH_CACHE_SECONDS="0",
        WORKER_HEARTBEAT_SECONDS="1",
    )
    banner = page.locator("#degraded-banner")
    # Chromium reports each thing the page's Content-Security-Policy refused on the console.
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    with fake_ollama() as ollama, hearth_server(env, tmp_path, port) as server:
        server.wait_until("/readyz", 200)  # migrated: the worker's heartbeat table exists
        worker = stack.enter_context(hearth_worker(env, tmp_path))
        worker.wait_for_log(" ready.")
        server.wait_for_check("worker", "ok")  # its first heartbeat

        # The dashboard loads its health fragment with htmx; reading needs no login.
        dashboard = await page.goto(f"{server.url}/")
        assert dashboard is not None
        assert "frame-ancestors 'none'" in dashboard.headers["content-security-policy"]
        assert dashboard.headers["cache-control"] == "no-store"
        await expect(page.locator("#check-db .badge")).to_have_text("ok")
        await expect(page.locator("#check-redis .badge")).to_have_text("ok")
        await expect(page.locator("#check-llm .badge")).to_have_text("unconfigured")
        await expect(page.locator("#check-worker .badge")).to_have_text("ok")
        # Anonymous: statuses and latencies; the details (versions, hosts) need a login.
        await expect(page.locator("#check-db .detail")).to_have_count(0)
        await expect(page.get_by_role("link", name="Log in to see details")).to_have_attribute(
            "href", "/login?next=/"
        )

        # The config page asks for the operator password first.
        await page.get_by_role("link", name="Go to Config").click()
        await expect(page).to_have_url(re.compile(r"/login\?next=/config$"))
        await page.get_by_label("Operator password").fill("not it")
        await page.get_by_role("button", name="Log in").click()
        await expect(page.locator(".flash.error")).to_have_text("Wrong password.")
        await page.get_by_label("Operator password").fill(PASSWORD)
        await page.get_by_role("button", name="Log in").click()
        await expect(page).to_have_url(f"{server.url}/config")

        # Save settings; the page says what was saved and where values come from.
        await page.get_by_label("Chat model").fill("qwen2.5:7b")
        await page.get_by_label("LLM endpoint").fill(ollama.url)
        await page.get_by_role("button", name="Save").click()
        await expect(page.locator(".flash.success")).to_have_text(
            "Saved: LLM endpoint, Chat model."
        )
        await expect(page.locator(".field", has_text="Chat model").locator(".source")).to_have_text(
            "saved here"
        )

        # Test connection: the result appears inline, without a page load.
        await _test_button(page, "Database").click()
        await expect(page.locator("#test-db .badge")).to_have_text("ok")
        await _test_button(page, "LLM").click()
        await expect(page.locator("#test-llm .badge")).to_have_text("ok")
        await expect(page.locator("#test-llm")).to_contain_text("Ollama at")
        await expect(banner).to_have_count(0)

        # An invalid value is refused inline, and nothing is saved.
        await page.get_by_label("Event date").fill("2026-12-24")
        await page.get_by_label("Embedding model").fill("not a model name!")
        await page.get_by_role("button", name="Save").click()
        await expect(page.locator("#embedding_model-error")).to_contain_text(
            "may hold letters, digits"
        )
        await expect(page.get_by_label("Embedding model")).to_have_attribute("aria-invalid", "true")

        # A dead LLM endpoint: the banner shows on every page.
        await page.goto(f"{server.url}/config")
        await page.get_by_label("LLM endpoint").fill(f"http://127.0.0.1:{free_port()}")
        await page.get_by_role("button", name="Save").click()
        for path in ("/", "/status", "/config", "/login"):
            await page.goto(f"{server.url}{path}")
            await expect(banner).to_contain_text("AI features unavailable — LLM unreachable")
        # The operator reads why (the endpoint and its error), on the banner and the page.
        await expect(banner).to_contain_text("127.0.0.1")
        await page.goto(f"{server.url}/status")
        await expect(page.locator("#check-db .detail")).to_contain_text("PostgreSQL")

        # The Activity page: what was just done, newest first, with who and from where.
        await page.get_by_role("link", name="Activity").click()
        await expect(page).to_have_url(f"{server.url}/activity")
        trail = page.get_by_role("table")
        await expect(trail.locator("tbody tr").first.locator(".action")).to_have_text(
            "settings_saved"
        )
        for action in ("connection_tested", "login_succeeded", "login_failed"):
            await expect(trail).to_contain_text(action)
        await expect(trail).not_to_contain_text(PASSWORD)

        # API tokens: made on the Tokens page, shown once, refused once revoked.
        await page.goto(f"{server.url}/tokens")
        await page.get_by_label("Name").fill("browser-script")
        await page.get_by_label("read", exact=True).check()
        await page.get_by_role("button", name="Create token").click()
        secret = await page.get_by_label("Token", exact=True).input_value()
        task = f"{server.url}/tasks/8f7d2c1e-0b6a-4b7e-9d55-3c2a1f0e9b11"
        assert httpx.get(task, headers=bearer(secret), timeout=10).status_code == 200
        await page.get_by_role("button", name="Revoke browser-script").click()
        await expect(page.locator(".flash.success")).to_contain_text("Revoked the token")
        await expect(page.get_by_label("Token", exact=True)).to_have_count(0)
        assert httpx.get(task, headers=bearer(secret), timeout=10).status_code == 401

        # The 404 page, in the site's frame.
        response = await page.goto(f"{server.url}/no/such/page")
        assert response is not None
        assert response.status == 404
        await expect(page.locator(".error-page h1")).to_have_text("Page not found")
        await expect(page.get_by_role("navigation", name="Main")).to_be_visible()
        assert server.stop() == 0
    assert [line for line in console if "Content Security Policy" in line] == []

    # After a restart the saved values are still there (and the session too: same SECRET_KEY).
    with hearth_server(env, tmp_path, port) as server:
        server.wait_until("/readyz", 200)
        await page.goto(f"{server.url}/config")
        await expect(page.get_by_label("Chat model")).to_have_value("qwen2.5:7b")
        await expect(page.get_by_label("Embedding model")).to_have_value("nomic-embed-text")

        await page.get_by_role("button", name="Log out").click()
        await expect(page).to_have_url(f"{server.url}/")
        await page.goto(f"{server.url}/config")
        await expect(page).to_have_url(re.compile(r"/login\?next=/config$"))
        assert server.stop() == 0


async def test_locked_settings_are_read_only_in_the_browser(
    page: Page, tmp_path: Path, fresh_database: str
) -> None:
    port = free_port()
    env = clean_environment(
        DATABASE_URL=fresh_database,
        ADMIN_PASSWORD=PASSWORD,
        LLM_MODEL="pinned-model",
        REDIS_URL=REDIS_URL,
    )
    with hearth_server(env, tmp_path, port) as server:
        server.wait_until("/readyz", 200)
        await page.goto(f"{server.url}/login?next=/config")
        await page.get_by_label("Operator password").fill(PASSWORD)
        await page.get_by_role("button", name="Log in").click()
        field = page.get_by_label("Chat model")
        await expect(field).to_have_value("pinned-model")
        await expect(field).to_have_attribute("readonly", "")
        await expect(page.locator(".field", has_text="Chat model").locator(".source")).to_have_text(
            "set in the environment"
        )
        await expect(page.locator("#llm_model-help")).to_contain_text("Set by LLM_MODEL")
        assert server.stop() == 0


async def test_api_docs_work_offline_under_the_policy(
    page: Page, tmp_path: Path, fresh_database: str
) -> None:
    env = clean_environment(DATABASE_URL=fresh_database, REDIS_URL=REDIS_URL)
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    with hearth_server(env, tmp_path, free_port()) as server:
        # No route out: any request to another origin is refused and noted.
        elsewhere: list[str] = []

        async def only_hearth(route: Route) -> None:
            if route.request.url.startswith(server.url + "/"):
                await route.continue_()
            else:
                elsewhere.append(route.request.url)
                await route.abort("internetdisconnected")

        await page.route("**/*", only_hearth)
        server.wait_until("/readyz", 200)
        docs = await page.goto(f"{server.url}/docs")
        assert docs is not None
        assert docs.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Hearth")
        operations = page.locator(".opblock-summary-path")
        await expect(operations.filter(has_text="/documents/search")).to_have_count(1)
        await expect(operations.filter(has_text="/readyz")).to_have_count(1)
        # An operation opens, with Hearth's error body among its answers.
        await page.locator(".opblock-summary", has_text="/documents/search").first.click()
        await expect(page.locator(".responses-table").first).to_contain_text("Invalid input")
        assert server.stop() == 0
    assert elsewhere == []
    assert [line for line in console if "Content Security Policy" in line] == []
