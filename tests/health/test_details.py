"""Health details when authorized (Spring Boot Actuator's ``show-details``): anonymous
callers get statuses and latencies; the details (versions, hosts, URLs, error text) need
the operator or a ``read`` token, unless ``HEALTH_DETAILS`` says ``always`` or ``never``.

Redis and the LLM sit on closed ports of loopback addresses no other test uses, and
/readyz asks a database on a third, so every detail names a host this test can look for.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from hearth.app.factory import create_app
from hearth.config.settings import Settings
from hearth.db.engine import DatabaseAdapter, create_engine
from hearth.health.dependencies import get_readiness
from hearth.health.readiness import Readiness
from hearth.health.service import HealthService
from tests.support.app import ClientFor, served
from tests.support.database import drop_database
from tests.support.services import free_port
from tests.support.tokens import bearer, insert_token

PASSWORD = "operator-password-for-health-details"
REDIS_HOST, LLM_HOST, DB_HOST = "127.0.0.77", "127.0.0.78", "127.0.0.79"
# What no anonymous answer may hold: the hosts, the secrets in the URLs, the error text.
LEAKS = (REDIS_HOST, LLM_HOST, DB_HOST, "leaky-llm-path", "redis-leak-pw", "db-leak-pw")
HTML = {"Accept": "text/html"}


@asynccontextmanager
async def broken_hearth(
    make_settings: Callable[..., Settings], **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """Hearth whose Redis and LLM are down, and whose /readyz asks a database that is down
    too (its own keeps serving the rest, so the app starts)."""
    settings = make_settings(
        admin_password=PASSWORD,
        redis_url=f"redis://:redis-leak-pw@{REDIS_HOST}:{free_port()}/0",
        llm_endpoint=f"http://{LLM_HOST}:{free_port()}/leaky-llm-path",
        **overrides,
    )
    app = create_app(settings)
    dead = create_engine(f"postgresql+psycopg://hearth:db-leak-pw@{DB_HOST}:{free_port()}/h")
    checks = HealthService(version="test", cache_seconds=0)
    checks.register("db", DatabaseAdapter(dead).check, critical=True, timeout=2)
    readiness = Readiness(checks, dead)
    app.dependency_overrides[get_readiness] = lambda: readiness
    try:
        async with served(app) as client:
            yield client
    finally:
        await dead.dispose()


async def log_in(client: httpx.AsyncClient) -> None:
    token = (await client.get("/login")).json()["csrf_token"]
    login = await client.post(
        "/login", json={"password": PASSWORD}, headers={"X-CSRF-Token": token}
    )
    assert login.status_code == 200, login.text


async def every_surface(client: httpx.AsyncClient) -> dict[str, httpx.Response]:
    """Each place a check's state is shown: the JSON probes, the pages, the htmx fragment,
    and the banner (drawn on every page; the login page has no health table of its own)."""
    return {
        "health": await client.get("/health"),
        "healthz": await client.get("/healthz"),
        "readyz": await client.get("/readyz"),
        "livez": await client.get("/livez"),
        "status": await client.get("/status", headers=HTML),
        "fragment": await client.get("/health/fragment", headers={"HX-Request": "true"}),
        "dashboard": await client.get("/", headers=HTML),
        "login": await client.get("/login", headers=HTML),
    }


def assert_probes_unchanged(answers: dict[str, httpx.Response]) -> None:
    """Statuses and status codes do not depend on who asks."""
    assert answers["health"].status_code == 200
    assert answers["health"].json()["status"] == "degraded"
    assert answers["healthz"].status_code == 200
    assert answers["healthz"].json()["redis"] == "unreachable"
    assert answers["readyz"].status_code == 503
    assert answers["readyz"].json()["status"] == "not_ready"
    assert (answers["livez"].status_code, answers["livez"].json()) == (200, {"status": "ok"})
    for page in ("status", "fragment", "dashboard", "login"):
        assert answers[page].status_code == 200, page


def assert_withheld(answers: dict[str, httpx.Response], *, shown_elsewhere: list[str]) -> None:
    """No detail in any answer: not in the JSON, not on a page, not in the banner."""
    checks = answers["health"].json()["checks"]
    assert checks["redis"]["status"] == "unreachable"
    assert checks["llm"]["status"] == "unreachable"
    assert all(check["detail"] is None for check in checks.values()), checks
    assert checks["redis"]["latency_ms"] > 0  # latencies stay public
    ready = answers["readyz"].json()
    assert ready["reason"] == "db: unreachable"
    assert ready["checks"]["db"] == {
        "status": "unreachable",
        "detail": None,
        "latency_ms": ready["checks"]["db"]["latency_ms"],
    }
    for name, answer in answers.items():
        for leak in (*LEAKS, *shown_elsewhere, *map(html.escape, shown_elsewhere)):
            assert leak not in answer.text, f"{leak!r} reached the {name} answer"
    for page in ("status", "fragment"):
        assert 'class="detail"' not in answers[page].text
    assert "AI features unavailable — LLM unreachable" in answers["dashboard"].text


async def test_anonymous_callers_get_statuses_and_latencies_and_the_operator_details(
    make_settings: Callable[..., Settings],
) -> None:
    async with broken_hearth(make_settings) as client:
        anonymous = await every_surface(client)
        await log_in(client)
        operator = await every_surface(client)

    assert_probes_unchanged(anonymous)
    assert_probes_unchanged(operator)

    # The operator reads what went wrong, and where.
    checks = operator["health"].json()["checks"]
    assert REDIS_HOST in checks["redis"]["detail"]
    assert LLM_HOST in checks["llm"]["detail"]
    assert operator["readyz"].json()["reason"].startswith("db: ")
    assert DB_HOST in operator["readyz"].json()["reason"]
    assert DB_HOST in operator["readyz"].json()["checks"]["db"]["detail"]
    for page in ("status", "fragment"):
        assert REDIS_HOST in operator[page].text
        assert "Log in to see details" not in operator[page].text
    assert LLM_HOST in operator["dashboard"].text  # the banner says why
    assert "redis-leak-pw" not in operator["health"].text  # details never hold a secret

    # Nobody else reads any of it: neither the hosts nor the error text the operator saw.
    details = [c["detail"] for c in checks.values() if c["status"] == "unreachable"]
    details.append(operator["readyz"].json()["reason"])
    assert_withheld(anonymous, shown_elsewhere=details)
    # The pages say how to see the details, and come back to where they were.
    assert 'href="/login?next=/status">Log in to see details</a>' in anonymous["status"].text
    assert 'href="/login?next=/">Log in to see details</a>' in anonymous["fragment"].text
    assert 'href="/login?next=/">Log in to see details</a>' in anonymous["dashboard"].text
    assert "Log in to see details" not in anonymous["login"].text


async def test_never_withholds_the_details_from_the_operator_too(
    make_settings: Callable[..., Settings],
) -> None:
    async with broken_hearth(make_settings, health_details="never") as client:
        anonymous = await every_surface(client)
        await log_in(client)
        operator = await every_surface(client)
    for answers in (anonymous, operator):
        assert_probes_unchanged(answers)
        assert_withheld(answers, shown_elsewhere=[])
        assert "Details are turned off" in answers["status"].text
        assert "Log in to see details" not in answers["status"].text + answers["dashboard"].text


async def test_always_shows_the_details_to_anyone(
    make_settings: Callable[..., Settings],
) -> None:
    async with broken_hearth(make_settings, health_details="always") as client:
        anonymous = await every_surface(client)
    assert_probes_unchanged(anonymous)
    assert REDIS_HOST in anonymous["health"].json()["checks"]["redis"]["detail"]
    assert DB_HOST in anonymous["readyz"].json()["reason"]
    assert REDIS_HOST in anonymous["status"].text
    assert REDIS_HOST in anonymous["fragment"].text
    assert LLM_HOST in anonymous["dashboard"].text
    assert "Log in to see details" not in anonymous["status"].text


async def test_a_read_token_reads_the_details_and_a_metrics_token_does_not(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    reader = insert_token(database_url, ("read",))
    scraper = insert_token(database_url, ("metrics",))
    async with broken_hearth(make_settings) as client:
        read = await client.get("/health", headers=bearer(reader))
        metrics = await client.get("/health", headers=bearer(scraper))
        refused = await client.get("/health", headers=bearer("hth_" + "x" * 43))
    assert REDIS_HOST in read.json()["checks"]["redis"]["detail"]
    for answer in (metrics, refused):  # a token that cannot read is anonymous here, not a 401
        assert answer.status_code == 200
        assert answer.json()["checks"]["redis"]["detail"] is None


async def test_a_token_with_the_database_down_gets_the_probes_not_an_error(
    client_for: ClientFor, fresh_database: str
) -> None:
    """The token cannot be checked without the database: /health and /readyz still answer
    as they do to anyone (200 and 503), never a 500 nor the token route's 503."""
    async with client_for(database_url=fresh_database) as client:
        token = insert_token(fresh_database, ("read",))
        drop_database(fresh_database)
        health = await client.get("/health", headers=bearer(token))
        ready = await client.get("/readyz", headers=bearer(token))
    assert health.status_code == 200
    assert health.json()["checks"]["db"]["status"] != "ok"
    assert health.json()["checks"]["db"]["detail"] is None
    assert ready.status_code == 503


@pytest.mark.parametrize(("given", "policy"), [("ALWAYS", "always"), (" never ", "never")])
def test_the_setting_reads_any_case(
    make_settings: Callable[..., Settings], given: str, policy: str
) -> None:
    assert make_settings(health_details=given).health_details == policy
    assert make_settings().health_details == "when_authorized"


def test_the_openapi_schema_says_a_detail_may_be_withheld(
    make_settings: Callable[..., Settings],
) -> None:
    schemas = create_app(make_settings()).openapi()["components"]["schemas"]
    detail = schemas["ComponentHealth"]["properties"]["detail"]
    assert {"type": "null"} in detail["anyOf"]
    assert "HEALTH_DETAILS" in detail["description"]
    for report in ("HealthReport", "ReadinessReport"):
        checks = schemas[report]["properties"]["checks"]
        assert checks["additionalProperties"] == {"$ref": "#/components/schemas/ComponentHealth"}
