"""What every page of the console owes a keyboard and a phone, measured in the browser: a skip
link first, nothing wider than the screen, targets a finger can hit (WCAG 2.5.8, 24 px)."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page

# Smallest target, in CSS pixels (WCAG 2.2 SC 2.5.8, level AA).
TARGET_PX = 24

SKIP_LINK = {"tag": "a", "href": "#main", "text": "Skip to content"}

# The elements a keyboard reaches, in document order.
_FIRST_FOCUSABLE = """() => {
  const selector = "a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]),"
    + " select:not([disabled]), textarea:not([disabled]), summary, [tabindex]:not([tabindex='-1'])";
  const first = document.querySelector(selector);
  return first === null ? null : {
    tag: first.tagName.toLowerCase(), href: first.getAttribute("href"),
    text: first.textContent.trim(),
  };
}"""

# Whatever sticks out past the right edge of the viewport (a page must not scroll sideways;
# a wide table scrolls inside its own box instead).
_TOO_WIDE = """() => {
  const root = document.documentElement;
  if (root.scrollWidth <= root.clientWidth) return [];
  const out = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.right > root.clientWidth + 0.5 && box.width > 0) {
      out.push(`${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}.${el.className} `
        + `right=${Math.round(box.right)}`);
    }
  }
  return [`scrollWidth ${root.scrollWidth} > ${root.clientWidth}`, ...out.slice(0, 8)];
}"""

# Targets smaller than the minimum. A link inside a sentence is exempt (SC 2.5.8's "inline"
# exception); a checkbox or radio is measured with its label, which toggles it too; the skip
# link is measured only when it shows (on focus).
_SMALL_TARGETS = """(minimum) => {
  const small = [];
  const selector = "a[href], button, input:not([type=hidden]), select, textarea, summary";
  for (const el of document.querySelectorAll(selector)) {
    let target = el;
    if (el.matches("input[type=checkbox], input[type=radio]") && el.closest("label")) {
      target = el.closest("label");
    }
    if (el.matches(".skip-link:not(:focus)")) continue;
    const style = getComputedStyle(target);
    const box = target.getBoundingClientRect();
    if (style.visibility === "hidden" || (box.width === 0 && box.height === 0)) continue;
    const parent = target.parentElement;
    if (style.display === "inline" && parent.textContent.trim() !== target.textContent.trim()) {
      continue;
    }
    if (box.width < minimum - 0.01 || box.height < minimum - 0.01) {
      const name = (target.textContent || target.getAttribute("aria-label") || "").trim();
      small.push(`${target.tagName.toLowerCase()} "${name.slice(0, 40)}" `
        + `${box.width.toFixed(1)}x${box.height.toFixed(1)}`);
    }
  }
  return small;
}"""


async def first_focusable(page: Page) -> dict[str, Any] | None:
    """The first element the Tab key reaches, as ``{tag, href, text}``."""
    found: dict[str, Any] | None = await page.evaluate(_FIRST_FOCUSABLE)
    return found


async def assert_usable(page: Page, state: str) -> None:
    """Fail unless the page starts with a skip link, fits its width and has no target under
    24 px, naming what is wrong."""
    problems = []
    first = await first_focusable(page)
    if first != SKIP_LINK:
        problems.append(f"the first focusable element is {first}, not the skip link")
    wide: list[str] = await page.evaluate(_TOO_WIDE)
    if wide:
        problems.append(f"it scrolls sideways: {wide}")
    small: list[str] = await page.evaluate(_SMALL_TARGETS, TARGET_PX)
    if small:
        problems.append(f"targets under {TARGET_PX} px: {small}")
    assert not problems, f"{state}: " + "; ".join(problems)
