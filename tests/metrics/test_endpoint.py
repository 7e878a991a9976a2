"""GET /metrics on the real app and database: who may read it, what its labels hold, the
formats it speaks, and that a source that is down leaves the rest of the answer standing."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable

import psycopg
import pytest
from kombu.connection import Connection

from hearth.app.factory import create_app
from hearth.config.settings import Settings
from hearth.kit.urls import libpq_url, normalize_database_url
from hearth.worker.app import EMBEDDED_TRANSPORT
from tests.support.app import ClientFor, served
from tests.support.prometheus import samples
from tests.support.services import free_port
from tests.support.tokens import bearer, insert_token

PASSWORD = "operator-password-for-the-metrics-tests"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@pytest.fixture
def metrics_token(database_url: str) -> str:
    return insert_token(database_url, ("metrics",))


async def test_only_a_metrics_token_or_the_operator_reads_it(
    client_for: ClientFor, database_url: str, metrics_token: str
) -> None:
    read_token = insert_token(database_url, ("read", "write"))
    async with client_for(admin_password=PASSWORD) as client:
        anonymous = await client.get("/metrics")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        refused = await client.get("/metrics", headers=bearer(read_token))
        assert refused.status_code == 403
        assert "'metrics' scope" in refused.json()["detail"]
        allowed = await client.get("/metrics", headers=bearer(metrics_token))
        assert allowed.status_code == 200
        assert allowed.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert allowed.headers["cache-control"] == "no-store"
        csrf = {"X-CSRF-Token": (await client.get("/login")).json()["csrf_token"]}
        login = await client.post("/login", json={"password": PASSWORD}, headers=csrf)
        assert login.status_code == 200
        assert (await client.get("/metrics")).status_code == 200


async def test_routes_are_counted_by_template_never_by_what_was_asked(
    client_for: ClientFor, database_url: str, metrics_token: str
) -> None:
    reader = insert_token(database_url, ("read",))
    secret = "s3cr3t-in-the-query"
    async with client_for() as client:
        assert (await client.get("/documents/987654", headers=bearer(reader))).status_code == 404
        await client.get(f"/no/such/page-4242?token={secret}")
        await client.get("/static/htmx.min.js")
        await client.request("BREW", "/health")
        await client.get("/health")
        body = (await client.get("/metrics", headers=bearer(metrics_token))).text
    requests = samples(body, "hearth_http_requests_total")
    routes = {labels["route"] for labels, _ in requests}
    assert "/documents/{document_id}" in routes
    assert "(unmatched)" in routes
    assert "/static" in routes
    assert "/health" in routes
    assert all(route.startswith("/") or route == "(unmatched)" for route in routes), routes
    for leaked in ("987654", "4242", secret, "htmx", metrics_token, reader, "BREW"):
        assert leaked not in body
    found = {
        (labels["method"], labels["route"], labels["status"]): value for labels, value in requests
    }
    assert found[("GET", "/documents/{document_id}", "404")] == 1
    assert found[("GET", "(unmatched)", "404")] == 1
    assert found[("OTHER", "/health", "405")] == 1
    durations = samples(body, "hearth_http_request_duration_seconds_count")
    assert {"method": "GET", "route": "/documents/{document_id}"} in [
        labels for labels, _ in durations
    ]


async def test_the_scrape_reports_components_documents_queues_and_build(
    client_for: ClientFor, metrics_token: str, queue_redis: str
) -> None:
    async with client_for(redis_url=queue_redis) as client:
        body = (await client.get("/metrics", headers=bearer(metrics_token))).text
    up = {labels["component"]: value for labels, value in samples(body, "hearth_component_up")}
    assert up["db"] == 1
    assert up["redis"] == 1
    assert "llm" not in up  # unconfigured: absent, not down
    assert "mail" not in up
    changed = samples(body, "hearth_component_last_change_timestamp_seconds")
    assert all(value > 1.7e9 for _, value in changed)
    queues = {labels["queue"]: value for labels, value in samples(body, "hearth_queue_depth")}
    assert queues == {"celery": 0, "embedding": 0}
    statuses = {labels["status"] for labels, _ in samples(body, "hearth_documents")}
    assert statuses == {"pending", "embedded"}
    assert samples(body, "hearth_workers_alive") == [({}, 0)]
    ((build, one),) = samples(body, "hearth_build_info")
    assert one == 1
    assert set(build) == {"version", "python"}
    errors = {labels["source"]: value for labels, value in samples(body, "hearth_scrape_errors")}
    assert errors == {"queues": 0, "documents": 0, "workers": 0}


async def test_openmetrics_when_the_client_asks(client_for: ClientFor, metrics_token: str) -> None:
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    async with client_for() as client:
        response = await client.get("/metrics", headers=bearer(metrics_token) | {"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(OPENMETRICS)
    assert response.text.endswith("# EOF\n")
    assert "# TYPE hearth_http_requests counter" in response.text


async def test_a_broker_that_is_down_leaves_the_rest_of_the_scrape(
    client_for: ClientFor, metrics_token: str
) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    async with client_for(redis_url=nowhere) as client:
        first = await client.get("/metrics", headers=bearer(metrics_token))
        second = await client.get("/metrics", headers=bearer(metrics_token))
    for response in (first, second):
        assert response.status_code == 200
        assert "hearth_queue_depth" not in response.text
        errors = {
            labels["source"]: value
            for labels, value in samples(response.text, "hearth_scrape_errors")
        }
        assert errors == {"queues": 1, "documents": 0, "workers": 0}
        up = {k["component"]: v for k, v in samples(response.text, "hearth_component_up")}
        assert up["redis"] == 0
        assert up["db"] == 1


async def test_with_metrics_disabled_nothing_is_served_or_counted(
    make_settings: Callable[..., Settings], metrics_token: str
) -> None:
    app = create_app(make_settings(metrics_enabled=False))
    assert app.state.metrics is None
    layers = [getattr(middleware.cls, "__name__", "") for middleware in app.user_middleware]
    assert "SecurityHeaders" in layers
    assert "MetricsMiddleware" not in layers
    async with served(app) as client:
        assert (await client.get("/metrics", headers=bearer(metrics_token))).status_code == 404
        assert (await client.get("/health")).status_code == 200
    assert not hasattr(app.state, "metrics_service")


async def test_promtool_accepts_the_exposition(
    client_for: ClientFor, metrics_token: str, queue_redis: str, promtool: str
) -> None:
    async with client_for(redis_url=queue_redis) as client:
        await client.get("/health")
        await client.get("/nowhere")
        body = (await client.get("/metrics", headers=bearer(metrics_token))).text
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert re.search(r"^hearth_http_requests_total\{", body, re.MULTILINE)


async def test_the_embedded_broker_queue_and_the_documents_are_counted_in_postgresql(
    client_for: ClientFor, fresh_database: str
) -> None:
    """Without Redis the queue is in PostgreSQL (hearth.worker.pg_transport): messages put
    there through kombu are counted per queue, a delivered and acknowledged one is not."""
    async with client_for(database_url=fresh_database, redis_url=None) as client:
        token = insert_token(fresh_database, ("metrics",))
        # kombu is untyped.
        url = libpq_url(normalize_database_url(fresh_database))
        with Connection(url, transport=EMBEDDED_TRANSPORT) as broker:  # type: ignore[no-untyped-call]
            waiting = broker.SimpleQueue("celery")
            for number in range(3):
                waiting.put({"n": number})
            waiting.get(timeout=5).ack()  # delivered and acknowledged: gone
            waiting.close()
            embedding = broker.SimpleQueue("embedding")
            embedding.put({"n": 0})
            embedding.close()
        with psycopg.connect(fresh_database, autocommit=True) as connection:
            connection.execute(
                "INSERT INTO documents (text, embedded_at) VALUES ('a', now()), ('b', NULL),"
                " ('c', NULL)"
            )
        body = (await client.get("/metrics", headers=bearer(token))).text
    queues = {labels["queue"]: value for labels, value in samples(body, "hearth_queue_depth")}
    assert queues == {"celery": 2, "embedding": 1}
    documents = {labels["status"]: value for labels, value in samples(body, "hearth_documents")}
    assert documents == {"pending": 2, "embedded": 1}
