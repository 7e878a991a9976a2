"""A CSRF token of any text is refused with a 403, never a 500 (found by the fuzz)."""

from __future__ import annotations

from tests.support.app import ClientFor


async def test_a_token_with_non_ascii_characters_is_refused(client_for: ClientFor) -> None:
    async with client_for() as client:
        await client.get("/login")  # the session gets its token
        as_field = await client.post("/logout", json={"csrf_token": "jeton-é"})
        as_header = await client.post(
            "/logout", headers={b"X-CSRF-Token": "jeton-é".encode("latin-1")}
        )
        lone_surrogate = await client.post(
            "/logout",
            content=b'{"csrf_token": "\\ud800"}',
            headers={"Content-Type": "application/json"},
        )
    for response in (as_field, as_header, lone_surrogate):
        assert response.status_code == 403
        assert response.json()["error"] == "forbidden"
