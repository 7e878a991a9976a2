"""Any server speaking OpenAI's HTTP API: OpenAI, LM Studio, vLLM, llama.cpp's server."""

from __future__ import annotations

import time

import httpx

from hearth.config.urls import without_credentials
from hearth.health.schemas import CheckResult
from hearth.llm.adapter import LLMAdapter

CHECK_TIMEOUT_SECONDS = 1.5


class OpenAICompatibleAdapter(LLMAdapter):
    """Talks to ``endpoint`` (with or without its ``/v1``), with an optional API key."""

    def __init__(self, endpoint: str, client: httpx.AsyncClient, api_key: str | None) -> None:
        base = endpoint.rstrip("/")
        self.base = base if base.endswith("/v1") else f"{base}/v1"
        self.client = client
        self.location = without_credentials(endpoint.rstrip("/"))
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    async def check(self) -> CheckResult:
        """``GET /v1/models``: ``ok`` with the number of models, or why not."""
        started = time.perf_counter()
        try:
            response = await self.client.get(
                f"{self.base}/models", headers=self.headers, timeout=CHECK_TIMEOUT_SECONDS
            )
        except httpx.TimeoutException:
            detail = f"{self.location} did not answer within {CHECK_TIMEOUT_SECONDS:g} s"
            return CheckResult.timed("unreachable", detail, started)
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            return CheckResult.timed("unreachable", f"{self.location}: {reason}", started)
        if response.status_code in (401, 403):
            status = response.status_code
            detail = f"{self.location} refused the API key (HTTP {status}); check LLM_API_KEY"
            return CheckResult.timed("unreachable", detail, started)
        if response.status_code != 200:
            detail = f"{self.location}/v1/models answered HTTP {response.status_code}"
            return CheckResult.timed("unreachable", detail, started)
        try:
            models = response.json().get("data", [])
        except (ValueError, AttributeError):
            detail = f"{self.location}/v1/models did not answer OpenAI's JSON"
            return CheckResult.timed("unreachable", detail, started)
        count = len(models) if isinstance(models, list) else 0
        noun = "model" if count == 1 else "models"
        return CheckResult.timed(
            "ok", f"OpenAI-compatible at {self.location}, {count} {noun}", started
        )
