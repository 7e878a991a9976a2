"""Ollama's HTTP API."""

from __future__ import annotations

import time

import httpx

from hearth.config.urls import without_credentials
from hearth.health.schemas import CheckResult
from hearth.llm.adapter import LLMAdapter

CHECK_TIMEOUT_SECONDS = 1.5


class OllamaAdapter(LLMAdapter):
    """Talks to an Ollama server at ``endpoint`` (for example http://127.0.0.1:11434)."""

    def __init__(self, endpoint: str, client: httpx.AsyncClient) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.client = client
        self.location = without_credentials(self.endpoint)

    async def check(self) -> CheckResult:
        """``GET /api/tags``: ``ok`` with the number of models, or why it is unreachable."""
        started = time.perf_counter()
        url = f"{self.endpoint}/api/tags"
        try:
            response = await self.client.get(url, timeout=CHECK_TIMEOUT_SECONDS)
        except httpx.TimeoutException:
            detail = f"{self.location} did not answer within {CHECK_TIMEOUT_SECONDS:g} s"
            return CheckResult.timed("unreachable", detail, started)
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            return CheckResult.timed("unreachable", f"{self.location}: {reason}", started)
        if response.status_code != 200:
            detail = f"{self.location}/api/tags answered HTTP {response.status_code}"
            return CheckResult.timed("unreachable", detail, started)
        try:
            models = response.json().get("models", [])
        except (ValueError, AttributeError):
            detail = f"{self.location}/api/tags did not answer Ollama's JSON; is it Ollama?"
            return CheckResult.timed("unreachable", detail, started)
        count = len(models) if isinstance(models, list) else 0
        noun = "model" if count == 1 else "models"
        return CheckResult.timed("ok", f"Ollama at {self.location}, {count} {noun}", started)
