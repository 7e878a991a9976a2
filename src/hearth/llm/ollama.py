"""Ollama's HTTP API."""

from __future__ import annotations

import httpx

from hearth.kit.checks import CheckResult
from hearth.llm import http
from hearth.llm.adapter import (
    CHAT_TIMEOUT_SECONDS,
    EMBED_TIMEOUT_SECONDS,
    ChatMessage,
    LLMAdapter,
    Probe,
)


class OllamaAdapter(LLMAdapter):
    """Talks to an Ollama server at ``endpoint`` (for example http://127.0.0.1:11434)."""

    def __init__(
        self,
        endpoint: str,
        client: httpx.AsyncClient,
        *,
        chat_timeout: float = CHAT_TIMEOUT_SECONDS,
        embed_timeout: float = EMBED_TIMEOUT_SECONDS,
        check_timeout: float = http.CHECK_TIMEOUT_SECONDS,
    ) -> None:
        self.check_timeout = check_timeout
        self.endpoint, params = http.split_endpoint(endpoint)
        self.client = client
        self.server = http.LLMServer(client, server="Ollama", location=self.endpoint, params=params)
        self.location = self.server.location
        self.chat_timeout = chat_timeout
        self.embed_timeout = embed_timeout

    async def check(self) -> CheckResult:
        """``GET /api/tags``: ``ok`` with the number of models, or why it is unreachable."""
        return (await self.probe()).result

    async def probe(self) -> Probe:
        """``GET /api/tags``: the check and the names of the models pulled."""
        return await self.server.check_models(
            f"{self.endpoint}/api/tags",
            models_field="models",
            name_field="name",
            within=self.check_timeout,
        )

    async def chat(self, messages: list[ChatMessage], *, model: str) -> str:
        """``POST /api/chat``, not streamed: the reply's ``message.content``."""
        url = f"{self.endpoint}/api/chat"
        body = {
            "model": model,
            "messages": [message.model_dump() for message in messages],
            "stream": False,
        }
        payload = await self.server.post_json(url, body, within=self.chat_timeout)
        return http.text(payload, ("message", "content"), url=url)

    async def embed(self, texts: list[str], *, model: str) -> list[list[float]]:
        """``POST /api/embed`` with every text at once: its ``embeddings``, in order."""
        if not texts:
            return []
        url = f"{self.endpoint}/api/embed"
        body = {"model": model, "input": texts}
        payload = await self.server.post_json(url, body, within=self.embed_timeout)
        return http.vectors(http.field(payload, ("embeddings",), url=url), len(texts), url=url)
