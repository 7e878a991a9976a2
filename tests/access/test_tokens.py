"""API tokens: who may call the data routes, the token stored only as its hash, revoked and
expired tokens refused, the Tokens page, and the log redaction that masks any token."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from hearth.access.tokens import new_token
from hearth.app.factory import create_app
from hearth.config.settings import Settings
from hearth.log.redaction import Redactor
from tests.support.app import ClientFor, served, served_to_operator
from tests.support.tokens import bearer, insert_token

PASSWORD = "operator-password-for-token-tests"
TASK_ID = "8f7d2c1e-0b6a-4b7e-9d55-3c2a1f0e9b11"
REALM = 'Bearer realm="hearth"'
INVALID = 'Bearer realm="hearth", error="invalid_token"'

# Every data route, the scope it needs, and what it answers once let in (this database
# has no pgvector, so search is a 503 that says so).
ROUTES: list[tuple[str, str, dict[str, Any] | None, str, int]] = [
    ("GET", "/documents/987654321", None, "read", 404),
    ("GET", "/documents/search?q=boiler", None, "read", 503),
    ("GET", f"/tasks/{TASK_ID}", None, "read", 200),
    ("POST", "/documents", {"text": "The boiler is serviced each October."}, "write", 202),
    ("POST", "/documents/batch", {"documents": [{"text": "a"}, {"text": "b"}]}, "write", 202),
    ("POST", "/tasks/ping", None, "write", 202),
]


def _row(database_url: str, name: str) -> dict[str, Any]:
    with psycopg.connect(database_url) as connection:
        cursor = connection.execute(
            "SELECT *, row_to_json(t)::text AS whole FROM api_tokens t WHERE name = %s", (name,)
        )
        columns = [column.name for column in cursor.description or ()]
        found = cursor.fetchone()
    assert found is not None, f"no token named {name}"
    return dict(zip(columns, found, strict=True))


def operator_client(
    make_settings: Callable[..., Settings],
) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    """The app, and a client logged in as the operator, sending its CSRF token."""
    return served_to_operator(make_settings(admin_password=PASSWORD))


@pytest.mark.parametrize(("method", "path", "body", "scope", "allowed"), ROUTES)
async def test_each_data_route_needs_its_scope(
    client_for: ClientFor,
    database_url: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    scope: str,
    allowed: int,
) -> None:
    other = "write" if scope == "read" else "read"
    holder = insert_token(database_url, (scope,))
    lacking = insert_token(database_url, (other, "metrics"), name=f"lacks-{uuid.uuid4().hex[:8]}")
    async with client_for() as client:

        async def call(headers: dict[str, str]) -> httpx.Response:
            return await client.request(method, path, json=body, headers=headers)

        anonymous = await call({})
        wrong = await call(bearer(new_token()))
        not_hearths = await call(bearer("some-other-secret-0123456789"))
        basic = await call({"Authorization": f"Basic {holder}"})
        forbidden = await call(bearer(lacking))
        let_in = await call(bearer(holder))

    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == REALM
    assert anonymous.json()["error"] == "unauthorized"
    assert f"{scope!r} scope" in anonymous.json()["detail"]
    for refused in (wrong, not_hearths):
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == INVALID
    assert "unknown token" in wrong.json()["detail"]
    assert basic.status_code == 401  # another scheme is no bearer token
    assert basic.headers["www-authenticate"] == REALM
    assert forbidden.status_code == 403
    assert f"lacks the {scope!r} scope" in forbidden.json()["detail"]
    assert "www-authenticate" not in forbidden.headers
    assert let_in.status_code == allowed, let_in.text


async def test_the_operator_session_holds_every_scope(
    make_settings: Callable[..., Settings],
) -> None:
    async with operator_client(make_settings) as client:
        read = await client.get(f"/tasks/{TASK_ID}")
        write = await client.post("/tasks/ping")
    assert read.status_code == 200, read.text
    assert write.status_code == 202, write.text


@pytest.mark.parametrize(
    ("when", "reason"),
    [
        ({"revoked_at": datetime.now(UTC)}, "was revoked"),
        ({"expires_at": datetime.now(UTC) - timedelta(seconds=1)}, "expired at"),
    ],
)
async def test_revoked_and_expired_tokens_are_refused(
    client_for: ClientFor, database_url: str, when: dict[str, datetime], reason: str
) -> None:
    name = f"gone-{uuid.uuid4().hex[:8]}"
    token = insert_token(database_url, ("read", "write"), name=name, **when)
    async with client_for() as client:
        response = await client.get(f"/tasks/{TASK_ID}", headers=bearer(token))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == INVALID
    assert f"the token {name!r} {reason}" in response.json()["detail"]
    assert _row(database_url, name)["last_used_at"] is None


async def test_a_token_not_yet_expired_works_and_its_use_is_recorded_once_a_minute(
    client_for: ClientFor, database_url: str
) -> None:
    name = f"used-{uuid.uuid4().hex[:8]}"
    later = datetime.now(UTC) + timedelta(days=1)
    token = insert_token(database_url, ("read",), name=name, expires_at=later)
    async with client_for() as client:
        first = await client.get(f"/tasks/{TASK_ID}", headers=bearer(token))
        used = _row(database_url, name)["last_used_at"]
        for _ in range(5):
            again = await client.get(f"/tasks/{TASK_ID}", headers=bearer(token))
            assert again.status_code == 200
    assert first.status_code == 200
    assert used is not None
    assert datetime.now(UTC) - used < timedelta(seconds=30)
    assert _row(database_url, name)["last_used_at"] == used  # not a write per request
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            "UPDATE api_tokens SET last_used_at = now() - interval '2 minutes' WHERE name = %s",
            (name,),
        )
    async with client_for() as client:
        await client.get(f"/tasks/{TASK_ID}", headers=bearer(token))
    assert _row(database_url, name)["last_used_at"] > used


# --- the Tokens page and its API ------------------------------------------------------


async def test_a_token_is_shown_once_and_stored_only_as_its_hash(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    name = f"script-{uuid.uuid4().hex[:8]}"
    async with operator_client(make_settings) as operator:
        created = await operator.post(
            "/tokens", json={"name": name, "scopes": ["read"], "expires_days": 30}
        )
        listed = await operator.get("/tokens")
        page = await operator.get("/tokens", headers={"Accept": "text/html"})
        duplicate = await operator.post("/tokens", json={"name": name, "scopes": ["read"]})
    assert created.status_code == 201, created.text
    body = created.json()
    secret = body["token"]
    assert re.fullmatch(r"hth_[A-Za-z0-9_-]{43}", secret)
    assert body["scopes"] == ["read"]
    assert body["prefix"] == secret[:8]
    assert secret not in listed.text
    assert secret not in page.text
    assert name in page.text
    [entry] = [t for t in listed.json()["tokens"] if t["name"] == name]
    assert entry["prefix"] == secret[:8]
    assert "token" not in entry
    row = _row(database_url, name)
    assert row["token_sha256"] == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in row["whole"]
    assert secret[8:20] not in row["whole"]
    assert row["expires_at"] - row["created_at"] == timedelta(days=30)
    assert duplicate.status_code == 409
    assert name in duplicate.json()["detail"]


async def test_the_console_page_creates_and_revokes_a_token(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    name = f"console-{uuid.uuid4().hex[:8]}"
    html = {"Accept": "text/html"}
    async with operator_client(make_settings) as operator:
        page = await operator.get("/tokens", headers=html)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf is not None
        form = {"csrf_token": csrf[1], "name": name, "scope": ["read", "write"]}
        created = await operator.post("/tokens", data=form, headers={**html, "X-CSRF-Token": ""})
        shown = re.search(r'id="new-token"[^>]*value="(hth_[^"]+)"', created.text)
        assert shown is not None, created.text
        secret = shown[1]
        refused_form = await operator.post(
            "/tokens",
            data={"csrf_token": csrf[1], "name": "bad name!", "scope": "admin"},
            headers={**html, "X-CSRF-Token": ""},
        )
        # Another replica, which asks the database on every request: refuses the token once
        # the revocation is committed (with its cache, within API_TOKEN_CACHE_SECONDS;
        # test_token_cache.py).
        async with served(create_app(make_settings(api_token_cache_seconds=0))) as other:
            before = await other.get(f"/tasks/{TASK_ID}", headers=bearer(secret))
            revoked = await operator.post(
                "/tokens/revoke",
                data={"csrf_token": csrf[1], "name": name},
                headers={**html, "X-CSRF-Token": ""},
            )
            after = await other.get(f"/tasks/{TASK_ID}", headers=bearer(secret))
        listing = await operator.get("/tokens", headers=html)
    assert page.status_code == 200
    assert "<h1>API tokens</h1>" in page.text
    assert '<label for="token-name">Name</label>' in page.text
    assert '<a href="/tokens" aria-current="page">Tokens</a>' in page.text
    assert created.status_code == 201
    assert "Copy it now" in created.text
    assert refused_form.status_code == 422
    assert "unknown scope admin" in refused_form.text
    assert 'aria-invalid="true"' in refused_form.text
    assert before.status_code == 200
    assert revoked.status_code == 303
    assert after.status_code == 401
    assert "was revoked" in after.json()["detail"]
    assert secret not in listing.text
    assert f"Revoked the token &#39;{name}&#39;." in listing.text
    assert _row(database_url, name)["revoked_at"] is not None


async def test_the_tokens_page_is_for_the_operator_only(
    make_settings: Callable[..., Settings], api_token: str
) -> None:
    async with served(create_app(make_settings(admin_password=PASSWORD))) as client:
        anonymous = await client.get("/tokens")
        browser = await client.get("/tokens", headers={"Accept": "text/html"})
        with_token = await client.post(
            "/tokens", json={"name": "x", "scopes": ["read"]}, headers=bearer(api_token)
        )
    assert anonymous.status_code == 401
    assert browser.status_code == 303
    assert browser.headers["location"] == "/login?next=/tokens"
    assert with_token.status_code == 401  # a token cannot make tokens


async def test_creating_a_token_needs_the_csrf_token(
    make_settings: Callable[..., Settings],
) -> None:
    async with operator_client(make_settings) as operator:
        del operator.headers["X-CSRF-Token"]
        response = await operator.post("/tokens", json={"name": "nocsrf", "scopes": ["read"]})
    assert response.status_code == 403


# --- log redaction --------------------------------------------------------------------


def test_the_log_redaction_masks_any_api_token() -> None:
    token = new_token()
    redactor = Redactor()
    event = {
        "event": f"request with Authorization: Bearer {token}",
        "nested": {"argv": ["curl", "-H", f"Bearer {token}"], token: "as a key"},
        "url": f"http://127.0.0.1:8000/documents?access={token}",
        "shown": token[:8],
    }
    redacted = redactor(None, "info", event)
    text = repr(redacted)
    assert token not in text
    assert token[4:20] not in text
    assert "Bearer hth_***" in redacted["event"]
    assert redacted["shown"] == token[:8]  # the shown part tells nothing; it stays
