"""The cache of verified API tokens: a script's requests do not each look its token up, a
refusal is never remembered, a revocation made here is at once in force and one made by
another process within API_TOKEN_CACHE_SECONDS, an expiry on every request."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from hearth.access.cache import GrantCache, Verified
from hearth.access.tokens import new_token
from hearth.app.factory import create_app
from hearth.config.settings import Settings
from tests.support.app import ClientFor, served
from tests.support.process import clean_environment, hearth_server, run_hearth
from tests.support.services import free_port
from tests.support.tokens import bearer, insert_token

PASSWORD = "operator-password-for-token-cache-tests"
# Read scope, no Redis involved: 404 once let in (no such document).
ROUTE = "/documents/987654321"
DEADLINE_SECONDS = 30.0


@contextmanager
def token_statements() -> Iterator[list[str]]:
    """The SQL about API tokens that this process sends while the block runs: each
    statement's first word (SELECT, UPDATE), in order."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if "api_tokens" in statement:
            seen.append(statement.split(None, 1)[0].upper())

    event.listen(Engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", note)


@asynccontextmanager
async def operator_and_script(
    make_settings: Callable[..., Settings], **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """One app (one process's cache), and two clients of it: the operator, logged in and
    sending its CSRF token, and a script that sends nothing but its bearer token."""
    app = create_app(make_settings(admin_password=PASSWORD, **overrides))
    async with served(app) as operator:
        csrf = (await operator.get("/login")).json()["csrf_token"]
        login = await operator.post(
            "/login", json={"password": PASSWORD}, headers={"X-CSRF-Token": csrf}
        )
        assert login.status_code == 200, login.text
        operator.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://hearth.test") as script:
            yield operator, script


@pytest.mark.parametrize(("seconds", "selects"), [(60, 1), (0, 12)])
async def test_a_verified_token_is_looked_up_once_within_the_cache_seconds(
    client_for: ClientFor, database_url: str, seconds: int, selects: int
) -> None:
    token = insert_token(database_url, ("read",))
    async with client_for(api_token_cache_seconds=seconds) as client:
        with token_statements() as statements:
            answers = [
                (await client.get(ROUTE, headers=bearer(token))).status_code for _ in range(12)
            ]
    assert answers == [404] * 12  # let in every time
    # The use is recorded once (at most once a minute), cache or not.
    assert statements.count("UPDATE") == 1, statements
    assert statements.count("SELECT") == selects, statements


async def test_a_refusal_is_never_remembered(client_for: ClientFor, database_url: str) -> None:
    unknown = new_token()
    name = f"renewed-{uuid.uuid4().hex[:8]}"
    expired = insert_token(
        database_url, ("read",), name=name, expires_at=datetime.now(UTC) - timedelta(hours=1)
    )
    async with client_for(api_token_cache_seconds=60) as client:
        with token_statements() as statements:
            for _ in range(5):
                refused = await client.get(ROUTE, headers=bearer(unknown))
                assert refused.status_code == 401
        before = await client.get(ROUTE, headers=bearer(expired))
        with psycopg.connect(database_url, autocommit=True) as connection:
            connection.execute(
                "UPDATE api_tokens SET expires_at = now() + interval '1 day' WHERE name = %s",
                (name,),
            )
        after = await client.get(ROUTE, headers=bearer(expired))
    assert statements == ["SELECT"] * 5  # an unknown token costs its query every time
    assert before.status_code == 401
    assert "expired at" in before.json()["detail"]
    assert after.status_code == 404  # the refusal a moment ago was not kept


async def test_a_token_revoked_through_this_process_is_refused_at_once(
    make_settings: Callable[..., Settings],
) -> None:
    name = f"revoked-here-{uuid.uuid4().hex[:8]}"
    # A minute: only the revocation itself can end the cached grant during the test.
    async with operator_and_script(make_settings, api_token_cache_seconds=60) as (
        operator,
        script,
    ):
        created = await operator.post("/tokens", json={"name": name, "scopes": ["read"]})
        assert created.status_code == 201, created.text
        token = created.json()["token"]
        with token_statements() as statements:
            first = await script.get(ROUTE, headers=bearer(token))
            cached = await script.get(ROUTE, headers=bearer(token))
        revoked = await operator.post("/tokens/revoke", json={"name": name})
        after = await script.get(ROUTE, headers=bearer(token))
    assert (first.status_code, cached.status_code) == (404, 404)  # created a moment ago: let in
    assert statements.count("SELECT") == 1  # the second answer came from the cache
    assert revoked.status_code == 200, revoked.text
    assert after.status_code == 401
    assert f"the token {name!r} was revoked" in after.json()["detail"]


def test_a_token_revoked_by_another_process_is_refused_within_the_cache_seconds(
    database_url: str, tmp_path: Path
) -> None:
    """A real `hearth serve` and `hearth token revoke`, as on a host; no time is asserted
    but a generous deadline."""
    name = f"revoked-there-{uuid.uuid4().hex[:8]}"
    token = insert_token(database_url, ("read",), name=name)
    env = clean_environment(DATABASE_URL=database_url, API_TOKEN_CACHE_SECONDS="1")
    with hearth_server(env, tmp_path, free_port()) as server:
        server.wait_until("/readyz", 200)
        server.headers.update(bearer(token))
        assert server.get(ROUTE).status_code == 404
        revoked = run_hearth("token", "revoke", name, env=env, cwd=tmp_path)
        assert revoked.returncode == 0, revoked.stderr
        deadline = time.monotonic() + DEADLINE_SECONDS
        answer = server.get(ROUTE)
        while answer.status_code != 401 and time.monotonic() < deadline:
            time.sleep(0.2)
            answer = server.get(ROUTE)
    assert "running Hearth processes refuse it within 1 s" in revoked.stdout
    assert answer.status_code == 401, answer.text
    assert f"the token {name!r} was revoked" in answer.json()["detail"]


async def test_an_expiry_is_checked_on_every_use_of_a_cached_grant(
    client_for: ClientFor, database_url: str
) -> None:
    name = f"short-{uuid.uuid4().hex[:8]}"
    async with client_for(api_token_cache_seconds=60) as client:
        # Inserted once the app is up: a few seconds are enough for its first request.
        token = insert_token(
            database_url, ("read",), name=name, expires_at=datetime.now(UTC) + timedelta(seconds=5)
        )
        with token_statements() as statements:
            first = await client.get(ROUTE, headers=bearer(token))
            deadline = time.monotonic() + DEADLINE_SECONDS
            answer = first
            while answer.status_code != 401 and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                answer = await client.get(ROUTE, headers=bearer(token))
    assert first.status_code == 404
    assert answer.status_code == 401
    assert f"the token {name!r} expired at" in answer.json()["detail"]
    # Refused by the cached expiry: the token was looked up once, when first used.
    assert statements.count("SELECT") == 1, statements


# --- the cache itself -----------------------------------------------------------------


def _verified(name: str) -> Verified:
    return Verified(name, frozenset({"read"}), None, datetime.now(UTC))


def test_the_cache_keeps_at_most_its_size_dropping_the_least_recently_used() -> None:
    cache = GrantCache(60, size=3)
    for key in ("a", "b", "c"):
        cache.put(key, _verified(key), cache.generation)
    assert cache.get("a") is not None  # now the most recently used
    for key in ("d", "e"):
        cache.put(key, _verified(key), cache.generation)
    assert len(cache) == 3
    assert [key for key in "abcde" if cache.get(key) is not None] == ["a", "d", "e"]


def test_a_lookup_begun_before_a_revocation_is_not_kept() -> None:
    cache = GrantCache(60)
    began = cache.generation
    cache.forget("revoked-meanwhile")
    cache.put("read-before", _verified("read-before"), began)
    cache.put("read-after", _verified("read-after"), cache.generation)
    assert cache.get("read-before") is None
    assert cache.get("read-after") is not None


def test_a_cache_of_zero_seconds_keeps_nothing() -> None:
    cache = GrantCache(0)
    cache.put("a", _verified("a"), cache.generation)
    assert (len(cache), cache.get("a")) == (0, None)
