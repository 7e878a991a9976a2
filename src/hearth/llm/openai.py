"""Any server speaking OpenAI's HTTP API: OpenAI, LM Studio, vLLM, llama.cpp's server, and
Azure OpenAI's deployments."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

import httpx

from hearth.kit.checks import CheckResult
from hearth.llm import http
from hearth.llm.adapter import (
    CHAT_TIMEOUT_SECONDS,
    EMBED_TIMEOUT_SECONDS,
    ChatMessage,
    LLMAdapter,
    LLMUnavailable,
    Probe,
)

AZURE_API_VERSION = "2024-10-21"  # the latest generally available data-plane version

# Azure OpenAI's deployment URLs, https://<resource>.openai.azure.com/openai/deployments/<name>,
# recognised by their path alone so that a proxy in front of Azure works the same.
_AZURE_DEPLOYMENT = re.compile(r"^(?P<account>.*?)/openai/deployments/(?P<deployment>[^/]+)")


class OpenAICompatibleAdapter(LLMAdapter):
    """Talks to ``endpoint`` (with or without its ``/v1``), with an optional API key sent
    as a Bearer token.

    An Azure OpenAI deployment URL (``…/openai/deployments/<name>``, optionally with
    ``?api-version=…``, default ``AZURE_API_VERSION``) is spoken to as Azure expects: the
    key in an ``api-key`` header, ``api-version`` on every request, and the deployment
    standing for the model, so the ``model`` argument of ``chat``/``embed`` is ignored.
    """

    def __init__(  # noqa: PLR0913 (three timeouts, each with its default)
        self,
        endpoint: str,
        client: httpx.AsyncClient,
        api_key: str | None,
        *,
        chat_timeout: float = CHAT_TIMEOUT_SECONDS,
        embed_timeout: float = EMBED_TIMEOUT_SECONDS,
        check_timeout: float = http.CHECK_TIMEOUT_SECONDS,
    ) -> None:
        self.client = client
        self.check_timeout = check_timeout
        self.chat_timeout = chat_timeout
        self.embed_timeout = embed_timeout
        base, params = http.split_endpoint(endpoint)
        parts = urlsplit(base)
        azure = _AZURE_DEPLOYMENT.match(parts.path)
        if azure is None:
            self.deployment: str | None = None
            self.base = base if base.endswith("/v1") else f"{base}/v1"
            self.models_url = f"{self.base}/models"
            self.server = http.LLMServer(
                client,
                server="OpenAI-compatible server",
                location=base,
                auth_headers={"Authorization": f"Bearer {api_key}"} if api_key else None,
                params=params,
            )
        else:
            self.deployment = azure["deployment"]
            self.base = urlunsplit((parts.scheme, parts.netloc, azure[0], "", ""))
            # Azure lists no models per deployment; the resource's list is the cheap check.
            account = urlunsplit((parts.scheme, parts.netloc, azure["account"], "", ""))
            self.models_url = f"{account}/openai/models"
            self.server = http.LLMServer(
                client,
                server="Azure OpenAI",
                location=self.base,
                auth_headers={"api-key": api_key} if api_key else None,
                params={"api-version": AZURE_API_VERSION, **params},
            )
        self.location = self.server.location

    async def check(self) -> CheckResult:
        """``GET /v1/models`` (for Azure, the resource's ``/openai/models``): ``ok`` with
        the number of models, or why not."""
        return (await self.probe()).result

    async def probe(self) -> Probe:
        """The check and the ``id`` of each model the server lists."""
        return await self.server.check_models(
            self.models_url, models_field="data", name_field="id", within=self.check_timeout
        )

    async def chat(self, messages: list[ChatMessage], *, model: str) -> str:
        """``POST /chat/completions``: the first choice's ``message.content``."""
        url = f"{self.base}/chat/completions"
        body = self._body(model, messages=[message.model_dump() for message in messages])
        payload = await self.server.post_json(url, body, within=self.chat_timeout)
        return http.text(payload, ("choices", 0, "message", "content"), url=url)

    async def embed(self, texts: list[str], *, model: str) -> list[list[float]]:
        """``POST /embeddings`` with every text at once: the vectors in ``index`` order."""
        if not texts:
            return []
        url = f"{self.base}/embeddings"
        payload = await self.server.post_json(
            url, self._body(model, input=texts), within=self.embed_timeout
        )
        return http.vectors(
            _by_index(http.field(payload, ("data",), url=url), url), len(texts), url=url
        )

    def _body(self, model: str, **fields: object) -> dict[str, object]:
        # An Azure deployment has its model; naming another one is at best ignored.
        return fields if self.deployment else {"model": model, **fields}


def _by_index(items: object, url: str) -> list[object]:
    """The ``embedding`` of each item of OpenAI's ``data`` list, sorted by ``index`` (the
    API does not promise the order); items without an index keep their place."""
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise LLMUnavailable(f"{http.shown(url)} answered no list of embeddings")
    indexes = [item.get("index", place) for place, item in enumerate(items)]
    if not all(isinstance(index, int) for index in indexes):
        raise LLMUnavailable(f"{http.shown(url)} answered embeddings with a non-numeric index")
    ordered = sorted(zip(indexes, items, strict=True), key=lambda pair: pair[0])
    return [item.get("embedding") for _, item in ordered]
