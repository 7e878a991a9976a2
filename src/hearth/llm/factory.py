"""Choose the LLM adapter from the runtime settings ``llm_provider`` and ``llm_endpoint``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NamedTuple

from hearth.llm.adapter import LLMAdapter, UnconfiguredLLM

if TYPE_CHECKING:
    import httpx

    from hearth.config.service import EffectiveSetting


class LLMChoice(NamedTuple):
    provider: str
    endpoint: str

    @classmethod
    def of(cls, values: Mapping[str, EffectiveSetting]) -> LLMChoice:
        """The choice the runtime settings in force make."""
        return cls(values["llm_provider"].value, values["llm_endpoint"].value)


def build_adapter(
    choice: LLMChoice, client: Callable[[], httpx.AsyncClient], api_key: str | None
) -> LLMAdapter:
    """The adapter for ``choice``; ``UnconfiguredLLM`` when no endpoint is set. ``client`` is
    called only for an adapter that talks HTTP."""
    if not choice.endpoint:
        return UnconfiguredLLM()
    if choice.provider == "openai":
        from hearth.llm.openai import OpenAICompatibleAdapter

        return OpenAICompatibleAdapter(choice.endpoint, client(), api_key)
    from hearth.llm.ollama import OllamaAdapter

    return OllamaAdapter(choice.endpoint, client())
