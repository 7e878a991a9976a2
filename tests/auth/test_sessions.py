"""Operator sessions end: at logout (a copy of the cookie is worthless), when ADMIN_PASSWORD
changes, when they expire; and while the database is away, no 500."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import psycopg
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from hearth.app.factory import create_app
from hearth.auth.sessions import OperatorSessionStore, password_fingerprint
from hearth.config.settings import Settings
from hearth.db.engine import create_engine
from hearth.db.unit import DatabaseUnavailable
from hearth.kit.urls import normalize_database_url
from tests.support.app import served
from tests.support.process import TEST_SECRET_KEY
from tests.support.services import POSTGRES_ADMIN_URL, free_port

PASSWORD = "correct horse battery staple"
JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html"}


async def _log_in(client: httpx.AsyncClient, password: str = PASSWORD) -> str:
    """Log in; the session's CSRF token."""
    token = (await client.get("/login")).json()["csrf_token"]
    response = await client.post(
        "/login", json={"password": password}, headers={"X-CSRF-Token": token}
    )
    assert response.status_code == 200, response.text
    csrf: str = response.json()["csrf_token"]
    return csrf


def _session_id(client: httpx.AsyncClient) -> str:
    """The session id inside the signed cookie (its payload is base64 JSON)."""
    payload = client.cookies["hearth_session"].split(".")[0]
    data = json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))
    session_id: str = data["operator"]
    return session_id


def _row(database_url: str, session_id: str) -> tuple[object, ...] | None:
    id_hash = hashlib.sha256(session_id.encode()).hexdigest()
    with psycopg.connect(database_url) as connection:
        return connection.execute(
            "SELECT password_fingerprint, revoked_at, expires_at - created_at "
            "FROM operator_sessions WHERE id_hash = %s",
            (id_hash,),
        ).fetchone()


def _execute(database_url: str, sql: str, *parameters: object) -> None:
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(sql, parameters)


async def _config(client: httpx.AsyncClient, csrf: str) -> tuple[int, int, httpx.Response]:
    """GET /config (JSON), POST /config with the token, GET /config as a browser."""
    read = await client.get("/config", headers=JSON)
    write = await client.post(
        "/config", json={"llm_model": "llama3.2"}, headers={"X-CSRF-Token": csrf, **JSON}
    )
    page = await client.get("/config", headers=HTML)
    return read.status_code, write.status_code, page


async def test_logout_ends_the_session_for_every_copy_of_the_cookie(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    async with served(create_app(make_settings(admin_password=PASSWORD))) as client:
        csrf = await _log_in(client)
        session_id = _session_id(client)
        kept = httpx.Cookies(client.cookies)  # what an attacker copied before the logout
        before = await _config(client, csrf)

        out = await client.post("/logout", headers={"X-CSRF-Token": csrf})
        client.cookies = kept
        after = await _config(client, csrf)
        asked = (await client.get("/login")).json()

    assert before[:2] == (200, 200)
    assert out.status_code == 200
    assert after[:2] == (401, 401)
    assert after[2].status_code == 303
    assert after[2].headers["location"] == "/login?next=/config"
    assert asked["operator"] is False
    # The database holds the id's hash, never the id, and the revocation.
    row = _row(database_url, session_id)
    assert row is not None
    assert row[1] is not None  # revoked_at


async def test_a_logout_on_one_replica_ends_the_session_on_another(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(admin_password=PASSWORD, session_check_seconds=0)
    async with (
        served(create_app(settings)) as one,
        served(create_app(settings)) as other,
    ):
        csrf = await _log_in(one)
        other.cookies = httpx.Cookies(one.cookies)  # a load balancer sends the next request on
        assert (await other.get("/config", headers=JSON)).status_code == 200
        await one.post("/logout", headers={"X-CSRF-Token": csrf})
        assert (await other.get("/config", headers=JSON)).status_code == 401


async def test_a_new_admin_password_ends_every_session(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    # The same database, Hearth started twice: a restart alone keeps the session ...
    async with served(create_app(make_settings(admin_password=PASSWORD))) as client:
        await _log_in(client)
        cookies = httpx.Cookies(client.cookies)
        session_id = _session_id(client)
    async with served(create_app(make_settings(admin_password=PASSWORD))) as client:
        client.cookies = cookies
        restarted = await client.get("/config", headers=JSON)
    # ... a restart with another ADMIN_PASSWORD ends it.
    async with served(create_app(make_settings(admin_password="a new passphrase"))) as client:
        client.cookies = cookies
        changed = await client.get("/config", headers=JSON)
        login_page = (await client.get("/login")).json()
    # Without any password, no session at all.
    async with served(create_app(make_settings(admin_password=None))) as client:
        client.cookies = cookies
        unset = await client.get("/config", headers=JSON)

    assert restarted.status_code == 200
    assert changed.status_code == 401
    assert login_page["operator"] is False
    assert unset.status_code == 401
    row = _row(database_url, session_id)
    assert row is not None
    assert row[0] == password_fingerprint(TEST_SECRET_KEY, PASSWORD)
    assert PASSWORD not in str(row)


async def test_an_expired_session_is_no_session(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    async with served(
        create_app(make_settings(admin_password=PASSWORD, session_check_seconds=0))
    ) as client:
        await _log_in(client)
        session_id = _session_id(client)
        row = _row(database_url, session_id)
        assert (await client.get("/config", headers=JSON)).status_code == 200
        _execute(
            database_url,
            "UPDATE operator_sessions SET expires_at = now() - interval '1 second' "
            "WHERE id_hash = %s",
            hashlib.sha256(session_id.encode()).hexdigest(),
        )
        expired = await client.get("/config", headers=JSON)
    assert expired.status_code == 401
    assert row is not None
    assert str(row[2]) == "12:00:00"  # a working day, as the cookie


async def test_a_session_expires_even_in_the_cache_of_the_process_that_confirmed_it(
    database_url: str,
) -> None:
    engine = create_engine(normalize_database_url(database_url))
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    fingerprint = password_fingerprint(TEST_SECRET_KEY, PASSWORD)
    store = OperatorSessionStore(
        sessions, fingerprint=fingerprint, lifetime_seconds=1, check_seconds=3600
    )
    other = OperatorSessionStore(
        sessions, fingerprint=fingerprint, lifetime_seconds=1, check_seconds=0
    )
    try:
        session_id = await store.start()
        assert await store.is_active(session_id)
        assert await other.is_active(session_id)
        await asyncio.sleep(1.2)
        assert not await store.is_active(session_id)  # no database asked: the cache knew
        assert not await other.is_active(session_id)  # the database said so
        assert not await store.is_active("an id nobody issued")
    finally:
        await engine.dispose()


async def test_ended_and_expired_sessions_are_deleted_at_the_next_login(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    async with served(create_app(make_settings(admin_password=PASSWORD))) as client:
        csrf = await _log_in(client)
        ended = _session_id(client)
        await client.post("/logout", headers={"X-CSRF-Token": csrf})
        assert _row(database_url, ended) is not None
        await _log_in(client)
        current = _session_id(client)
    assert _row(database_url, ended) is None
    assert _row(database_url, current) is not None


@asynccontextmanager
async def _database_away(url: str) -> AsyncIterator[None]:
    """The database refuses every connection (as a stopped server would) until the block ends."""
    name = url.rsplit("/", 1)[1]
    _execute(POSTGRES_ADMIN_URL, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    _execute(
        POSTGRES_ADMIN_URL,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
        name,
    )
    try:
        yield
    finally:
        _execute(POSTGRES_ADMIN_URL, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


@pytest.mark.postgres
async def test_while_the_database_is_away_sessions_answer_without_a_500(
    make_settings: Callable[..., Settings], fresh_database: str
) -> None:
    settings = make_settings(
        database_url=fresh_database, admin_password=PASSWORD, session_check_seconds=0
    )
    async with served(create_app(settings)) as client:
        csrf = await _log_in(client)
        kept = httpx.Cookies(client.cookies)
        async with served(create_app(settings)) as stranger:
            # A replica that never confirmed this session.
            stranger.cookies = httpx.Cookies(kept)
            async with _database_away(fresh_database):
                # The process that confirmed the session keeps it; the other has no way to.
                still = (await client.get("/login")).json()["operator"]
                dashboard = await client.get("/", headers=HTML)
                config = await client.get("/config", headers=JSON)
                unknown = await stranger.get("/config", headers=JSON)
                # Logging out takes effect here at once, and reaches the database later.
                out = await client.post("/logout", headers={"X-CSRF-Token": csrf})
                client.cookies = httpx.Cookies(kept)
                after = await client.get("/config", headers=JSON)
                login = await client.post(
                    "/login",
                    json={"password": PASSWORD},
                    headers={"X-CSRF-Token": (await client.get("/login")).json()["csrf_token"]},
                )
            # Back: the logout is written when this process next reaches the database.
            client.cookies = httpx.Cookies()
            await _log_in(client)
            replayed = await stranger.get("/config", headers=JSON)

    assert still is True
    assert dashboard.status_code == 200
    assert config.status_code not in {401, 500}  # still the operator; the page does what it can
    assert unknown.status_code == 401
    assert out.status_code == 200
    assert after.status_code == 401
    assert login.status_code == 503
    assert "database" in login.json()["detail"]
    assert replayed.status_code == 401


async def test_a_store_whose_database_is_gone_opens_no_session_and_knows_none() -> None:
    dead = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none")
    store = OperatorSessionStore(
        async_sessionmaker(dead), fingerprint="f", lifetime_seconds=60, check_seconds=0
    )
    try:
        assert not await store.is_active("an id")
        with pytest.raises(DatabaseUnavailable, match="Connection refused"):
            await store.start()
        await store.end("an id")  # never raises
    finally:
        await dead.dispose()
