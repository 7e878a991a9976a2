"""The LLM adapter for the runtime values in force: chosen by ``llm_provider`` and
``llm_endpoint``, built in one place for the web app and the worker alike."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NamedTuple

from hearth.llm.adapter import LLMAdapter, UnconfiguredLLM

if TYPE_CHECKING:
    import httpx
    from pydantic import SecretStr

    from hearth.config.service import EffectiveSetting


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

    def __init__(self, client: Callable[[], httpx.AsyncClient], api_key: SecretStr | None) -> None:
        """``client`` is called only for an adapter that talks HTTP."""
        self._client = client
        self._api_key = api_key.get_secret_value() if api_key else None
        self._choice: LLMChoice | None = None
        self._adapter: LLMAdapter = UnconfiguredLLM()

    def adapter(self, choice: LLMChoice) -> LLMAdapter:
        """The adapter for ``choice``; ``UnconfiguredLLM`` when no endpoint is set."""
        if choice != self._choice:
            self._adapter = self._build(choice)
            self._choice = choice
        return self._adapter

    def _build(self, choice: LLMChoice) -> LLMAdapter:
        if not choice.endpoint:
            return UnconfiguredLLM()
        if choice.provider == "openai":
            from hearth.llm.openai import OpenAICompatibleAdapter

            return OpenAICompatibleAdapter(choice.endpoint, self._client(), self._api_key)
        from hearth.llm.ollama import OllamaAdapter

        return OllamaAdapter(choice.endpoint, self._client())
