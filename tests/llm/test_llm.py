"""The LLM adapters' chat and embeddings against a fake server speaking the real HTTP APIs of
Ollama, OpenAI and Azure OpenAI: round trips, and every failure as ``LLMUnavailable``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from pydantic import SecretStr

from hearth.errors import HearthError
from hearth.kit.bound import BoundSecret
from hearth.kit.urls import origin
from hearth.llm import http
from hearth.llm.adapter import ChatMessage, LLMAdapter, LLMUnavailable, UnconfiguredLLM
from hearth.llm.circuit import Circuit
from hearth.llm.ollama import OllamaAdapter
from hearth.llm.openai import AZURE_API_VERSION, OpenAICompatibleAdapter
from hearth.llm.provider import LLMChoice, LLMProvider
from tests.support.fake_llm import FakeLLM, fake_embedding, fake_llm
from tests.support.services import free_port

API_KEY = "sk-test-6f1c2e"
MODEL = "llama3.2:1b"
DEPLOYMENT = "/openai/deployments/chat-prod"
CONVERSATION = [
    ChatMessage(role="system", content="You answer briefly."),
    ChatMessage(role="user", content="first question"),
    ChatMessage(role="assistant", content="first answer"),
    ChatMessage(role="user", content="What is a hearth?"),
]
TEXTS = ["alpha", "beta", "gamma"]

Flavor = Callable[[FakeLLM, httpx.AsyncClient, float], LLMAdapter]

FLAVORS: dict[str, Flavor] = {
    "ollama": lambda server, client, timeout: OllamaAdapter(
        server.url, client, chat_timeout=timeout, embed_timeout=timeout
    ),
    "openai": lambda server, client, timeout: OpenAICompatibleAdapter(
        server.url, client, API_KEY, chat_timeout=timeout, embed_timeout=timeout
    ),
    "azure": lambda server, client, timeout: OpenAICompatibleAdapter(
        server.url + DEPLOYMENT, client, API_KEY, chat_timeout=timeout, embed_timeout=timeout
    ),
}


def bound_to(url: str) -> BoundSecret:
    """``API_KEY``, as if given in the environment with an endpoint on ``url``'s origin."""
    return BoundSecret("LLM_API_KEY", SecretStr(API_KEY), origin(url), "LLM_ENDPOINT", "")


@pytest.fixture
def server() -> Iterator[FakeLLM]:
    with fake_llm() as running:
        running.api_key = API_KEY
        yield running


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http_client:
        yield http_client


async def _call(adapter: LLMAdapter, call: str) -> object:
    if call == "chat":
        return await adapter.chat(CONVERSATION, model=MODEL)
    return await adapter.embed(TEXTS, model=MODEL)


async def test_ollama_chat_and_embed(server: FakeLLM, client: httpx.AsyncClient) -> None:
    adapter = OllamaAdapter(server.url + "/", client)
    # The fake answers a streamed reply unless told not to, as Ollama does.
    assert await adapter.chat(CONVERSATION, model=MODEL) == "What is a hearth?"
    chat = server.received[-1]
    assert (chat.method, chat.path) == ("POST", "/api/chat")
    assert chat.body == {
        "model": MODEL,
        "messages": [message.model_dump() for message in CONVERSATION],
        "stream": False,
    }
    assert await adapter.embed(TEXTS, model=MODEL) == [fake_embedding(t) for t in TEXTS]
    embed = server.received[-1]
    assert (embed.path, embed.body) == ("/api/embed", {"model": MODEL, "input": TEXTS})


async def test_ollama_names_a_model_it_does_not_have(
    server: FakeLLM, client: httpx.AsyncClient
) -> None:
    with pytest.raises(LLMUnavailable) as raised:
        await OllamaAdapter(server.url, client).chat(CONVERSATION, model="mistral:7b")
    assert raised.value.message == (
        f'{server.url}/api/chat answered HTTP 404: model "mistral:7b" not found, '
        "try pulling it first"
    )


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/"])
async def test_openai_compatible_chat_and_embed_with_the_bearer_key(
    server: FakeLLM, client: httpx.AsyncClient, suffix: str
) -> None:
    adapter = OpenAICompatibleAdapter(server.url + suffix, client, API_KEY)
    assert await adapter.chat(CONVERSATION, model="gpt-4o-mini") == "What is a hearth?"
    chat = server.received[-1]
    assert chat.path == "/v1/chat/completions"
    assert chat.headers["Authorization"] == f"Bearer {API_KEY}"
    assert chat.body["model"] == "gpt-4o-mini"
    assert chat.body["messages"][-1] == {"role": "user", "content": "What is a hearth?"}
    # The fake lists the vectors last first: the adapter orders them by index.
    vectors = await adapter.embed(TEXTS, model="text-embedding-3-small")
    assert vectors == [fake_embedding(t) for t in TEXTS]
    embed = server.received[-1]
    assert embed.path == "/v1/embeddings"
    assert embed.body == {"model": "text-embedding-3-small", "input": TEXTS}


async def test_openai_compatible_without_a_key_sends_no_authorization(
    server: FakeLLM, client: httpx.AsyncClient
) -> None:
    server.api_key = None  # LM Studio, vLLM and llama.cpp run without one by default
    adapter = OpenAICompatibleAdapter(server.url, client, None)
    assert await adapter.chat(CONVERSATION, model=MODEL) == "What is a hearth?"
    assert "Authorization" not in server.received[-1].headers


async def test_azure_deployment_uses_its_header_version_and_deployment(
    server: FakeLLM, client: httpx.AsyncClient
) -> None:
    adapter = OpenAICompatibleAdapter(server.url + DEPLOYMENT, client, API_KEY)
    assert await adapter.chat(CONVERSATION, model="ignored") == "What is a hearth?"
    chat = server.received[-1]
    assert chat.path == f"{DEPLOYMENT}/chat/completions"
    assert chat.query == {"api-version": AZURE_API_VERSION}
    assert chat.headers["api-key"] == API_KEY
    assert "Authorization" not in chat.headers
    assert "model" not in chat.body  # the deployment is the model
    assert await adapter.embed(TEXTS, model="ignored") == [fake_embedding(t) for t in TEXTS]
    assert server.received[-1].path == f"{DEPLOYMENT}/embeddings"

    check = await adapter.check()
    assert check.status == "ok"
    assert check.detail == f"Azure OpenAI at {server.url}{DEPLOYMENT}, 1 model"
    listing = server.received[-1]
    assert (listing.path, listing.query) == ("/openai/models", {"api-version": AZURE_API_VERSION})


async def test_azure_takes_the_api_version_from_the_url(
    server: FakeLLM, client: httpx.AsyncClient
) -> None:
    endpoint = f"{server.url}{DEPLOYMENT}/?api-version=2024-06-01"
    adapter = OpenAICompatibleAdapter(endpoint, client, API_KEY)
    assert await adapter.embed(["one"], model=MODEL) == [fake_embedding("one")]
    assert server.received[-1].path == f"{DEPLOYMENT}/embeddings"
    assert server.received[-1].query == {"api-version": "2024-06-01"}


@pytest.mark.parametrize("flavor", ["openai", "azure"])
@pytest.mark.parametrize("call", ["chat", "embed"])
async def test_a_refused_api_key_is_named_but_never_shown(
    server: FakeLLM, client: httpx.AsyncClient, flavor: str, call: str
) -> None:
    server.api_key = "sk-the-right-one"
    adapter = FLAVORS[flavor](server, client, 5)
    with pytest.raises(LLMUnavailable) as raised:
        await _call(adapter, call)
    message = raised.value.message
    assert "refused the API key (HTTP 401)" in message
    assert "LLM_API_KEY" in message
    assert API_KEY not in message  # the fake OpenAI quotes the refused key in its answer
    assert "sk-the-right-one" not in message


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize("call", ["chat", "embed"])
async def test_a_slow_server_is_given_up_on_after_the_timeout(
    server: FakeLLM, client: httpx.AsyncClient, flavor: str, call: str
) -> None:
    server.mode, server.delay = "slow", 2.0
    adapter = FLAVORS[flavor](server, client, 0.3)
    with pytest.raises(LLMUnavailable) as raised:
        await _call(adapter, call)
    assert raised.value.message.endswith("did not answer within 0.3 s")


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize("call", ["chat", "embed"])
@pytest.mark.parametrize(
    ("mode", "says"),
    [
        ("error", "answered HTTP 500: model runner crashed"),
        ("garbage", "JSON; is it"),
        ("shape", "answered without"),
    ],
)
async def test_a_failing_server_becomes_llm_unavailable(
    server: FakeLLM, client: httpx.AsyncClient, flavor: str, call: str, mode: str, says: str
) -> None:
    server.mode = mode
    with pytest.raises(LLMUnavailable) as raised:
        await _call(FLAVORS[flavor](server, client, 5), call)
    assert says in raised.value.message
    assert "\n" not in raised.value.message


@pytest.mark.parametrize(
    ("flavor", "call", "missing"),
    [
        ("ollama", "chat", "message.content"),
        ("ollama", "embed", "embeddings"),
        ("openai", "chat", "choices[0].message.content"),
        ("azure", "embed", "data"),
    ],
)
async def test_a_wrong_shape_names_the_missing_field(
    server: FakeLLM, client: httpx.AsyncClient, flavor: str, call: str, missing: str
) -> None:
    server.mode = "shape"
    with pytest.raises(LLMUnavailable) as raised:
        await _call(FLAVORS[flavor](server, client, 5), call)
    assert raised.value.message.endswith(f"answered without {missing}")


@pytest.mark.parametrize("flavor", FLAVORS)
async def test_a_missing_vector_is_noticed(
    server: FakeLLM, client: httpx.AsyncClient, flavor: str
) -> None:
    server.mode = "short"
    with pytest.raises(LLMUnavailable) as raised:
        await FLAVORS[flavor](server, client, 5).embed(TEXTS, model=MODEL)
    assert raised.value.message.endswith("answered 2 embeddings for 3 texts")


@pytest.mark.parametrize("flavor", FLAVORS)
async def test_an_embedding_pgvector_cannot_hold_is_refused(
    server: FakeLLM, client: httpx.AsyncClient, flavor: str
) -> None:
    """1e999 parses as infinity, which pgvector refuses: a search would fail in the database
    with a 500, and a worker's store with an error that no document records."""
    server.mode = "infinite"
    with pytest.raises(LLMUnavailable) as raised:
        await FLAVORS[flavor](server, client, 5).embed(TEXTS, model=MODEL)
    assert raised.value.message.endswith(
        "answered an embedding that is not a list of finite numbers"
    )


@pytest.mark.parametrize("flavor", FLAVORS)
async def test_an_embedding_beyond_32_bit_floats_is_refused(
    server: FakeLLM, client: httpx.AsyncClient, flavor: str
) -> None:
    """1e300 is finite, but pgvector stores 32-bit floats: it would fail in the database as
    infinity does."""
    server.mode = "huge"
    with pytest.raises(LLMUnavailable) as raised:
        await FLAVORS[flavor](server, client, 5).embed(TEXTS, model=MODEL)
    assert raised.value.message.endswith(
        "answered an embedding holding a number beyond ±3.4e38, which pgvector's 32-bit floats "
        "cannot hold"
    )


@pytest.mark.parametrize(
    ("vector", "says"),
    [
        ([0.5, 10**400], "beyond ±3.4e38"),  # an int too large for a float, not an OverflowError
        ([0.5, -3.5e38], "beyond ±3.4e38"),
        ([0.5, float("nan")], "not a list of finite numbers"),
        ([0.5, True], "not a list of finite numbers"),
        ([], "not a list of finite numbers"),
    ],
)
def test_what_is_wrong_with_an_embedding_is_named(vector: list[object], says: str) -> None:
    with pytest.raises(LLMUnavailable) as raised:
        http.vectors([vector], 1, url="http://127.0.0.1:11434")
    assert says in raised.value.message
    assert http.vectors([[0.5, -3.4e38, 7]], 1, url="http://127.0.0.1:11434") == [
        [0.5, -3.4e38, 7.0]
    ]


async def test_embedding_nothing_asks_nothing(server: FakeLLM, client: httpx.AsyncClient) -> None:
    for adapter in (factory(server, client, 5) for factory in FLAVORS.values()):
        assert await adapter.embed([], model=MODEL) == []
    assert server.requests == 0


@pytest.mark.parametrize("flavor", ["ollama", "openai"])
async def test_a_refused_connection_says_so_without_the_url_password(
    client: httpx.AsyncClient, flavor: str
) -> None:
    port = free_port()
    endpoint = f"http://hearth:url-secret@127.0.0.1:{port}"
    key = bound_to(endpoint)
    adapter = LLMProvider(lambda: client, key).adapter(LLMChoice(flavor, endpoint))
    for call in ("chat", "embed"):
        with pytest.raises(LLMUnavailable) as raised:
            await _call(adapter, call)
        message = raised.value.message
        assert message.startswith(f"cannot connect to http://hearth:***@127.0.0.1:{port}")
        assert "url-secret" not in message
        assert API_KEY not in message


async def test_unconfigured_llm_is_unavailable_with_the_remedy() -> None:
    for call in ("chat", "embed"):
        with pytest.raises(LLMUnavailable) as raised:
            await _call(UnconfiguredLLM(), call)
        assert raised.value.message == (
            "no LLM endpoint is configured; set it on the config page or in LLM_ENDPOINT"
        )
        assert raised.value.status_code == 503
        assert isinstance(raised.value, HearthError)


async def test_the_factory_builds_each_adapter(client: httpx.AsyncClient) -> None:
    ollama = LLMProvider(lambda: client, None).adapter(
        LLMChoice("ollama", "http://127.0.0.1:11434")
    )
    azure_url = "https://example.openai.azure.com/openai/deployments/gpt-4o?api-version=2025-01-01"
    azure = LLMProvider(lambda: client, bound_to(azure_url)).adapter(LLMChoice("openai", azure_url))
    # Each behind the circuit that refuses calls while its check finds the server down.
    assert isinstance(ollama, Circuit)
    assert isinstance(ollama.adapter, OllamaAdapter)
    assert isinstance(azure, Circuit)
    assert isinstance(azure.adapter, OpenAICompatibleAdapter)
    assert azure.adapter.deployment == "gpt-4o"
    assert azure.adapter.models_url == "https://example.openai.azure.com/openai/models"

    def never_called() -> httpx.AsyncClient:
        raise AssertionError("no client is needed without an endpoint")

    unconfigured = LLMProvider(never_called, None).adapter(LLMChoice("ollama", ""))
    assert isinstance(unconfigured, Circuit)
    assert isinstance(unconfigured.adapter, UnconfiguredLLM)
