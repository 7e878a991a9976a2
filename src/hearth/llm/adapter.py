"""The interface every LLM connection implements, so the rest of Hearth never names a vendor."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

from hearth.errors import HearthError
from hearth.kit.checks import CheckResult
from hearth.kit.urls import mask_urls

CHAT_TIMEOUT_SECONDS = 120.0  # a small model on a Raspberry Pi takes its time
EMBED_TIMEOUT_SECONDS = 60.0
_UNCONFIGURED = "no LLM endpoint is configured; set it on the config page or in LLM_ENDPOINT"

Role = Literal["system", "user", "assistant"]


class ChatMessage(BaseModel):
    """One turn of a conversation, as Ollama and the OpenAI API both spell it."""

    model_config = ConfigDict(frozen=True)

    role: Role
    content: str


class LLMUnavailable(HearthError):
    """The LLM could not do what was asked. The message says why in one line, without
    secrets; Hearth answers 503 with it and carries on without the LLM."""

    status_code = 503

    def __init__(self, reason: str) -> None:
        # One line, and every URL masked even if a library's message quoted a URL.
        super().__init__(mask_urls(" ".join(reason.split())))


class LLMTimeout(LLMUnavailable):
    """The LLM server did not answer in time (counted apart in the metrics)."""


class Probe(NamedTuple):
    """A check's result and the models the server said it has (empty when unknown)."""

    result: CheckResult
    models: tuple[str, ...] = ()


class LLMAdapter(ABC):
    """An LLM server Hearth talks to. Its absence degrades Hearth; it never breaks it."""

    @abstractmethod
    async def check(self) -> CheckResult:
        """Whether the server answers, as a health check result; never raises."""

    async def probe(self) -> Probe:
        """The check, with the names of the server's models where it lists them (the
        config page offers them as choices); never raises."""
        return Probe(await self.check())

    @abstractmethod
    async def chat(self, messages: list[ChatMessage], *, model: str) -> str:
        """The assistant's reply to ``messages``; ``LLMUnavailable`` on any failure."""

    @abstractmethod
    async def embed(self, texts: list[str], *, model: str) -> list[list[float]]:
        """One vector per text, in order, all of one non-zero length; ``LLMUnavailable``
        on any failure, a malformed answer included."""


class UnconfiguredLLM(LLMAdapter):
    """Stands in when no endpoint is set: AI features are off, by choice."""

    async def check(self) -> CheckResult:
        """``unconfigured``, saying where to set the endpoint."""
        return CheckResult(
            status="unconfigured",
            detail="no LLM endpoint: set it on the config page or in LLM_ENDPOINT",
        )

    async def chat(self, messages: list[ChatMessage], *, model: str) -> str:  # noqa: ARG002 (the interface's signature)
        """Always ``LLMUnavailable``: there is no server to ask."""
        raise LLMUnavailable(_UNCONFIGURED)

    async def embed(self, texts: list[str], *, model: str) -> list[list[float]]:  # noqa: ARG002 (the interface's signature)
        """Always ``LLMUnavailable``: there is no server to ask."""
        raise LLMUnavailable(_UNCONFIGURED)
