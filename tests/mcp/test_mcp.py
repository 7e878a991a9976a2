"""The MCP endpoint of a real `hearth serve`, through the official MCP Python client over
streamable HTTP: the tools, their answers, the bearer token, and /mcp turned off."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from mcp import MCPError

from hearth.config.loader import load_settings
from hearth.errors import StartupError
from tests.support.database import create_database, drop_database
from tests.support.mcp import TOKEN, error_text, mcp_client, structured
from tests.support.postgres import OwnedPostgres
from tests.support.process import TEST_SECRET_KEY, HearthServer, clean_environment, hearth_server
from tests.support.services import REDIS_URL, free_port
from tests.support.tokens import bearer, insert_token
from tests.support.worker import hearth_worker

# The shared server runs on a database of this module's own and the suite's Redis.
FIXTURE_NEEDS = {"mcp_database": ("postgres",), "mcp_env": ("redis",)}

ADMIN_PASSWORD = "operator-password-for-mcp-tests"
LLM_API_KEY = "sk-llm-key-that-must-never-show"
EXPECTED_TOOLS = {"health", "list_settings", "run_ping", "add_document", "search_documents"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "curl", "version": "1"},
    },
}


@pytest.fixture(scope="module")
def mcp_database() -> Iterator[str]:
    """A database of this module's own (the server migrates it), so a stored setting
    cannot leak into other tests."""
    url = create_database("hearth_mcp")
    yield url
    drop_database(url)


@pytest.fixture(scope="module")
def mcp_env(mcp_database: str) -> dict[str, str]:
    return clean_environment(
        DATABASE_URL=mcp_database,
        REDIS_URL=REDIS_URL,
        MCP_TOKEN=TOKEN,
        ADMIN_PASSWORD=ADMIN_PASSWORD,
        LLM_API_KEY=LLM_API_KEY,
        LLM_MODEL="model-from-env",
        HEALTH_CACHE_SECONDS="0",
        # Tests store runtime values behind the running server, as another replica would.
        RUNTIME_VALUES_CACHE_SECONDS="0",
        WORKER_HEARTBEAT_SECONDS="1",
    )


@pytest.fixture(scope="module")
def server(
    mcp_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HearthServer]:
    """One `hearth serve` with MCP on, shared by the module's tests."""
    cwd = tmp_path_factory.mktemp("mcp")
    with hearth_server(mcp_env, cwd, free_port()) as running:
        running.wait_until("/readyz", 200)
        # For the HTTP API beside MCP (GET /documents/…, /tasks/…).
        api_token = insert_token(mcp_env["DATABASE_URL"], ("read", "write"), name="http-api")
        running.headers.update(bearer(api_token))
        yield running


async def test_the_tools_are_listed_with_descriptions(server: HearthServer) -> None:
    async with mcp_client(server) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == EXPECTED_TOOLS
    for tool in tools.values():
        assert tool.description
        assert tool.input_schema["type"] == "object"
        assert tool.output_schema is not None
    assert tools["health"].annotations is not None
    assert tools["health"].annotations.read_only_hint is True
    assert tools["run_ping"].input_schema["properties"]["wait_seconds"]["maximum"] == 30
    enabled = server.wait_for_event("mcp_enabled")
    assert enabled["path"] == "/mcp"
    assert set(enabled["tools"]) == EXPECTED_TOOLS


async def test_health_answers_what_get_health_does(server: HearthServer) -> None:
    async with mcp_client(server) as client:
        report = structured(await client.call_tool("health"))
    over_http = httpx.get(f"{server.url}/health", timeout=10).json()  # anonymously
    assert report["checks"]["db"]["status"] == "ok"
    assert report["checks"]["redis"]["status"] == "ok"
    assert set(report["checks"]) == {"db", "redis", "llm", "worker", "mail"}
    assert set(report["checks"]) == set(over_http["checks"])
    assert report["version"] == over_http["version"]
    assert report["status"] in ("ok", "degraded")
    # An MCP client holds a token: it reads the details that anonymous callers do not.
    assert report["checks"]["db"]["detail"].startswith("PostgreSQL ")
    assert over_http["checks"]["db"]["detail"] is None


async def test_health_details_never_holds_for_mcp_clients_too(
    mcp_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**mcp_env, "HEALTH_DETAILS": "never"}
    with hearth_server(env, tmp_path, free_port()) as running:
        running.wait_until("/readyz", 200)
        async with mcp_client(running) as client:
            report = structured(await client.call_tool("health"))
    assert report["checks"]["db"]["status"] == "ok"
    assert all(check["detail"] is None for check in report["checks"].values())


async def test_list_settings_shows_values_and_sources_and_no_secret(
    server: HearthServer, mcp_database: str
) -> None:
    with psycopg.connect(mcp_database, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO settings (key, value) VALUES ('embedding_model', 'model-from-db') "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
        )
    async with mcp_client(server) as client:
        result = await client.call_tool("list_settings")
    settings = structured(result)["settings"]
    assert settings["llm_model"]["value"] == "model-from-env"
    assert settings["llm_model"]["source"] == "environment"
    assert settings["llm_model"]["variable"] == "LLM_MODEL"
    assert settings["embedding_model"]["source"] == "database"
    assert settings["embedding_model"]["value"] == "model-from-db"
    assert settings["llm_provider"]["source"] == "default"
    whole_answer = result.model_dump_json()
    for secret in (TOKEN, TEST_SECRET_KEY, ADMIN_PASSWORD, LLM_API_KEY):
        assert secret not in whole_answer


async def test_a_secret_in_a_stored_endpoint_url_reaches_no_tool_answer(
    server: HearthServer, mcp_database: str
) -> None:
    """A value saved before llm_endpoint refused query strings: shown masked, or not at all."""
    secret = "S3CRET-in-a-stored-url"
    endpoint = f"http://127.0.0.1:{free_port()}/?token={secret}"
    with psycopg.connect(mcp_database, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO settings (key, value) VALUES ('llm_endpoint', %s) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            (endpoint,),
        )
    try:
        async with mcp_client(server) as client:
            settings = await client.call_tool("list_settings")
            health = await client.call_tool("health")
    finally:
        with psycopg.connect(mcp_database, autocommit=True) as connection:
            connection.execute("DELETE FROM settings WHERE key = 'llm_endpoint'")
    assert secret not in settings.model_dump_json() + health.model_dump_json()
    shown = structured(settings)["settings"]["llm_endpoint"]["value"]
    assert shown == endpoint.replace(secret, "***")
    assert structured(health)["checks"]["llm"]["status"] == "unreachable"


@pytest.mark.worker
async def test_run_ping_through_a_real_worker(
    server: HearthServer, mcp_env: dict[str, str], tmp_path: Path
) -> None:
    redis.Redis.from_url(REDIS_URL).flushdb()  # no task left over from another test
    async with mcp_client(server) as client:
        queued = structured(await client.call_tool("run_ping", {"wait_seconds": 0}))
        with hearth_worker(mcp_env, tmp_path):
            waited = structured(await client.call_tool("run_ping", {"wait_seconds": 20}))
            later = await _task_state(server, queued["id"], "SUCCESS")
        refused = await client.call_tool("run_ping", {"wait_seconds": 31})
    assert queued["state"] == "PENDING"  # sent before any worker ran: it waited in the queue
    assert later["result"]["pong"] is True
    assert waited["state"] == "SUCCESS"
    assert waited["result"]["pong"] is True
    assert waited["id"] != queued["id"]
    assert refused.is_error
    assert "wait_seconds" in error_text(refused)


async def test_add_document_stores_it_and_search_says_what_this_database_lacks(
    server: HearthServer,
) -> None:
    """The suite's PostgreSQL has no pgvector: documents are kept, search explains.

    Search with results, through MCP too, is in tests/documents/test_documents.py, on
    embedded PostgreSQL.
    """
    text = "The boiler is serviced each October."
    async with mcp_client(server) as client:
        added = await client.call_tool(
            "add_document", {"document": {"text": text, "metadata": {"room": "cellar"}}}
        )
        blank = await client.call_tool("add_document", {"document": {"text": "   "}})
        search = await client.call_tool("search_documents", {"query": "boiler", "k": 3})
    [document_id] = structured(added)["ids"]
    stored = server.get(f"/documents/{document_id}").json()
    assert stored["text"] == text
    assert stored["metadata"] == {"room": "cellar"}
    assert "blank" in error_text(blank)
    assert "pgvector" in error_text(search)


async def _task_state(server: HearthServer, task_id: str, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = server.get(f"/tasks/{task_id}").json()
        if body["state"] == state:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"task {task_id} never reached {state}: {body}")


@pytest.mark.parametrize(
    ("authorization", "reason", "challenge"),
    [
        (None, "no bearer token", 'Bearer realm="hearth"'),
        (f"Bearer {TOKEN}x", "wrong bearer token", 'Bearer realm="hearth", error="invalid_token"'),
        (f"Basic {TOKEN}", "no bearer token", 'Bearer realm="hearth"'),
        ("Bearer", "no bearer token", 'Bearer realm="hearth"'),
    ],
)
def test_a_missing_or_wrong_token_is_refused_with_401(
    server: HearthServer, authorization: str | None, reason: str, challenge: str
) -> None:
    headers = {"Accept": "application/json, text/event-stream"}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = httpx.post(f"{server.url}/mcp", json=INITIALIZE, headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == challenge
    body = response.json()
    assert body["error"] == "unauthorized"
    assert "MCP_TOKEN" in body["detail"]
    assert reason in body["detail"]
    assert TOKEN not in response.text


def test_a_get_asking_for_an_event_stream_gets_405(server: HearthServer) -> None:
    headers = {"Accept": "text/event-stream", "Authorization": f"Bearer {TOKEN}"}
    response = httpx.get(f"{server.url}/mcp", headers=headers, timeout=10)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST, DELETE"
    assert response.json()["error"] == "method_not_allowed"


async def test_the_official_client_with_a_wrong_token_gets_401(server: HearthServer) -> None:
    statuses: list[int] = []
    with pytest.raises(ExceptionGroup) as raised:
        async with mcp_client(server, token="wrong-token-0123456789", statuses=statuses):
            pass
    assert raised.group_contains(MCPError, depth=None)
    assert statuses  # the probe and the handshake: each refused
    assert set(statuses) == {401}
    refusals = server.events("mcp_unauthorized")
    assert refusals
    assert "wrong-token-0123456789" not in server.output.read_text()


def test_the_right_token_over_plain_http(server: HearthServer) -> None:
    # What the README's curl example does: no session, JSON in and out.
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call"}
    call["params"] = {"name": "health", "arguments": {}}
    response = httpx.post(f"{server.url}/mcp", json=call, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["structuredContent"]["checks"]["db"]["status"] == "ok"


async def test_a_write_token_reaches_mcp_beside_mcp_token(
    server: HearthServer, mcp_database: str
) -> None:
    write = insert_token(mcp_database, ("write",))
    read_only = insert_token(mcp_database, ("read", "metrics"), name="read-only-for-mcp")
    revoked = insert_token(mcp_database, ("write",), revoked_at=datetime.now(UTC))
    async with mcp_client(server, token=write) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
    headers = {"Accept": "application/json, text/event-stream"}
    answers = {
        token: httpx.post(
            f"{server.url}/mcp", json=INITIALIZE, headers={**headers, **bearer(token)}, timeout=10
        )
        for token in (read_only, revoked)
    }
    assert tools == EXPECTED_TOOLS
    assert answers[read_only].status_code == 403
    assert "lacks the 'write' scope" in answers[read_only].json()["detail"]
    assert answers[revoked].status_code == 401
    assert answers[revoked].headers["www-authenticate"] == (
        'Bearer realm="hearth", error="invalid_token"'
    )
    assert "was revoked" in answers[revoked].json()["detail"]
    assert write not in server.output.read_text()


async def test_without_mcp_token_a_write_token_starts_mcp_on_demand(
    mcp_database: str, tmp_path: Path
) -> None:
    """MCP_TOKEN unset: /mcp still takes API tokens; the MCP server is loaded only once one
    comes."""
    env = clean_environment(DATABASE_URL=mcp_database, REDIS_URL=REDIS_URL)
    with hearth_server(env, tmp_path, free_port()) as on_demand:
        on_demand.wait_until("/readyz", 200)
        waiting = on_demand.wait_for_event("mcp_on_demand")
        anonymous = httpx.post(f"{on_demand.url}/mcp", json=INITIALIZE, timeout=10)
        assert not on_demand.events("mcp_enabled")  # a refused request starts nothing
        token = insert_token(mcp_database, ("write",))
        async with mcp_client(on_demand, token=token) as client:
            report = structured(await client.call_tool("health"))
        enabled = on_demand.wait_for_event("mcp_enabled")
    assert waiting["level"] == "info"
    assert "MCP_TOKEN" in waiting["hint"]
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="hearth"'
    assert "write scope" in anonymous.json()["detail"]
    assert report["checks"]["db"]["status"] == "ok"
    assert set(enabled["tools"]) == EXPECTED_TOOLS


def test_without_mcp_token_the_mcp_sdk_is_not_even_imported(tmp_path: Path) -> None:
    # A process of its own: this test process has imported the MCP SDK already.
    script = textwrap.dedent(
        """
        import json, sys
        from hearth.config.settings import Settings
        from hearth.app.factory import create_app
        for token in (None, "x" * 16):
            create_app(Settings(_env_file=None, secret_key="k" * 32, mcp_token=token))
            loaded = {name.split(".")[0] for name in sys.modules} & {"mcp"}
            print(json.dumps(sorted(loaded)))
        """
    )
    env = clean_environment()
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    without, with_token = result.stdout.splitlines()
    assert json.loads(without) == []
    assert json.loads(with_token) == ["mcp"]


@pytest.mark.embedded_postgres
async def test_database_down_gives_tool_errors_not_a_crash(tmp_path: Path) -> None:
    postgres = OwnedPostgres(tmp_path / "pg", free_port()).init()
    postgres.start()
    # No Redis: the task queue lives in the same PostgreSQL, and goes down with it.
    env = clean_environment(DATABASE_URL=postgres.url, MCP_TOKEN=TOKEN, HEALTH_CACHE_SECONDS="0")
    try:
        with hearth_server(env, tmp_path, free_port()) as running:
            running.wait_until("/readyz", 200)
            postgres.stop()
            running.wait_until("/readyz", 503)
            async with mcp_client(running) as client:
                health = structured(await client.call_tool("health"))
                settings = await client.call_tool("list_settings")
                ping = await client.call_tool("run_ping", {"wait_seconds": 0})
            assert running.process.poll() is None
            assert running.get("/livez").status_code == 200
    finally:
        if postgres.running():
            postgres.stop()
    assert health["status"] == "down"
    assert health["checks"]["db"]["status"] == "unreachable"
    assert "The database is unavailable" in error_text(settings)
    assert "The task queue is unavailable" in error_text(ping)
    failures = {line["tool"] for line in running.events("mcp_tool_failed")}
    assert failures == {"list_settings", "run_ping"}


@pytest.mark.parametrize("token", ["short", "fifteen-chars-x"])
def test_a_short_mcp_token_stops_start_up_without_echoing_it(token: str) -> None:
    with pytest.raises(StartupError) as raised:
        load_settings(_env_file=None, secret_key=TEST_SECRET_KEY, mcp_token=token)
    message = raised.value.message
    assert f"MCP_TOKEN: is {len(token)} characters long; it needs at least 16" in message
    assert token not in message.replace("MCP_TOKEN", "")


def test_the_mcp_token_is_a_secret() -> None:
    settings = load_settings(_env_file=None, secret_key=TEST_SECRET_KEY, mcp_token=TOKEN)
    assert TOKEN in settings.secret_values()
    assert TOKEN not in repr(settings) + str(settings.public_summary())
    assert "mcp_token" not in settings.public_summary()
    unset = load_settings(_env_file=None, secret_key=TEST_SECRET_KEY, mcp_token="")
    assert unset.mcp_token is None  # empty is unset, as Compose writes ${MCP_TOKEN:-}
