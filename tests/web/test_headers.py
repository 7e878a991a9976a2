"""Security headers: a strict policy on pages, no framing, no sniffing, no caching of what a
session may have drawn, and HSTS once cookies are HTTPS-only."""

from __future__ import annotations

from tests.support.app import ClientFor

HTML = {"accept": "text/html"}


async def test_pages_carry_a_strict_policy_and_are_not_cached(client_for: ClientFor) -> None:
    async with client_for() as client:
        page = await client.get("/", headers=HTML)
        error_page = await client.get("/no/such/page", headers=HTML)
    for response in (page, error_page):
        policy = response.headers["content-security-policy"]
        assert "script-src 'self';" in policy
        assert "style-src 'self';" in policy
        assert "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in page.headers  # plain HTTP: HSTS would lie


async def test_api_answers_and_static_files(client_for: ClientFor) -> None:
    async with client_for() as client:
        health = await client.get("/health")
        refused = await client.post("/login", content=b" " * (2 * 1024 * 1024))
        css = await client.get("/static/hearth.css")
    for response in (health, refused):  # the 413 of the body limit included
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"
        assert "content-security-policy" not in response.headers  # JSON draws nothing
    assert refused.status_code == 413
    assert css.status_code == 200
    assert "no-store" not in css.headers.get("cache-control", "")  # the browser may keep it
    assert css.headers["x-content-type-options"] == "nosniff"


async def test_hsts_once_cookies_are_https_only(client_for: ClientFor) -> None:
    async with client_for(session_cookie_secure=True) as client:
        response = await client.get("/", headers=HTML)
    assert response.headers["strict-transport-security"] == "max-age=31536000"
