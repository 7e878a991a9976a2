"""Every page state of the console, in a real Chromium against a real `hearth serve` (with a
worker and an LLM server double), at a desktop and a phone width: axe-core finds no WCAG 2.1
A/AA violation, the page starts with a skip link, fits the screen and has no target under
24 px. The same run takes the screenshots in docs/screenshots/ (`make screenshots`).

To add a page: one line in ``PAGES``: its path, who looks, a selector that is there once the
page is complete (what htmx loads included), and a screenshot name if it is to be pictured.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, expect

from tests.support.axe import assert_accessible
from tests.support.fake_llm import fake_llm
from tests.support.layout import assert_usable
from tests.support.process import HearthServer, clean_environment, hearth_server, run_hearth
from tests.support.services import REDIS_URL, free_port
from tests.support.worker import hearth_worker

pytestmark = [pytest.mark.redis, pytest.mark.worker]

WIDTHS: dict[str, ViewportSize] = {
    "desktop": {"width": 1280, "height": 900},
    "phone": {"width": 390, "height": 844},
}
PASSWORD = "accessibility-test-operator-password"
# `make screenshots` sets this to docs/screenshots to refresh the pictures there.
SCREENSHOT_DIR = os.environ.get("HEARTH_SCREENSHOT_DIR")

ANONYMOUS, OPERATOR = "anonymous", "operator"
WHO = (ANONYMOUS, OPERATOR)
Action = Callable[[Page], Awaitable[None]]


async def _failed_save(page: Page) -> None:
    await page.get_by_label("Embedding model").fill("not a model name!")
    await page.get_by_role("button", name="Save").click()


async def _token_created(page: Page) -> None:
    await page.get_by_label("Name").fill("backup-script")
    await page.get_by_label("read", exact=True).check()
    await page.get_by_role("button", name="Create token").click()


@dataclass(frozen=True)
class PageState:
    """A page as someone sees it at one moment."""

    path: str
    who: str  # ANONYMOUS or OPERATOR
    ready: str  # a selector present once the page is complete
    act: Action | None = None  # what that someone does on the page first
    shot: str | None = None  # docs/screenshots/<shot>-desktop.png and -phone.png
    llm_down: bool = False  # the LLM configured but unreachable: the banner shows

    @property
    def name(self) -> str:
        what = f", after {self.act.__name__.strip('_').replace('_', ' ')}" if self.act else ""
        return f"{self.path} ({self.who}{what}{', LLM down' if self.llm_down else ''})"


PAGES = (
    PageState("/", ANONYMOUS, "#check-db .badge"),
    PageState("/status", ANONYMOUS, "#history-db .badge"),
    PageState("/login", ANONYMOUS, "#password", shot="login"),
    PageState("/no/such/page", ANONYMOUS, ".error-page", shot="not-found"),
    PageState("/", OPERATOR, "#check-db .detail", shot="dashboard"),
    PageState("/status", OPERATOR, "#history-db .detail", shot="status"),
    PageState("/config", OPERATOR, "#llm_endpoint", shot="config"),
    PageState("/config", OPERATOR, "#embedding_model-error", act=_failed_save),
    PageState("/tokens", OPERATOR, "#new-token", act=_token_created, shot="tokens"),
    PageState("/activity", OPERATOR, "table.activity", shot="activity"),
    PageState("/tasks", OPERATOR, "#queue-celery", shot="tasks"),
    PageState("/documents", OPERATOR, "#count-total", shot="documents"),
    PageState("/diagnostics", OPERATOR, "#report-text", shot="diagnostics"),
    PageState("/", ANONYMOUS, "#degraded-banner", llm_down=True),
    PageState("/", OPERATOR, "#degraded-banner", llm_down=True, shot="banner"),
    PageState("/config", OPERATOR, "#degraded-banner", llm_down=True),
)


async def _screenshot(page: Page, tmp_path: Path, name: str) -> None:
    target = Path(SCREENSHOT_DIR) if SCREENSHOT_DIR else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=target / name, full_page=True, animations="disabled")
    assert (target / name).read_bytes().startswith(b"\x89PNG")


async def _log_in(context: BrowserContext, server: HearthServer) -> None:
    page = await context.new_page()
    await page.goto(f"{server.url}/login")
    await page.get_by_label("Operator password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("button", name="Log out")).to_be_visible()
    await page.close()


async def _look(page: Page, server: HearthServer, state: PageState, width: str) -> None:
    await page.goto(f"{server.url}{state.path}")
    if state.act is not None:
        await state.act(page)
    await expect(page.locator(state.ready).first).to_be_visible()
    await page.wait_for_load_state("networkidle")  # htmx's first refresh has landed
    label = f"{state.name} at {width}"
    await assert_accessible(page, label)
    await assert_usable(page, label)


@pytest.mark.parametrize("width", sorted(WIDTHS))
async def test_every_page_state_is_accessible_and_fits(
    browser: Browser, tmp_path: Path, fresh_database: str, width: str
) -> None:
    env = clean_environment(
        DATABASE_URL=fresh_database,
        REDIS_URL=REDIS_URL,
        ADMIN_PASSWORD=PASSWORD,
        HEALTH_CACHE_SECONDS="0",
        # No refresh while axe reads a page (the dashboard still asks once when shown).
        HEALTH_MONITOR_SECONDS="300",
        WORKER_HEARTBEAT_SECONDS="1",
    )
    contexts = {who: await browser.new_context(viewport=WIDTHS[width]) for who in WHO}
    try:
        with ExitStack() as stack, ExitStack() as llm_up:
            llm = llm_up.enter_context(fake_llm())
            server = stack.enter_context(hearth_server(env, tmp_path, free_port()))
            server.wait_until("/readyz", 200)
            settings = tmp_path / "settings.json"
            settings.write_text(json.dumps({"llm_endpoint": llm.url, "llm_model": "llama3.2:1b"}))
            imported = run_hearth("settings", "import", str(settings), env=env, cwd=tmp_path)
            assert imported.returncode == 0, imported.stderr
            stack.enter_context(hearth_worker(env, tmp_path))
            for name in ("worker", "llm"):
                server.wait_for_check(name, "ok")
            await _log_in(contexts[OPERATOR], server)
            pages = {who: await context.new_page() for who, context in contexts.items()}
            for state in PAGES:
                if state.llm_down and llm.socket.fileno() != -1:
                    llm_up.close()  # the LLM server goes away; its endpoint stays configured
                    server.wait_for_check("llm", "unreachable")
                page = pages[state.who]
                await _look(page, server, state, width)
                if state.shot:
                    await _screenshot(page, tmp_path, f"{state.shot}-{width}.png")
            assert server.stop() == 0
    finally:
        for context in contexts.values():
            await context.close()


async def test_the_check_finds_a_violation(browser: Browser) -> None:
    """The harness itself: an image without a text alternative is a WCAG A violation."""
    context = await browser.new_context()
    page = await context.new_page()
    try:
        await page.set_content('<html lang="en"><title>t</title><main><img src="x.png"></main>')
        with pytest.raises(AssertionError, match="image-alt"):
            await assert_accessible(page, "a page with an unlabelled image")
    finally:
        await context.close()
