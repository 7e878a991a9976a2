"""Any server speaking OpenAI's HTTP API: OpenAI, LM Studio, vLLM, llama.cpp's server."""

from __future__ import annotations

import httpx

from hearth.config.urls import without_credentials
from hearth.health.schemas import CheckResult
from hearth.llm.adapter import LLMAdapter
from hearth.llm.http import check_model_listing


class OpenAICompatibleAdapter(LLMAdapter):
    """Talks to ``endpoint`` (with or without its ``/v1``), with an optional API key."""

    def __init__(self, endpoint: str, client: httpx.AsyncClient, api_key: str | None) -> None:
        base = endpoint.rstrip("/")
        self.base = base if base.endswith("/v1") else f"{base}/v1"
        self.client = client
        self.location = without_credentials(base)
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    async def check(self) -> CheckResult:
        """``GET /v1/models``: ``ok`` with the number of models, or why not."""
        return await check_model_listing(
            self.client,
            self.base,
            "/models",
            location=self.location,
            server="OpenAI-compatible server",
            models_field="data",
            headers=self.headers,
        )
