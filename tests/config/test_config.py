"""Runtime settings on real PostgreSQL: the allowlist, precedence, atomic saves, and the
config API with its bad inputs."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from hearth.app.factory import create_app
from hearth.config import repository
from hearth.config.allowlist import ALLOWLIST, InvalidValue, RuntimeKey
from hearth.config.service import ConfigService, InvalidSettings
from hearth.config.settings import Settings
from hearth.log import configure_logging
from hearth.log.redaction import SENSITIVE_KEY
from hearth.models import Setting
from tests.support.app import served, served_to_operator
from tests.support.fake_llm import black_hole, fake_ollama
from tests.support.services import free_port

PASSWORD = "operator-password-for-tests"


# --- allowlist and repository ----------------------------------------------------------


def test_the_allowlist_holds_the_agreed_keys_and_no_secret() -> None:
    assert set(ALLOWLIST) >= {
        "llm_provider",
        "llm_endpoint",
        "llm_model",
        "embedding_model",
        "event_date",
    }
    assert not [name for name in ALLOWLIST if SENSITIVE_KEY.search(name)]
    with pytest.raises(ValueError, match="looks like a secret"):
        RuntimeKey(name="llm_api_key", label="x", description="x", kind="text")


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("llm_provider", "anthropic", "must be one of: ollama, openai"),
        ("llm_endpoint", "ftp://host", "must be an http:// or https:// URL"),
        ("llm_endpoint", "http://user:pw@host:11434", "must not contain a user name or password"),
        ("llm_endpoint", "http://[::1", "is not a valid URL"),
        ("llm_model", "llama 3; rm -rf", "may hold letters, digits"),
        ("event_date", "2026-02-30", "must be a date written YYYY-MM-DD"),
        ("embedding_model", "x" * 300, "is 300 characters long; at most 255"),
        ("llm_endpoint", "http://ollama:11434/\x00", "NUL character"),
        ("llm_model", "llama\x00", "NUL character"),
    ],
)
def test_ill_typed_values_are_refused_with_a_reason(key: str, value: str, reason: str) -> None:
    with pytest.raises(InvalidValue, match=reason):
        ALLOWLIST[key].validate(value)


def test_values_are_normalised() -> None:
    assert ALLOWLIST["llm_endpoint"].validate(" http://ollama:11434/ ") == "http://ollama:11434"
    assert ALLOWLIST["event_date"].validate("2026-12-24") == "2026-12-24"
    assert ALLOWLIST["event_date"].validate("") == ""


async def test_repository_upserts_one_row_per_key(db_session: AsyncSession) -> None:
    await repository.upsert(db_session, "llm_model", "a")
    await repository.upsert(db_session, "llm_model", "b")
    await repository.upsert(db_session, "event_date", "2026-12-24")
    assert await repository.get_all(db_session) == {"llm_model": "b", "event_date": "2026-12-24"}
    rows = (await db_session.execute(sa.select(sa.func.count()).select_from(Setting))).scalar()
    assert rows == 2


async def test_repository_refuses_secret_like_keys(db_session: AsyncSession) -> None:
    with pytest.raises(ValueError, match="never stored"):
        await repository.upsert(db_session, "smtp_password", "hunter2")


# --- precedence ------------------------------------------------------------------------


def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, secret_key="s" * 40, **values)


async def test_precedence_environment_then_database_then_default(db_session: AsyncSession) -> None:
    service = ConfigService(_settings(llm_model="from-env"))
    await repository.upsert(db_session, "llm_model", "from-db")
    await repository.upsert(db_session, "embedding_model", "db-embedder")
    values = await service.values_in_force(db_session)
    assert (values["llm_model"].value, values["llm_model"].source) == ("from-env", "environment")
    assert values["llm_model"].locked
    assert (values["embedding_model"].value, values["embedding_model"].source) == (
        "db-embedder",
        "database",
    )
    assert (values["llm_provider"].value, values["llm_provider"].source) == ("ollama", "default")


def test_ollama_base_url_locks_llm_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_BASE_URL", "http://ollama:11434")
    service = ConfigService(_settings())
    [endpoint] = [v for k, v in service.values_without_database().items() if k == "llm_endpoint"]
    assert (endpoint.value, endpoint.source) == ("http://ollama:11434", "environment")
    assert endpoint.set_by == "OLLAMA_BASE_URL"  # the variable the operator must go and change


async def test_save_validates_everything_before_writing_anything(db_session: AsyncSession) -> None:
    service = ConfigService(_settings())
    with pytest.raises(InvalidSettings) as refused:
        await service.save(db_session, {"llm_model": "fine", "event_date": "soon", "colour": "red"})
    assert set(refused.value.field_errors) == {"event_date", "colour"}
    assert "is not a runtime setting" in refused.value.field_errors["colour"]
    assert await repository.get_all(db_session) == {}


async def test_save_refuses_keys_locked_by_the_environment(db_session: AsyncSession) -> None:
    service = ConfigService(_settings(llm_model="pinned"))
    with pytest.raises(InvalidSettings, match="set by LLM_MODEL in the environment"):
        await service.save(db_session, {"llm_model": "other"})
    # Submitting the locked value unchanged is fine: a form posts every field.
    assert await service.save(db_session, {"llm_model": "pinned"}) == {}


async def test_save_stores_only_what_the_operator_changed(db_session: AsyncSession) -> None:
    service = ConfigService(_settings())
    await repository.upsert(db_session, "llm_model", "changed-in-another-tab")
    seen = {"llm_model": "llama3.2", "event_date": ""}
    changes = await service.save(
        db_session, {"llm_model": "llama3.2", "event_date": "2026-12-24"}, seen=seen
    )
    assert changes == {"event_date": "2026-12-24"}
    stored = await repository.get_all(db_session)
    assert stored["llm_model"] == "changed-in-another-tab"  # not undone by a stale form


# --- the HTTP API ----------------------------------------------------------------------


def operator_client(
    make_settings: Callable[..., Settings], **overrides: Any
) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    """The app, and a client logged in as the operator, sending its CSRF token."""
    overrides.setdefault("admin_password", PASSWORD)
    return served_to_operator(make_settings(**overrides))


@pytest.mark.usefixtures("clean_settings")
async def test_config_api_reads_and_saves(make_settings: Callable[..., Settings]) -> None:
    async with operator_client(make_settings, event_date="2026-12-24") as client:
        before = (await client.get("/config")).json()["settings"]
        assert before["llm_model"] == {
            "value": "llama3.2",
            "source": "default",
            "locked": False,
            "variable": "LLM_MODEL",
            "default": "llama3.2",
            "description": ALLOWLIST["llm_model"].description,
        }
        assert before["event_date"]["locked"] is True

        saved = await client.post(
            "/config", json={"llm_model": "qwen2.5:7b", "embedding_model": "bge-m3"}
        )
        assert saved.status_code == 200
        assert saved.json()["saved"] == ["embedding_model", "llm_model"]
        after = (await client.get("/config")).json()["settings"]
        assert (after["llm_model"]["value"], after["llm_model"]["source"]) == (
            "qwen2.5:7b",
            "database",
        )

        form = await client.post(
            "/config", data={"llm_model": "phi4", "csrf_token": client.headers["X-CSRF-Token"]}
        )
        assert form.status_code == 200
        assert form.json()["saved"] == ["llm_model"]


@pytest.mark.usefixtures("clean_settings")
@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"colour": "red"}, 422, "colour: is not a runtime setting"),
        ({"llm_provider": 3}, 422, "Expected a JSON object of text values"),
        ({"event_date": "next week"}, 422, "event_date: must be a date"),
        ({"llm_model": "m" * 10_000}, 422, "is 10000 characters long"),
        ({"event_date": "2026-01-01"}, 422, "set by EVENT_DATE in the environment"),
    ],
)
async def test_config_api_refuses_bad_input(
    make_settings: Callable[..., Settings], body: dict[str, Any], status: int, says: str
) -> None:
    async with operator_client(make_settings, event_date="2026-12-24") as client:
        response = await client.post("/config", json=body)
    assert response.status_code == status
    assert says in response.json()["detail"]


@pytest.mark.usefixtures("clean_settings")
async def test_config_api_refuses_malformed_bodies(make_settings: Callable[..., Settings]) -> None:
    async with operator_client(make_settings) as client:
        broken = await client.post(
            "/config", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        plain = await client.post(
            "/config", content=b"llm_model=x", headers={"Content-Type": "text/plain"}
        )
    assert broken.status_code == 400
    assert "not valid JSON" in broken.json()["detail"]
    assert plain.status_code == 415


async def test_config_needs_an_operator_session_and_csrf(
    make_settings: Callable[..., Settings],
) -> None:
    async with served(create_app(make_settings(admin_password=PASSWORD))) as client:
        anonymous_read = await client.get("/config")
        anonymous_write = await client.post("/config", json={"llm_model": "x"})
        anonymous_test = await client.post("/config/test/db")
        browser = await client.get("/config", headers={"Accept": "text/html"})
        htmx = await client.post("/config/test/db", headers={"HX-Request": "true"})
    assert anonymous_read.status_code == 401
    assert anonymous_write.status_code == 401
    assert anonymous_test.status_code == 401
    assert browser.status_code == 303
    assert browser.headers["location"] == "/login?next=/config"
    assert htmx.status_code == 401
    assert htmx.headers["HX-Redirect"] == "/login?next=/config/test/db"

    async with operator_client(make_settings) as client:
        del client.headers["X-CSRF-Token"]
        no_token = await client.post("/config", json={"llm_model": "x"})
        wrong_token = await client.post(
            "/config", json={"llm_model": "x"}, headers={"X-CSRF-Token": "forged"}
        )
    assert no_token.status_code == 403
    assert "CSRF" in no_token.json()["detail"]
    assert wrong_token.status_code == 403


@pytest.mark.usefixtures("clean_settings")
async def test_without_admin_password_settings_are_read_only(
    make_settings: Callable[..., Settings],
) -> None:
    async with served(create_app(make_settings(admin_password=None))) as client:
        token = (await client.get("/login")).json()["csrf_token"]
        login = await client.post(
            "/login", json={"password": "anything"}, headers={"X-CSRF-Token": token}
        )
        page = await client.get("/login", headers={"Accept": "text/html"})
    assert login.status_code == 403
    assert "ADMIN_PASSWORD" in login.json()["detail"]
    assert "No operator password is set" in page.text


@pytest.mark.usefixtures("clean_settings")
async def test_connection_tests_report_inline(make_settings: Callable[..., Settings]) -> None:
    with fake_ollama() as ollama:
        async with operator_client(make_settings) as client:
            db = await client.post("/config/test/db")
            unknown = await client.post("/config/test/nope")
            await client.post("/config", json={"llm_endpoint": ollama.url})
            llm = await client.post("/config/test/llm")
            fragment = await client.post("/config/test/llm", headers={"HX-Request": "true"})
    assert db.status_code == 200
    assert db.json()["service"] == "db"
    assert db.json()["status"] == "ok"
    assert unknown.status_code == 404
    assert "known: db, redis, llm, worker, mail" in unknown.json()["detail"]
    assert set(llm.json()) == {
        "service",
        "status",
        "detail",
        "latency_ms",
        "tested_at",
        "models",
        "notes",
        "unsaved",
    }
    assert (llm.json()["service"], llm.json()["status"]) == ("llm", "ok")
    assert "Ollama at" in llm.json()["detail"]
    assert llm.json()["models"] == ["llama3.2:1b"]
    assert llm.json()["unsaved"] is False
    assert '<span class="badge ok">' in fragment.text
    assert '<option value="llama3.2:1b">' in fragment.text  # offered to the model fields


@pytest.mark.usefixtures("clean_settings")
async def test_a_saved_endpoint_takes_effect_at_once(
    make_settings: Callable[..., Settings],
) -> None:
    """No restart: the llm check and the banner follow a new llm_endpoint immediately."""
    async with operator_client(make_settings) as client:
        assert (await client.get("/health")).json()["checks"]["llm"]["status"] == "unconfigured"
        await client.post("/config", json={"llm_endpoint": f"http://127.0.0.1:{free_port()}"})
        health = (await client.get("/health")).json()
        page = await client.get("/status", headers={"Accept": "text/html"})
    assert health["checks"]["llm"]["status"] == "unreachable"
    assert health["status"] == "degraded"
    assert "AI features unavailable — LLM unreachable" in page.text


@pytest.mark.usefixtures("clean_settings")
async def test_fifty_concurrent_saves_lose_nothing(
    make_settings: Callable[..., Settings], engine: AsyncEngine
) -> None:
    keys = ["llm_model", "embedding_model", "event_date", "llm_endpoint", "llm_provider"]

    def value(key: str, i: int) -> str:
        return {
            "llm_model": f"model-{i}",
            "embedding_model": f"embed-{i}",
            "event_date": f"2026-01-{i % 28 + 1:02d}",
            "llm_endpoint": f"http://host-{i}:11434",
            "llm_provider": ("ollama", "openai")[i % 2],
        }[key]

    async with operator_client(make_settings) as client:
        spread = await asyncio.gather(
            *(client.post("/config", json={keys[i % 5]: value(keys[i % 5], i)}) for i in range(50))
        )
        one_key = await asyncio.gather(
            *(client.post("/config", json={"llm_model": f"same-{i}"}) for i in range(50))
        )
    assert [r.status_code for r in spread + one_key] == [200] * 100
    async with engine.connect() as connection:
        rows = (await connection.execute(sa.select(Setting.key, Setting.value))).all()
    stored = dict(rows)
    assert len(rows) == len(stored) == 5  # one row per key, never a duplicate
    assert stored["llm_model"] in {f"same-{i}" for i in range(50)}
    for key in keys[1:]:
        assert stored[key] in {value(key, i) for i in range(50) if keys[i % 5] == key}


@pytest.mark.usefixtures("clean_settings")
async def test_a_silent_llm_cannot_hold_a_connection_test(
    make_settings: Callable[..., Settings],
) -> None:
    with black_hole() as address:
        async with operator_client(make_settings) as client:
            await client.post("/config", json={"llm_endpoint": f"http://{address}"})
            response = await client.post("/config/test/llm")
    assert response.status_code == 200
    assert response.json()["status"] == "unreachable"
    assert "within 5 s" in response.json()["detail"]  # an explicit test's own budget


@pytest.mark.usefixtures("clean_settings")
async def test_saves_and_tests_are_logged_without_values_of_secrets(
    make_settings: Callable[..., Settings],
) -> None:
    buffer = io.StringIO()
    configure_logging(level="INFO", fmt="json", stream=buffer, secrets=[PASSWORD])
    try:
        async with operator_client(make_settings) as client:
            await client.post("/config", json={"llm_model": "phi4", "event_date": "2026-12-24"})
            await client.post("/config/test/redis")
    finally:
        configure_logging(level="WARNING", fmt="json")
    lines = {line["event"]: line for line in map(json.loads, buffer.getvalue().splitlines())}
    assert lines["config_saved"]["changed"] == ["event_date", "llm_model"]
    assert lines["connection_test_started"]["service"] == "redis"
    assert lines["connection_test_result"]["status"] == "ok"
    assert PASSWORD not in buffer.getvalue()


async def test_config_routes_are_in_the_openapi_schema(client_for: Callable[..., Any]) -> None:
    async with client_for() as client:
        paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"get", "post"} <= set(paths["/config"])
    assert "post" in paths["/config/test/{service}"]
    assert {"get", "post"} <= set(paths["/login"])
    assert "requestBody" in paths["/config"]["post"]
