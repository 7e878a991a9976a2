"""Through the real app: no operator action sends LLM_API_KEY to a server the environment
did not name, llm_endpoint refuses credentials, and no page or answer shows a URL's secret."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from hearth.config import repository
from hearth.config.settings import Settings
from hearth.log import configure_logging
from tests.config.test_config import operator_client
from tests.support.fake_llm import FakeLLM, fake_llm
from tests.support.services import free_port

API_KEY = "sk-live-0f9e8d7c6b5a49382716"
URL_SECRET = "S3CRET-in-the-url-5d1e"


def keys_received(server: FakeLLM) -> list[str]:
    """Every request header that carried the API key, anywhere in it."""
    return [
        f"{name}: {value}"
        for request in server.received
        for name, value in request.headers.items()
        if API_KEY in value
    ]


@pytest.mark.usefixtures("clean_settings")
@pytest.mark.parametrize("environment", ["LLM_TRUSTED_ORIGIN", "no origin"])
async def test_an_operator_cannot_send_the_api_key_to_a_listener(
    make_settings: Callable[..., Settings], environment: str
) -> None:
    """The issue's reproduction: set llm_provider=openai and llm_endpoint to a listener of
    one's own, press Test. The listener is asked, without the key; the page says why."""
    with fake_llm() as bound, fake_llm() as listener:
        bound.api_key = API_KEY
        origin = {"llm_trusted_origin": bound.url} if environment != "no origin" else {}
        async with operator_client(make_settings, llm_api_key=API_KEY, **origin) as client:
            saved = await client.post(
                "/config", json={"llm_provider": "openai", "llm_endpoint": listener.url + "/v1"}
            )
            tested = await client.post("/config/test/llm")
            fragment = await client.post("/config/test/llm", headers={"HX-Request": "true"})
            as_json = (await client.get("/config")).json()
            page = await client.get("/config", headers={"Accept": "text/html"})
            await client.post("/config", json={"llm_endpoint": bound.url})
            tested_bound = await client.post("/config/test/llm")
            bound_json = (await client.get("/config")).json()

    assert saved.status_code == 200
    assert len(listener.received) >= 2  # it was asked: by each Test, the recheck, the banner
    assert keys_received(listener) == []
    port = listener.server_address[1]
    if environment == "no origin":
        reason = (
            "LLM_API_KEY is withheld: no LLM_ENDPOINT or LLM_TRUSTED_ORIGIN in the environment "
            "names the server it may be sent to"
        )
    else:
        reason = (
            f"LLM_API_KEY is withheld from http://127.0.0.1:{port}: it may be sent only to "
            f"{bound.url} (named by LLM_TRUSTED_ORIGIN in the environment)"
        )
    assert tested.json()["detail"].endswith(reason)
    assert reason in fragment.text
    assert as_json["llm_api_key"] == {"sent": False, "reason": reason}
    assert f'<p class="key-use withheld" id="llm_endpoint-key">{reason}.</p>' in page.text

    if environment == "no origin":
        assert keys_received(bound) == []
        assert tested_bound.json()["status"] == "unreachable"  # the server wants its key
        assert bound_json["llm_api_key"]["sent"] is False
    else:
        assert keys_received(bound) == [f"Authorization: Bearer {API_KEY}"] * len(bound.received)
        assert tested_bound.json()["status"] == "ok"
        assert bound_json["llm_api_key"] == {
            "sent": True,
            "reason": f"LLM_API_KEY is sent to this server: it is bound to {bound.url} by "
            "LLM_TRUSTED_ORIGIN in the environment",
        }


@pytest.mark.usefixtures("clean_settings")
async def test_the_endpoint_in_the_environment_binds_the_key(
    make_settings: Callable[..., Settings],
) -> None:
    with fake_llm() as bound:
        bound.api_key = API_KEY
        async with operator_client(
            make_settings, llm_api_key=API_KEY, llm_provider="openai", llm_endpoint=bound.url
        ) as client:
            tested = await client.post("/config/test/llm")
            moved = await client.post("/config", json={"llm_endpoint": "http://127.0.0.1:9"})
            page = await client.get("/config", headers={"Accept": "text/html"})
    assert tested.json()["status"] == "ok"
    assert keys_received(bound) == [f"Authorization: Bearer {API_KEY}"] * len(bound.received)
    assert moved.status_code == 422  # locked: the environment names it
    assert '<p class="key-use sent" id="llm_endpoint-key">LLM_API_KEY is sent' in page.text


@pytest.mark.usefixtures("clean_settings")
@pytest.mark.parametrize(
    ("endpoint", "says"),
    [
        (
            f"http://127.0.0.1:9/?token={URL_SECRET}",
            "llm_endpoint: must not carry query parameters other than Azure's api-version",
        ),
        (
            f"http://127.0.0.1:9/v1?api-version=2024-10-21&key={URL_SECRET}",
            "llm_endpoint: must not carry query parameters other than Azure's api-version",
        ),
        (f"http://127.0.0.1:9/?{URL_SECRET}", "llm_endpoint: must not carry query parameters"),
        (f"http://hearth:{URL_SECRET}@127.0.0.1:9", "llm_endpoint: must not contain a user name"),
        (f"http://{URL_SECRET}@127.0.0.1:9", "llm_endpoint: must not contain a user name"),
        (f"http://127.0.0.1:9/#{URL_SECRET}", "llm_endpoint: must not hold a #fragment"),
    ],
)
async def test_credentials_in_the_endpoint_are_refused(
    make_settings: Callable[..., Settings], engine: AsyncEngine, endpoint: str, says: str
) -> None:
    async with operator_client(make_settings) as client:
        as_json = await client.post("/config", json={"llm_endpoint": endpoint})
        as_form = await client.post(
            "/config",
            data={"llm_endpoint": endpoint, "csrf_token": client.headers["X-CSRF-Token"]},
            headers={"Accept": "text/html"},
        )
        azure = await client.post(
            "/config", json={"llm_endpoint": "http://127.0.0.1:9/v1?api-version=2024-10-21"}
        )
    assert as_json.status_code == 422
    assert says in as_json.json()["detail"]
    assert URL_SECRET not in as_json.json()["detail"]
    assert as_form.status_code == 422
    assert 'id="llm_endpoint-error"' in as_form.text
    assert azure.status_code == 200


@pytest.mark.usefixtures("clean_settings")
async def test_a_stored_endpoint_with_a_secret_is_shown_masked_everywhere(
    make_settings: Callable[..., Settings], engine: AsyncEngine
) -> None:
    """A value saved before the allowlist refused queries: nothing shows its secret."""
    endpoint = f"http://127.0.0.1:{free_port()}/?token={URL_SECRET}"
    async with AsyncSession(engine) as session:
        await repository.upsert(session, "llm_endpoint", endpoint)
        await session.commit()
    buffer = io.StringIO()
    configure_logging(level="DEBUG", fmt="json", stream=buffer, secrets=[])
    answers: list[Any] = []
    try:
        async with operator_client(make_settings) as client:
            pages = ("/health", "/healthz", "/status", "/health/fragment", "/", "/config")
            answers.extend(
                [
                    await client.get(path, headers={"Accept": accept})
                    for path in pages
                    for accept in ("application/json", "text/html")
                ]
            )
            answers.append(await client.post("/config/test/llm"))
            answers.append(await client.post("/config", json={"llm_model": "phi4"}))
    finally:
        configure_logging(level="WARNING", fmt="json")
    shown = [answer.text for answer in answers]
    assert all(answer.status_code < 500 for answer in answers)
    assert not [text for text in shown if URL_SECRET in text]
    assert URL_SECRET not in buffer.getvalue()
    assert any("?token=***" in text for text in shown)  # masked, not left out
    saved = answers[-1].json()
    assert saved["settings"]["llm_endpoint"]["value"].endswith("/?token=***")
    assert saved["saved"] == ["llm_model"]  # the masked value was not saved back
    async with AsyncSession(engine) as session:
        assert await repository.get_all(session) == {"llm_endpoint": endpoint, "llm_model": "phi4"}
