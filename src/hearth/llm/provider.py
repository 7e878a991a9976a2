"""The LLM adapter for the runtime values in force: chosen by ``llm_provider`` and
``llm_endpoint``, built in one place for the web app and the worker alike."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NamedTuple

from hearth.kit.bound import BoundSecret
from hearth.llm.adapter import ChatMessage, LLMAdapter, LLMUnavailable, UnconfiguredLLM
from hearth.llm.circuit import Circuit

if TYPE_CHECKING:
    import httpx

    from hearth.config.service import EffectiveSetting
    from hearth.kit.checks import CheckResult


class LLMChoice(NamedTuple):
    """Which LLM server to talk to: the API it speaks and its endpoint."""

    provider: str
    endpoint: str

    @classmethod
    def of(cls, values: Mapping[str, EffectiveSetting]) -> LLMChoice:
        """The choice the runtime values in force make."""
        return cls(values["llm_provider"].value, values["llm_endpoint"].value)


class LLMProvider:
    """Builds the adapter for a choice, and keeps it until the choice changes (on this
    replica's config page or another's)."""

    def __init__(
        self, client: Callable[[], httpx.AsyncClient], api_key: BoundSecret | None
    ) -> None:
        """``client`` is called only for an adapter that talks HTTP. ``api_key`` goes only
        to its own origin: an endpoint elsewhere is spoken to without it."""
        self._client = client
        self._api_key = api_key or BoundSecret.absent("LLM_API_KEY")
        self._choice: LLMChoice | None = None
        self._adapter: LLMAdapter = Circuit(UnconfiguredLLM())

    def adapter(self, choice: LLMChoice) -> LLMAdapter:
        """The adapter for ``choice`` (``UnconfiguredLLM`` when no endpoint is set), behind
        a ``Circuit``: refused at once while its last check found the server unreachable."""
        if choice != self._choice:
            self._adapter = Circuit(self._build(choice))
            self._choice = choice
        return self._adapter

    def _build(self, choice: LLMChoice) -> LLMAdapter:
        if not choice.endpoint:
            return UnconfiguredLLM()
        if choice.provider == "openai":
            from hearth.llm.openai import OpenAICompatibleAdapter

            adapter = OpenAICompatibleAdapter(
                choice.endpoint, self._client(), self._api_key.for_url(choice.endpoint)
            )
            withheld = self._api_key.withheld_from(choice.endpoint)
            return KeyWithheld(adapter, withheld) if withheld else adapter
        from hearth.llm.ollama import OllamaAdapter

        return OllamaAdapter(choice.endpoint, self._client())


class KeyWithheld(LLMAdapter):
    """An adapter whose server gets no API key, saying why in every check and failure: an
    operator who sees HTTP 401 learns it is the binding, not the key."""

    def __init__(self, adapter: LLMAdapter, reason: str) -> None:
        self.adapter = adapter
        self.reason = reason

    async def check(self) -> CheckResult:
        """The adapter's check, its detail followed by why the key was withheld."""
        result = await self.adapter.check()
        return result.model_copy(update={"detail": f"{result.detail}; {self.reason}"})

    async def chat(self, messages: list[ChatMessage], *, model: str) -> str:
        """The adapter's reply; its ``LLMUnavailable`` says why the key was withheld."""
        try:
            return await self.adapter.chat(messages, model=model)
        except LLMUnavailable as exc:
            raise LLMUnavailable(f"{exc.message}; {self.reason}") from None

    async def embed(self, texts: list[str], *, model: str) -> list[list[float]]:
        """The adapter's vectors; its ``LLMUnavailable`` says why the key was withheld."""
        try:
            return await self.adapter.embed(texts, model=model)
        except LLMUnavailable as exc:
            raise LLMUnavailable(f"{exc.message}; {self.reason}") from None
