"""The schema tells the truth: every OpenAPI operation fuzzed with schemathesis, anonymously,
with the operator's session and with an API token, answers no 5xx and only what the schema
says it answers."""

from __future__ import annotations

import os

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from tests.support.app import ClientFor
from tests.support.fuzz import fuzz
from tests.support.tokens import bearer, insert_token

PASSWORD = "fuzz-operator-password"
# Per operation and generation mode (schema-valid, schema-invalid); raise it to look harder:
# HEARTH_FUZZ_EXAMPLES=500 .venv/bin/pytest tests/web/test_fuzz.py
EXAMPLES = int(os.environ.get("HEARTH_FUZZ_EXAMPLES", "50"))


async def test_anonymous_callers(client_for: ClientFor, fresh_database: str) -> None:
    async with client_for(database_url=fresh_database, admin_password=PASSWORD) as client:
        report = await fuzz(client, max_examples=EXAMPLES)
    assert not report.failures, "\n\n".join(report.failures)
    assert report.answered("GET /config", 401)  # the fuzz ran without a session indeed


async def test_the_operator(client_for: ClientFor, fresh_database: str) -> None:
    async with client_for(database_url=fresh_database, admin_password=PASSWORD) as client:
        token = (await client.get("/login")).json()["csrf_token"]
        login = await client.post(
            "/login", json={"password": PASSWORD}, headers={"X-CSRF-Token": token}
        )
        assert login.status_code == 200
        headers = {"X-CSRF-Token": login.json()["csrf_token"]}
        # Logging out would end the session the rest of the run stands on.
        report = await fuzz(client, max_examples=EXAMPLES, headers=headers, skip={"POST /logout"})
    assert not report.failures, "\n\n".join(report.failures)
    assert report.answered("GET /config", 200)  # the session held to the end


async def test_a_token_holding_every_scope(client_for: ClientFor, fresh_database: str) -> None:
    async with client_for(database_url=fresh_database, admin_password=PASSWORD) as client:
        token = insert_token(fresh_database, ("read", "write", "metrics"))  # migrated by now
        report = await fuzz(client, max_examples=EXAMPLES, headers=bearer(token))
    assert not report.failures, "\n\n".join(report.failures)
    assert report.answered("GET /documents/{document_id}", 404)  # the token let it in
    assert report.answered("GET /config", 401)  # and is not the operator


class Thing(BaseModel):
    name: str


def broken_app() -> FastAPI:
    """One operation that holds, one that fails, one that answers off its schema."""
    app = FastAPI()

    @app.get("/fine", response_model=Thing)
    async def fine() -> Thing:
        return Thing(name="fine")

    @app.get("/boom", response_model=Thing)
    async def boom() -> Thing:
        raise RuntimeError("a bug")

    @app.get("/liar", response_model=Thing)
    async def liar() -> JSONResponse:
        return JSONResponse({"name": 42})  # not what the schema promises

    return app


async def test_the_fuzz_fails_on_a_server_error_or_an_answer_off_the_schema() -> None:
    app = broken_app()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        report = await fuzz(client, max_examples=5)
    assert [failure.split(" (")[0] for failure in report.failures] == ["GET /boom", "GET /liar"]
    assert "Server error" in report.failures[0]
    assert "Response violates schema" in report.failures[1]
    assert report.answered("GET /fine", 200)
