"""The HTTP contract of the probes and of errors, through the real app and its lifespan."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hearth.app.factory import create_app
from hearth.config.settings import Settings
from hearth.errors import StartupError
from hearth.version import hearth_version
from tests.support.app import ClientFor, served
from tests.support.fake_llm import fake_ollama
from tests.support.process import TEST_SECRET_KEY, clean_environment
from tests.support.services import counting_listener, free_port


async def test_health_reports_every_component(client_for: ClientFor, fresh_database: str) -> None:
    with fake_ollama() as ollama:
        # A database of its own: no worker has ever reported there.
        async with client_for(llm_endpoint=ollama.url, database_url=fresh_database) as client:
            response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == hearth_version()
    assert set(body["checks"]) == {"db", "redis", "llm", "worker", "mail"}
    for name in ("db", "redis", "llm"):
        assert body["checks"][name]["status"] == "ok"
    for result in body["checks"].values():
        assert set(result) == {"status", "detail", "latency_ms"}
    # No `hearth worker` runs in this test: an optional component down means degraded.
    assert body["checks"]["worker"]["status"] == "unreachable"
    assert body["status"] == "degraded"


async def test_healthz_is_flat(client_for: ClientFor, fresh_database: str) -> None:
    async with client_for(database_url=fresh_database) as client:  # no worker reports there
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "degraded",
        "db": "ok",
        "redis": "ok",
        "llm": "unconfigured",
        "worker": "unreachable",
        "mail": "unconfigured",
    }


async def test_optional_components_down_degrade_but_stay_ready(client_for: ClientFor) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    dead_llm = f"http://127.0.0.1:{free_port()}"
    async with client_for(redis_url=dead_redis, llm_endpoint=dead_llm) as client:
        health = await client.get("/health")
        healthz = await client.get("/healthz")
        ready = await client.get("/readyz")
        live = await client.get("/livez")
    assert health.status_code == 200
    assert health.json()["status"] == "degraded"
    assert health.json()["checks"]["redis"]["status"] == "unreachable"
    assert health.json()["checks"]["llm"]["status"] == "unreachable"
    assert healthz.status_code == 200
    assert healthz.json()["status"] == "degraded"
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert live.json() == {"status": "ok"}


async def test_readyz_waits_for_migrations_run_elsewhere(
    make_settings: Callable[..., Settings], fresh_database: str
) -> None:
    """With MIGRATE_ON_START=false, /readyz is 503 until someone runs `hearth migrate`."""
    from hearth.db.engine import create_engine
    from hearth.db.migrate import upgrade_to_head
    from hearth.kit.urls import normalize_database_url

    settings = make_settings(database_url=fresh_database, migrate_on_start=False)
    async with served(create_app(settings)) as client:
        before = await client.get("/readyz")
        engine = create_engine(normalize_database_url(fresh_database))
        await upgrade_to_head(engine)
        await engine.dispose()
        after = await client.get("/readyz")
    assert before.status_code == 503
    assert "migrations are pending" in before.json()["reason"]
    assert after.status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("GET", "/no/such/page", 404, "not_found"),
        ("POST", "/health", 405, "method_not_allowed"),
        ("DELETE", "/readyz", 405, "method_not_allowed"),
    ],
)
async def test_api_errors_are_json(
    client_for: ClientFor, method: str, path: str, status: int, error: str
) -> None:
    async with client_for() as client:
        response = await client.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == error
    assert body["detail"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    if status == 405:
        assert "GET" in response.headers["Allow"]


async def test_validation_errors_are_json_without_the_input(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings())

    @app.get("/test/items/{item_id}")
    async def item(item_id: int, password: int) -> dict[str, int]:
        return {"item_id": item_id}

    async with served(app) as client:
        response = await client.get("/test/items/abc", params={"password": "typed-by-mistake"})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_input"
    assert {e["field"] for e in body["errors"]} == {"path.item_id", "query.password"}
    assert "typed-by-mistake" not in response.text


async def test_unexpected_errors_are_a_json_500_without_traceback(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings())

    @app.get("/test/explode")
    async def explode() -> None:
        raise RuntimeError("internal detail that must stay in the logs")

    async with served(app) as client:
        response = await client.get("/test/explode")
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal_error",
        "detail": "Internal server error",
        "request_id": response.headers["X-Request-ID"],
    }
    assert "Traceback" not in response.text
    assert "internal detail" not in response.text


async def test_browsers_get_error_pages_in_the_site_frame(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings())

    @app.get("/test/explode-page")
    async def explode() -> None:
        raise RuntimeError("internal detail that must stay in the logs")

    html = {"Accept": "text/html"}
    async with served(app) as client:
        missing = await client.get("/no/such/page", headers=html)
        broken = await client.get("/test/explode-page", headers=html)
    assert missing.status_code == 404
    assert "Page not found" in missing.text
    assert '<nav aria-label="Main">' in missing.text
    assert broken.status_code == 500
    assert "Something went wrong" in broken.text
    assert '<nav aria-label="Main">' in broken.text
    assert "internal detail" not in broken.text
    assert "Traceback" not in broken.text


_IMPORT_AND_CREATE = """
import sys
from hearth.config.settings import Settings
from hearth.errors import StartupError
from hearth.app.factory import create_app
database, redis, llm = sys.argv[1:]
create_app(Settings(
    _env_file=None,
    secret_key="k" * 32,
    database_url=f"postgresql://nobody@127.0.0.1:{database}/none",
    redis_url=f"redis://127.0.0.1:{redis}/0",
    llm_endpoint=f"http://127.0.0.1:{llm}",
))
"""


async def test_nothing_connects_at_import_or_creation(tmp_path: Path) -> None:
    """Importing the app and create_app() open no connection: the database, Redis and the LLM
    are reached only inside the lifespan. Whoever listens on their ports hears nothing."""
    with counting_listener() as database, counting_listener() as redis, counting_listener() as llm:
        ports = [str(listener.port) for listener in (database, redis, llm)]
        # A fresh interpreter: this one imported the app long ago.
        subprocess.run(
            [sys.executable, "-c", _IMPORT_AND_CREATE, *ports],
            env=clean_environment(),
            cwd=tmp_path,
            check=True,
            capture_output=True,
            timeout=60,
        )
        assert (database.accepted, redis.accepted, llm.accepted) == ([], [], [])

        # The same listeners do hear the lifespan: starting up connects to the database.
        settings = Settings(
            _env_file=None,
            secret_key=TEST_SECRET_KEY,
            database_url=f"postgresql://nobody@127.0.0.1:{database.port}/none",
            db_connect_attempts=1,
        )
        app = create_app(settings)
        assert database.accepted == []
        with pytest.raises(StartupError):
            async with app.router.lifespan_context(app):
                pass
        assert database.accepted


async def test_openapi_lists_the_probes(client_for: ClientFor) -> None:
    async with client_for() as client:
        schema = (await client.get("/openapi.json")).json()
    assert {"/health", "/healthz", "/livez", "/readyz"} <= set(schema["paths"])
