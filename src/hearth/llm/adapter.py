"""The interface every LLM connection implements, so the rest of Hearth never names a vendor."""

from __future__ import annotations

from abc import ABC, abstractmethod

from hearth.health.schemas import CheckResult


class LLMAdapter(ABC):
    """An LLM server Hearth talks to. Its absence degrades Hearth; it never breaks it."""

    @abstractmethod
    async def check(self) -> CheckResult:
        """Whether the server answers, as a health check result; never raises."""


class UnconfiguredLLM(LLMAdapter):
    """Stands in when no endpoint is set: AI features are off, by choice."""

    async def check(self) -> CheckResult:
        return CheckResult(
            status="unconfigured",
            detail="no LLM endpoint: set it on the config page or in LLM_ENDPOINT",
        )
