"""axe-core in the browser tests: every page state is held to WCAG 2.1 A and AA.

axe-core is vendored (``tests/support/vendor/axe-core``, from npm) and evaluated through the
DevTools protocol, which Hearth's Content-Security-Policy does not govern: the page itself
runs under its real CSP, unchanged.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from playwright.async_api import Page

AXE_SCRIPT = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
# WCAG 2.0 and 2.1, levels A and AA: the rules that apply, no best-practice extras.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@cache
def _source() -> str:
    return AXE_SCRIPT.read_text(encoding="utf-8")


async def violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A/AA violations on ``page`` as it is now."""
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated as a function body so axe's top-level declarations land on window.
        await page.evaluate(f"() => {{ {_source()}\n; window.axe = axe; }}")
    result: dict[str, Any] = await page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: "
        "['violations']})",
        WCAG_TAGS,
    )
    return list(result["violations"])


def describe(found: list[dict[str, Any]]) -> str:
    """The violations, one per line with the elements they concern, for an assertion."""
    lines = []
    for violation in found:
        targets = [json.dumps(node["target"]) for node in violation["nodes"][:5]]
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']} at {targets}")
    return "\n".join(lines)


async def assert_accessible(page: Page, state: str) -> None:
    """Fail, naming each rule and element, unless ``page`` has no WCAG 2.1 AA violation."""
    found = await violations(page)
    assert not found, f"axe-core found WCAG 2.1 A/AA violations on {state}:\n{describe(found)}"
