"""``GET /health/history`` and the history section of /status, on a real app and a database
of this module's own: statuses and times for anyone, details only for the operator or a
``read`` token (as on /health), bad input a clear 422. The app's own monitor records its
components' first statuses with no one probing."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from hearth.app.factory import create_app
from hearth.config.settings import Settings
from tests.support.app import served
from tests.support.database import create_migrated_database, drop_database
from tests.support.tokens import bearer, insert_token

SECRET_DETAIL = "refused by 10.9.8.7 (history-detail-marker)"
HTMX = {"HX-Request": "true"}


@pytest.fixture(scope="module")
async def history_database() -> AsyncIterator[str]:
    """A migrated database whose LLM history is known: ok from 20 h 8 min ago, unreachable
    from 2 h ago."""
    url = await create_migrated_database()
    now = datetime.now(UTC)
    with psycopg.connect(url, autocommit=True) as connection:
        for status, ago, detail in (
            ("ok", timedelta(hours=20, minutes=8), "ok"),
            ("unreachable", timedelta(hours=2), SECRET_DETAIL),
        ):
            connection.execute(
                "INSERT INTO health_events (component, status, detail, changed_at)"
                " VALUES ('llm', %s, %s, %s)",
                (status, detail, now - ago),
            )
    yield url
    drop_database(url)


@pytest.fixture
def hearth(make_settings: Callable[..., Settings], history_database: str) -> Callable[..., Any]:
    """The app on the module's database; an LLM nobody answers at."""

    def open_app(**overrides: Any) -> Any:
        settings = make_settings(
            database_url=history_database,
            llm_endpoint="http://127.0.0.1:9/v1",
            admin_password="history-operator-password",
            **overrides,
        )
        return served(create_app(settings))

    return open_app


async def test_anyone_reads_statuses_and_availability_without_details(
    hearth: Callable[..., Any],
) -> None:
    async with hearth() as client:
        answer = await client.get("/health/history")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body["components"]) == {"db", "redis", "llm", "worker", "mail"}
    llm = body["components"]["llm"]
    assert llm["status"] == "unreachable"
    assert llm["detail"] is None
    assert datetime.fromisoformat(llm["since"]) < datetime.now(UTC) - timedelta(hours=1)
    # Known for 20 h 8 min of the last 24 h, unreachable for the last 2 of them.
    assert llm["availability_24h"] == pytest.approx(18.13 / 20.13, abs=0.005)
    assert llm["availability_7d"] == pytest.approx(llm["availability_24h"], abs=0.001)
    assert len(llm["bar"]) == 90
    assert body["bar_slot_seconds"] == 16 * 60
    assert llm["bar"][:10] == ["none"] * 10  # before the first change
    assert llm["bar"][-1] == "unreachable"
    assert "ok" in llm["bar"]
    events = [e for e in body["events"] if e["component"] == "llm"]
    assert [e["status"] for e in events] == ["unreachable", "ok"]  # newest first
    assert all(event["detail"] is None for event in body["events"])
    assert "10.9.8.7" not in answer.text


async def test_a_read_token_reads_the_details(
    hearth: Callable[..., Any], history_database: str
) -> None:
    token = insert_token(history_database, ("read",))
    async with hearth() as client:
        answer = await client.get("/health/history", headers=bearer(token))
        metrics_only = insert_token(history_database, ("metrics",))
        withheld = await client.get("/health/history", headers=bearer(metrics_only))
    body = answer.json()
    assert body["components"]["llm"]["detail"] == SECRET_DETAIL
    assert SECRET_DETAIL in [e["detail"] for e in body["events"]]
    assert withheld.status_code == 200
    assert "10.9.8.7" not in withheld.text


@pytest.mark.parametrize(
    "query",
    [
        "days=0",
        "days=-1",
        "days=3651",
        "days=abc",
        "limit=0",
        "limit=501",
        "limit=1e3",
        "days=99999999999999999999999",
    ],
)
async def test_bad_input_is_a_clear_422(hearth: Callable[..., Any], query: str) -> None:
    async with hearth() as client:
        answer = await client.get(f"/health/history?{query}")
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "invalid_input"
    assert query.split("=", maxsplit=1)[0] in answer.json()["detail"]


async def test_limit_and_days_bound_the_listed_changes(hearth: Callable[..., Any]) -> None:
    async with hearth() as client:
        one = (await client.get("/health/history?limit=1")).json()
        today = (await client.get("/health/history?days=1&limit=500")).json()
    assert len(one["events"]) == 1
    llm_today = [e for e in today["events"] if e["component"] == "llm"]
    assert [e["status"] for e in llm_today] == ["unreachable", "ok"]


async def test_the_status_page_loads_the_history_for_anonymous_callers(
    hearth: Callable[..., Any],
) -> None:
    async with hearth() as client:
        page = await client.get("/status", headers={"Accept": "text/html"})
        fragment = await client.get("/status/history", headers=HTMX)
    assert 'hx-get="/status/history"' in page.text
    assert fragment.status_code == 200, fragment.text
    html = fragment.text
    row = re.search(r'<tr id="history-llm">.*?</tr>', html, re.DOTALL)
    assert row is not None, html
    llm = row.group(0)
    assert re.search(r'<time datetime="[0-9T:.+-]+" title="[^"]+ UTC">2 h ago</time>', llm)
    assert llm.count('class="slot ') == 90
    assert 'class="slot none" role="img" aria-label="' in llm
    assert re.search(r'title="\d\d:\d\d to \d\d:\d\d UTC: unreachable"', llm)
    assert re.search(r">\d\d\.\d\d %<", llm)
    assert "10.9.8.7" not in html
    assert "style=" not in html  # the CSP allows no inline style
    assert "<script" not in html


async def test_the_operator_sees_the_details_in_the_section(hearth: Callable[..., Any]) -> None:
    async with hearth() as client:
        csrf = (await client.get("/login")).json()["csrf_token"]
        login = await client.post(
            "/login",
            json={"password": "history-operator-password"},
            headers={"X-CSRF-Token": csrf},
        )
        assert login.status_code == 200, login.text
        fragment = await client.get("/status/history", headers=HTMX)
    assert SECRET_DETAIL in fragment.text


async def test_the_app_records_its_components_with_no_one_probing(
    make_settings: Callable[..., Settings],
) -> None:
    url = await create_migrated_database()
    try:
        settings = make_settings(
            database_url=url, llm_endpoint="http://127.0.0.1:9/v1", health_monitor_seconds=1
        )
        async with served(create_app(settings)):
            recorded: set[str] = set()
            for _ in range(300):  # no request is made: the monitor checks on its own
                with psycopg.connect(url) as connection:
                    recorded = {
                        c for (c,) in connection.execute("SELECT component FROM health_events")
                    }
                if {"db", "redis", "llm", "worker", "mail"} <= recorded:
                    break
                await asyncio.sleep(0.05)
        assert {"db", "redis", "llm", "worker", "mail"} <= recorded
    finally:
        drop_database(url)
