"""LLM_API_KEY goes only to the origin the environment named with it, and an endpoint's path
and query arrive as written: checked with fake LLM servers that record every request."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from hearth.config.loader import load_settings
from hearth.config.settings import Settings
from hearth.errors import StartupError
from hearth.llm.adapter import ChatMessage, LLMUnavailable
from hearth.llm.provider import LLMChoice, LLMProvider
from tests.support.fake_llm import FakeLLM, fake_llm

API_KEY = "sk-bound-5be1c0ffee"
SECRET_KEY = "k" * 40
AZURE = "/openai/deployments/chat-prod"
HELLO = [ChatMessage(role="user", content="hello")]


@pytest.fixture
def bound() -> Iterator[FakeLLM]:
    """The server the environment named."""
    with fake_llm() as server:
        server.api_key = API_KEY
        yield server


@pytest.fixture
def elsewhere() -> Iterator[FakeLLM]:
    """Another server, on another origin: a listener an operator session could point at."""
    with fake_llm() as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http_client:
        yield http_client


def settings(**values: Any) -> Settings:
    return load_settings(_env_file=None, secret_key=SECRET_KEY, llm_api_key=API_KEY, **values)


def keys_sent(server: FakeLLM) -> list[str | None]:
    """What each request carried as a key: the Bearer token or Azure's api-key header."""
    return [
        request.headers.get("Authorization") or request.headers.get("api-key")
        for request in server.received
    ]


@pytest.mark.parametrize("path", ["", "/v1", AZURE])
async def test_the_key_goes_to_the_endpoint_the_environment_named(
    bound: FakeLLM, client: httpx.AsyncClient, path: str
) -> None:
    endpoint = bound.url + path
    provider = LLMProvider(lambda: client, settings(llm_endpoint=endpoint).bound_llm_api_key())
    adapter = provider.adapter(LLMChoice("openai", endpoint))
    check = await adapter.check()
    assert await adapter.chat(HELLO, model="gpt-4o-mini") == "hello"
    assert check.status == "ok"
    assert "withheld" not in check.detail
    assert keys_sent(bound) in ([f"Bearer {API_KEY}"] * 2, [API_KEY] * 2)


@pytest.mark.parametrize("path", ["", AZURE])
async def test_an_endpoint_on_another_origin_gets_no_key_and_says_why(
    bound: FakeLLM, elsewhere: FakeLLM, client: httpx.AsyncClient, path: str
) -> None:
    key = settings(llm_trusted_origin=bound.url).bound_llm_api_key()
    adapter = LLMProvider(lambda: client, key).adapter(LLMChoice("openai", elsewhere.url + path))
    check = await adapter.check()
    elsewhere.api_key = "whatever-it-wants"  # now it refuses requests without its key
    with pytest.raises(LLMUnavailable) as raised:
        await adapter.embed(["x"], model="text-embedding-3-small")
    assert keys_sent(elsewhere) == [None, None]
    assert all(API_KEY not in str(request.headers) for request in elsewhere.received)
    port = elsewhere.server_address[1]
    reason = (
        f"LLM_API_KEY is withheld from http://127.0.0.1:{port}: it may be sent only to "
        f"{bound.url} (named by LLM_TRUSTED_ORIGIN in the environment)"
    )
    # OpenAI-compatible servers often need no key (the check passes); Azure always does.
    assert check.detail.endswith(f"1 model; {reason}" if path == "" else f"LLM_API_KEY; {reason}")
    assert raised.value.message.endswith(f"(HTTP 401); check LLM_API_KEY; {reason}")
    assert bound.received == []


async def test_the_same_host_on_another_port_or_scheme_is_another_origin(
    bound: FakeLLM, elsewhere: FakeLLM, client: httpx.AsyncClient
) -> None:
    key = settings(llm_trusted_origin=bound.url).bound_llm_api_key()
    assert key.for_url(bound.url + "/any/path?api-version=1") == API_KEY
    assert key.for_url(bound.url.replace("127.0.0.1", "LOCALHOST")) is None
    assert key.for_url(bound.url.replace("http://", "https://")) is None
    assert key.for_url(elsewhere.url) is None
    assert key.for_url("not a url") is None


async def test_without_an_origin_in_the_environment_the_key_goes_nowhere(
    elsewhere: FakeLLM, client: httpx.AsyncClient
) -> None:
    key = settings().bound_llm_api_key()
    adapter = LLMProvider(lambda: client, key).adapter(LLMChoice("openai", elsewhere.url))
    check = await adapter.check()
    assert keys_sent(elsewhere) == [None]
    assert key.unbound
    assert check.detail.endswith(
        "LLM_API_KEY is withheld: no LLM_ENDPOINT or LLM_TRUSTED_ORIGIN in the environment "
        "names the server it may be sent to"
    )


async def test_ollama_is_never_sent_the_key(bound: FakeLLM, client: httpx.AsyncClient) -> None:
    key = settings(llm_endpoint=bound.url).bound_llm_api_key()
    adapter = LLMProvider(lambda: client, key).adapter(LLMChoice("ollama", bound.url))
    assert (await adapter.check()).status == "ok"
    assert keys_sent(bound) == [None]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("https://api.openai.com/v1", "must name an origin only"),
        ("https://user:pw@api.openai.com", "must name an origin only"),
        ("https://api.openai.com?x=1", "must name an origin only"),
        ("ftp://api.openai.com", "must be an http:// or https:// origin"),
    ],
)
def test_a_trusted_origin_is_an_origin(value: str, says: str) -> None:
    with pytest.raises(StartupError) as raised:
        settings(llm_trusted_origin=value)
    assert f"LLM_TRUSTED_ORIGIN: {says}" in raised.value.message
    assert "pw" not in raised.value.message


def test_a_trusted_origin_is_normalised_and_must_agree_with_the_endpoint() -> None:
    assert settings(llm_trusted_origin="HTTPS://API.openai.com/").llm_trusted_origin == (
        "https://api.openai.com:443"
    )
    same = settings(
        llm_endpoint="https://api.openai.com/v1", llm_trusted_origin="https://api.openai.com"
    )
    assert same.bound_llm_api_key().origin == "https://api.openai.com:443"
    with pytest.raises(StartupError) as raised:
        settings(llm_endpoint="http://ollama:11434", llm_trusted_origin="https://api.openai.com")
    assert "LLM_TRUSTED_ORIGIN: is not the origin of LLM_ENDPOINT (http://ollama:11434)" in (
        raised.value.message
    )


@pytest.mark.parametrize(
    ("provider", "path", "expected"),
    [
        ("ollama", "/?api-version=2024-10-21", "/api/tags"),
        ("openai", "/v1?api-version=2024-10-21", "/v1/models"),
        ("openai", "?api-version=2024-10-21", "/v1/models"),
        ("openai", f"{AZURE}?api-version=2024-06-01", "/openai/models"),
    ],
)
async def test_an_endpoint_with_a_query_keeps_its_path_and_query(
    bound: FakeLLM, client: httpx.AsyncClient, provider: str, path: str, expected: str
) -> None:
    endpoint = bound.url + path
    key = settings(llm_endpoint=endpoint).bound_llm_api_key()
    adapter = LLMProvider(lambda: client, key).adapter(LLMChoice(provider, endpoint))
    await adapter.check()
    await adapter.embed(["x"], model="nomic-embed-text")
    listing, embedding = bound.received
    version = path.partition("api-version=")[2]
    assert (listing.path, listing.query) == (expected, {"api-version": version})
    assert embedding.query == {"api-version": version}
    assert (
        embedding.path
        == {
            "ollama": "/api/embed",
            "openai": f"{AZURE}/embeddings" if AZURE in path else "/v1/embeddings",
        }[provider]
    )
