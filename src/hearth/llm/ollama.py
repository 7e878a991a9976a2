"""Ollama's HTTP API."""

from __future__ import annotations

import httpx

from hearth.config.urls import without_credentials
from hearth.health.schemas import CheckResult
from hearth.llm.adapter import LLMAdapter
from hearth.llm.http import check_model_listing


class OllamaAdapter(LLMAdapter):
    """Talks to an Ollama server at ``endpoint`` (for example http://127.0.0.1:11434)."""

    def __init__(self, endpoint: str, client: httpx.AsyncClient) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.client = client
        self.location = without_credentials(self.endpoint)

    async def check(self) -> CheckResult:
        """``GET /api/tags``: ``ok`` with the number of models, or why it is unreachable."""
        return await check_model_listing(
            self.client,
            self.endpoint,
            "/api/tags",
            location=self.location,
            server="Ollama",
            models_field="models",
        )
