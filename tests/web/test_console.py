"""The live console's health view, in-process: the pages and /health/fragment draw the table,
the overall status, the LLM banner and "checked N s ago" from one set of results; the
fragment sends the live regions out of band only when they changed; the age is that of the
oldest result shown. The same in a real browser: test_console_browser.py."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import quote

import httpx
import pytest

from hearth.health import console
from hearth.health.schemas import HealthReport
from hearth.health.service import HealthService
from hearth.kit.checks import CheckResult, CheckStatus
from tests.support.app import ClientFor
from tests.support.fake_llm import fake_llm
from tests.support.services import free_port

HTML = {"Accept": "text/html"}
PASSWORD = "console-test-operator-password"
FIX = "/config#llm_endpoint"  # where the banner leads: the LLM's settings
HTMX = {"HX-Request": "true"}
PAGES = ("/", "/status", "/login")
SEEN = ("banner_seen", "overall_seen")
_VOID = frozenset({"input", "br", "meta", "link", "img", "hr", "col", "source", "wbr"})


@dataclass
class Element:
    """An element of a parsed page: its tag, attributes, text and the ids inside it."""

    tag: str
    attrs: dict[str, str]
    text: str = ""
    ids: list[str] = field(default_factory=list)


class _Elements(HTMLParser):
    """Every element with an id (or an input with a name: ``[name=…]``), in document order
    (duplicates kept)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, Element]] = []
        self._open: list[Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs})
        key = element.attrs.get("id")
        if key is None and tag == "input" and "name" in element.attrs:
            key = f"[name={element.attrs['name']}]"
        if key is not None:
            for outer in self._open:
                outer.ids.append(key)
            self.found.append((key, element))
        if tag not in _VOID:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop().tag == tag:
                break

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.text += data


def elements(answer: httpx.Response) -> dict[str, list[Element]]:
    """The answer's elements that have an id, by id."""
    parser = _Elements()
    parser.feed(answer.text)
    found: dict[str, list[Element]] = {}
    for element_id, element in parser.found:
        found.setdefault(element_id, []).append(element)
    return found


def one(found: dict[str, list[Element]], element_id: str) -> Element:
    assert len(found.get(element_id, [])) == 1, f"#{element_id}: {found.get(element_id)}"
    return found[element_id][0]


def seen(found: dict[str, list[Element]]) -> dict[str, str]:
    """What the page would send back with its next refresh (the inputs of #health-seen)."""
    box = one(found, "health-seen")
    assert "hidden" in box.attrs
    assert box.ids == ["[name=banner_seen]", "[name=overall_seen]"]
    return {name: one(found, f"[name={name}]").attrs["value"] for name in SEEN}


def status_of(found: dict[str, list[Element]], name: str) -> str:
    return one(found, f"check-{name}").text.split()[1]


def assert_agrees(found: dict[str, list[Element]]) -> None:
    """The overall status and the banner say what the table says."""
    rows = [i.removeprefix("check-") for i in found if i.startswith("check-")]
    statuses = {name: status_of(found, name) for name in rows}
    overall = one(found, "health-overall").text.split()[-1]
    expected = "degraded" if "unreachable" in statuses.values() else "ok"
    if statuses.get("db") == "unreachable":
        expected = "down"
    assert overall == expected, (overall, statuses)
    banner = "degraded-banner" in found
    assert banner == (statuses["llm"] == "unreachable"), statuses


@pytest.mark.parametrize("path", ["/", "/status"])
async def test_a_page_draws_table_overall_banner_and_age_from_one_set_of_results(
    client_for: ClientFor, path: str
) -> None:
    async with client_for(llm_endpoint=f"http://127.0.0.1:{free_port()}") as client:
        page = elements(await client.get(path, headers=HTML))
    assert status_of(page, "llm") == "unreachable"
    assert_agrees(page)
    region = one(page, "llm-banner")  # the banner's region, always there
    assert (region.attrs["role"], region.attrs["aria-live"]) == ("status", "polite")
    assert "degraded-banner" in region.ids
    assert "AI features unavailable — LLM unreachable" in region.text
    overall = one(page, "health-overall")
    assert (overall.attrs["role"], overall.attrs["aria-live"]) == ("status", "polite")
    # How fresh: a <time> with the moment of the oldest check, and its age as text.
    checked = one(page, "health-checked")
    assert checked.text.startswith("Checked ")
    assert checked.text.endswith(" ago")
    poller = one(page, "health-checks")
    assert poller.attrs["hx-get"] == "/health/fragment"
    assert poller.attrs["hx-include"] == "#health-seen"
    # HEALTH_MONITOR_SECONDS, the monitor's period (15 s by default), is the console's too;
    # the dashboard, drawn from the last results, asks for fresh ones once shown.
    first = "load, " if path == "/" else ""
    assert poller.attrs["hx-trigger"] == f"{first}every 15s"
    assert seen(page)["overall_seen"] == "degraded"
    assert seen(page)["banner_seen"].startswith("llm-")


async def test_without_an_llm_problem_the_region_stays_and_is_empty(
    client_for: ClientFor,
) -> None:
    async with client_for() as client:  # no LLM configured: nothing to warn about
        pages = {path: elements(await client.get(path, headers=HTML)) for path in PAGES}
    for path, page in pages.items():
        assert one(page, "llm-banner").ids == [], path
        assert one(page, "llm-banner").text.strip() == "", path
    assert seen(pages["/"])["banner_seen"] == "none"
    assert status_of(pages["/"], "llm") == "unconfigured"


async def test_the_fragment_sends_the_live_regions_only_when_they_changed(
    client_for: ClientFor,
) -> None:
    port = free_port()
    async with client_for(llm_endpoint=f"http://127.0.0.1:{port}") as client:
        # A page that knows nothing (its first refresh, or an old page): everything comes.
        fresh = elements(await client.get("/health/fragment", headers=HTMX))
        assert one(fresh, "llm-banner").attrs["hx-swap-oob"] == "innerHTML"
        assert "degraded-banner" in one(fresh, "llm-banner").ids
        assert one(fresh, "health-overall").attrs["hx-swap-oob"] == "innerHTML"
        assert_agrees(fresh)
        # The page already shows this banner and status: the live regions are left alone,
        # while the table, the freshness line and what the page shows come every time.
        known = seen(fresh)
        same = elements(await client.get("/health/fragment", params=known, headers=HTMX))
        assert "llm-banner" not in same
        assert "health-overall" not in same
        assert "degraded-banner" not in same
        assert one(same, "health-checked").attrs["hx-swap-oob"] == "true"
        assert one(same, "health-seen").attrs["hx-swap-oob"] == "true"
        assert status_of(same, "llm") == "unreachable"
        assert seen(same) == known

        # The LLM comes up: the banner is sent, empty, with the new status; then left alone.
        with fake_llm(port):
            back = elements(await client.get("/health/fragment", params=known, headers=HTMX))
            assert status_of(back, "llm") == "ok"
            assert one(back, "llm-banner").attrs["hx-swap-oob"] == "innerHTML"
            assert one(back, "llm-banner").text.strip() == ""
            assert one(back, "llm-banner").ids == []
            assert seen(back)["banner_seen"] == "none"
            again = await client.get("/health/fragment", params=seen(back), headers=HTMX)
            assert "llm-banner" not in elements(again)
        # And goes away again: the banner comes back.
        gone = elements(await client.get("/health/fragment", params=seen(back), headers=HTMX))
        assert "degraded-banner" in one(gone, "llm-banner").ids
        assert seen(gone)["banner_seen"] == known["banner_seen"]


async def test_the_fragment_links_back_to_the_page_it_is_drawn_into(
    client_for: ClientFor,
) -> None:
    async with client_for(llm_endpoint=f"http://127.0.0.1:{free_port()}") as client:
        for page, expected in (("/status", "/status"), ("/", "/"), ("/config", "/")):
            headers = {**HTMX, "HX-Current-URL": f"http://hearth.test{page}?x=1"}
            found = elements(await client.get("/health/fragment", headers=headers))
            assert one(found, "health-details-login").attrs["href"] == f"/login?next={expected}"
            # The banner leads to the fix, the LLM's settings, wherever it is drawn.
            banner_login = one(found, "degraded-banner-login").attrs["href"]
            assert banner_login == f"/login?next={quote(FIX)}"


async def test_the_banner_leads_the_operator_to_the_fix(client_for: ClientFor) -> None:
    """Drawn with the page and sent by the fragment alike: for the operator, a link to the
    LLM's settings on the config page (anyone else logs in first, as above)."""
    async with client_for(
        llm_endpoint=f"http://127.0.0.1:{free_port()}", admin_password=PASSWORD
    ) as client:
        token = (await client.get("/login")).json()["csrf_token"]
        login = await client.post(
            "/login", json={"password": PASSWORD}, headers={"X-CSRF-Token": token}
        )
        assert login.status_code == 200, login.text
        page = elements(await client.get("/", headers=HTML))
        fragment = elements(await client.get("/health/fragment", headers=HTMX))
    for found in (page, fragment):
        assert one(found, "degraded-banner-fix").attrs["href"] == FIX
        assert "degraded-banner-login" not in found


async def test_what_the_page_sends_back_is_bounded(client_for: ClientFor) -> None:
    async with client_for() as client:
        answer = await client.get("/health/fragment", params={"banner_seen": "x" * 65})
    assert answer.status_code == 422


async def _constant(status: CheckStatus) -> CheckResult:
    return CheckResult(status=status)


async def test_the_age_is_that_of_the_oldest_result_shown_not_of_the_request() -> None:
    health = HealthService(version="test", cache_seconds=0)
    runs = {"kept": 0, "fresh": 0}

    async def counted(name: str) -> CheckResult:
        runs[name] += 1
        return CheckResult(status="ok")

    health.register("kept", lambda: counted("kept"), critical=False, timeout=1, cache_seconds=300)
    health.register("fresh", lambda: counted("fresh"), critical=False, timeout=1)
    first = await console.current(health, details=True)
    kept_at = health.states()["kept"].checked_at
    assert first.checked_at == kept_at
    second = await console.current(health, details=True)
    assert runs == {"kept": 1, "fresh": 2}  # "kept" came from the cache the second time
    assert health.states()["fresh"].checked_at >= kept_at
    assert second.checked_at == kept_at  # the oldest shown, though "fresh" was just checked
    assert second.taken_at >= second.checked_at
    assert second.checked_iso.endswith("+00:00")
    # The last-known view does not run a check that has a result, and says as much.
    last = await console.last_known(health, details=True)
    assert last.checked_at == kept_at
    await health.close()


async def test_a_result_made_up_for_a_check_past_the_budget_is_as_old_as_the_request() -> None:
    health = HealthService(version="test", budget=0.1, cache_seconds=0)
    never = asyncio.Event()

    async def stuck() -> CheckResult:
        await never.wait()
        return CheckResult(status="ok")

    health.register("db", lambda: _constant("ok"), critical=True, timeout=1)
    health.register("llm", stuck, critical=False, timeout=1)
    snapshot = await console.current(health, details=True)
    assert snapshot.report.checks["llm"].status == "unreachable"
    assert snapshot.report.status == "degraded"
    assert snapshot.banner_key.startswith("llm-")
    # No stored result stands behind it: its time is the request's start, never later.
    assert snapshot.checked_at <= health.states()["db"].checked_at
    assert snapshot.checked_at < snapshot.taken_at
    await health.close()


async def test_an_unconfigured_component_does_not_age_the_view() -> None:
    """An unconfigured state comes from the settings (the mail check's is kept a minute):
    the age is that of the components that were asked."""
    health = HealthService(version="test", cache_seconds=0)
    health.register("db", lambda: _constant("ok"), critical=True, timeout=1)
    health.register(
        "mail", lambda: _constant("unconfigured"), critical=False, timeout=1, cache_seconds=300
    )
    await console.current(health, details=True)
    snapshot = await console.current(health, details=True)
    states = health.states()
    assert snapshot.checked_at == states["db"].checked_at
    assert states["mail"].checked_at <= states["db"].checked_at
    # With nothing configured, the unconfigured ones are all there is to date the view.
    bare = HealthService(version="test")
    bare.register("mail", lambda: _constant("unconfigured"), critical=False, timeout=1)
    alone = await console.current(bare, details=True)
    assert alone.checked_at == bare.states()["mail"].checked_at
    await health.close()


@pytest.mark.parametrize(
    ("age", "text"),
    [(0, "0 s ago"), (59, "59 s ago"), (60, "1 min ago"), (3599, "59 min ago"), (7300, "2 h ago")],
)
def test_the_age_reads_naturally(age: int, text: str) -> None:
    report = HealthReport(status="ok", version="test", checks={})
    snapshot = console.Snapshot(report=report, checked_at=1000.0, taken_at=1000.0 + age + 0.5)
    assert snapshot.age_seconds == age
    assert snapshot.age_text == text
