"""Operator login: the password, the session cookie, CSRF, the brake on guessing, logout."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable

import httpx
import pytest

from hearth.app.factory import create_app
from hearth.auth.service import LoginThrottle, PasswordVerifier
from hearth.config.settings import Settings
from hearth.log import configure_logging
from tests.support.app import served

PASSWORD = "correct horse battery staple"


def test_the_verifier_keeps_a_hash_not_the_password() -> None:
    verifier = PasswordVerifier(PASSWORD)
    assert verifier.verify(PASSWORD)
    assert not verifier.verify(PASSWORD + " ")
    assert not verifier.verify("")
    assert PASSWORD.encode() not in verifier._hash
    assert PASSWORD not in repr(vars(verifier))
    assert not PasswordVerifier(None).verify("")


def test_throttle_counts_attempts_per_client() -> None:
    throttle = LoginThrottle(limit=3, window=60)
    assert [throttle.admit("10.0.0.1") for _ in range(3)] == [0, 0, 0]
    assert 0 < throttle.admit("10.0.0.1") <= 61
    assert throttle.admit("10.0.0.2") == 0
    throttle.succeeded("10.0.0.1")
    assert throttle.admit("10.0.0.1") == 0


def test_throttle_forgets_clients_whose_failures_have_left_the_window() -> None:
    """Many clients that failed once and went away: the table stays bounded (it kept every
    one of them, for as long as the process ran)."""
    throttle = LoginThrottle(limit=3, window=0)  # every failure leaves the window at once
    for n in range(5000):
        assert throttle.admit(f"10.0.{n // 256}.{n % 256}") == 0
    assert len(throttle._failures) <= 1024


async def _token(client: httpx.AsyncClient) -> str:
    token: str = (await client.get("/login")).json()["csrf_token"]
    return token


async def test_login_sets_a_safe_cookie_and_logout_ends_it(
    make_settings: Callable[..., Settings],
) -> None:
    buffer = io.StringIO()
    configure_logging(level="INFO", fmt="json", stream=buffer, secrets=[PASSWORD])
    try:
        async with served(create_app(make_settings(admin_password=PASSWORD))) as client:
            token = await _token(client)
            wrong = await client.post(
                "/login", json={"password": "guess"}, headers={"X-CSRF-Token": token}
            )
            right = await client.post(
                "/login", json={"password": PASSWORD}, headers={"X-CSRF-Token": token}
            )
            cookie = right.headers["set-cookie"]
            new_token = right.json()["csrf_token"]
            assert (await client.get("/config")).status_code == 200

            stale = await client.post("/logout", headers={"X-CSRF-Token": token})
            out = await client.post("/logout", headers={"X-CSRF-Token": new_token})
            after = await client.get("/config")
    finally:
        configure_logging(level="WARNING", fmt="json")

    assert wrong.status_code == 401
    assert right.status_code == 200
    assert new_token != token  # a fresh session (and token) on login
    assert "hearth_session=" in cookie
    assert "httponly" in cookie.lower()
    assert "samesite=strict" in cookie.lower()
    assert stale.status_code == 403
    assert out.status_code == 200
    assert after.status_code == 401

    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    events = [line["event"] for line in lines]
    assert "login_failed" in events
    assert "login_succeeded" in events
    assert "guess" not in buffer.getvalue()
    assert PASSWORD not in buffer.getvalue()


async def test_browser_login_redirects_only_within_the_site(
    make_settings: Callable[..., Settings],
) -> None:
    async with served(create_app(make_settings(admin_password=PASSWORD))) as client:
        html = {"Accept": "text/html"}
        page = await client.get("/login?next=/status", headers=html)
        token = (await client.get("/login")).json()["csrf_token"]
        assert 'name="next" value="/status"' in page.text
        wrong = await client.post(
            "/login",
            data={"password": "nope", "csrf_token": token, "next": "/status"},
            headers=html,
        )
        evil = await client.post(
            "/login",
            data={"password": PASSWORD, "csrf_token": token, "next": "//evil.example/"},
            headers=html,
        )
    assert wrong.status_code == 401
    assert "Wrong password." in wrong.text
    assert evil.status_code == 303
    assert evil.headers["location"] == "/config"


async def test_login_needs_a_csrf_token(make_settings: Callable[..., Settings]) -> None:
    async with served(create_app(make_settings(admin_password=PASSWORD))) as client:
        response = await client.post("/login", json={"password": PASSWORD})
    assert response.status_code == 403


async def test_failed_logins_are_rate_limited(make_settings: Callable[..., Settings]) -> None:
    async with served(create_app(make_settings(admin_password=PASSWORD))) as client:
        token = await _token(client)
        statuses = []
        for _ in range(6):
            response = await client.post(
                "/login", json={"password": "guess"}, headers={"X-CSRF-Token": token}
            )
            statuses.append(response.status_code)
        blocked_right = await client.post(
            "/login", json={"password": PASSWORD}, headers={"X-CSRF-Token": token}
        )
    assert statuses == [401] * 5 + [429]
    assert blocked_right.status_code == 429  # even the right password waits
    assert int(blocked_right.headers["Retry-After"]) > 0
    assert "Too many failed logins" in blocked_right.json()["detail"]


async def test_parallel_guesses_are_checked_five_at_most(
    make_settings: Callable[..., Settings],
) -> None:
    """Sixty wrong passwords sent at once from one address: five are checked (401), the
    rest refused (429) before their password is looked at."""
    async with served(create_app(make_settings(admin_password=PASSWORD))) as client:
        headers = {"X-CSRF-Token": await _token(client)}
        guesses = (
            client.post("/login", json={"password": f"guess-{n}"}, headers=headers)
            for n in range(60)
        )
        answers = await asyncio.gather(*guesses)
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [401] * 5 + [429] * 55


async def test_a_tampered_session_cookie_is_worthless(
    make_settings: Callable[..., Settings],
) -> None:
    async with served(create_app(make_settings(admin_password=PASSWORD))) as client:
        token = await _token(client)
        await client.post("/login", json={"password": PASSWORD}, headers={"X-CSRF-Token": token})
        value = client.cookies["hearth_session"]
        client.cookies.clear()
        client.cookies.set("hearth_session", value[:-4] + "AAAA")
        response = await client.get("/config")
    assert response.status_code == 401


@pytest.mark.parametrize("path", ["/", "/status", "/health", "/health/fragment", "/livez"])
async def test_reading_needs_no_login(make_settings: Callable[..., Settings], path: str) -> None:
    async with served(create_app(make_settings(admin_password=PASSWORD))) as client:
        response = await client.get(path, headers={"Accept": "text/html"})
    assert response.status_code == 200
