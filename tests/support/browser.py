"""A real Chromium, driven through Playwright's async API, for the browser tests.

The Chromium is Debian's (``/usr/bin/chromium``, installed by ``make browser``, which
``make test`` runs first) or the binary ``HEARTH_CHROMIUM`` names; never Playwright's own
download (``playwright install``), which cannot be fetched here. The async API runs in the
suite's one asyncio loop, so browser tests are ``async def`` like the others. conftest.py
registers these fixtures as a plugin.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, ViewportSize, async_playwright

CHROMIUM = os.environ.get("HEARTH_CHROMIUM", "/usr/bin/chromium")
# All are needed on a machine without internet: without the background-networking ones,
# Chromium keeps trying to reach Google's services.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the session, started on first use."""
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        raise AssertionError(
            f"The browser tests need Chromium at {CHROMIUM}, and there is none. Run `make test` "
            "(it installs it) or scripts/ensure-chromium.sh, or set HEARTH_CHROMIUM."
        )
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A new page in a context of its own (fresh cookies), 1280x900."""
    context = await browser.new_context(viewport=VIEWPORT)
    yield await context.new_page()
    await context.close()
