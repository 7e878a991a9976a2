"""The LLM adapter for the runtime values in force: chosen by ``llm_provider`` and
``llm_endpoint``, built in one place for the web app and the worker alike."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NamedTuple

from hearth.kit.bound import BoundSecret
from hearth.llm.adapter import ChatMessage, LLMAdapter, LLMUnavailable, Probe, UnconfiguredLLM
from hearth.llm.circuit import Circuit
from hearth.llm.http import CHECK_TIMEOUT_SECONDS
from hearth.llm.measured import CallRecorder, Measured

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
        self,
        client: Callable[[], httpx.AsyncClient],
        api_key: BoundSecret | None,
        recorder: CallRecorder | None = None,
    ) -> None:
        """``client`` is called only for an adapter that talks HTTP. ``api_key`` goes only
        to its own origin: an endpoint elsewhere is spoken to without it. ``recorder``
        counts and times each call of a configured server (the metrics)."""
        self._client = client
        self._recorder = recorder
        self._api_key = api_key or BoundSecret.absent("LLM_API_KEY")
        self._choice: LLMChoice | None = None
        self._adapter: LLMAdapter = Circuit(UnconfiguredLLM())

    def adapter(self, choice: LLMChoice) -> LLMAdapter:
        """The adapter for ``choice`` (``UnconfiguredLLM`` when no endpoint is set), behind
        a ``Circuit``: refused at once while its last check found the server unreachable.
        Each call is recorded, a refused one included, when a ``recorder`` was given."""
        if choice != self._choice:
            adapter: LLMAdapter = Circuit(self._build(choice))
            if self._recorder is not None and choice.endpoint:
                adapter = Measured(adapter, self._recorder)
            self._adapter = adapter
            self._choice = choice
        return self._adapter

    async def try_out(self, provider: str, endpoint: str, *, within: float) -> Probe:
        """Probe the server ``provider`` and ``endpoint`` name, before they are saved, with
        a fresh adapter (not kept, no circuit) whose check is given ``within`` seconds. The
        API key is bound as for any adapter: a tried endpoint elsewhere does not get it."""
        return await self._build(LLMChoice(provider, endpoint), check_timeout=within).probe()

    def _build(
        self, choice: LLMChoice, *, check_timeout: float = CHECK_TIMEOUT_SECONDS
    ) -> LLMAdapter:
        if not choice.endpoint:
            return UnconfiguredLLM()
        if choice.provider == "openai":
            from hearth.llm.openai import OpenAICompatibleAdapter

            adapter = OpenAICompatibleAdapter(
                choice.endpoint,
                self._client(),
                self._api_key.for_url(choice.endpoint),
                check_timeout=check_timeout,
            )
            withheld = self._api_key.withheld_from(choice.endpoint)
            return KeyWithheld(adapter, withheld) if withheld else adapter
        from hearth.llm.ollama import OllamaAdapter

        return OllamaAdapter(choice.endpoint, self._client(), check_timeout=check_timeout)


class KeyWithheld(LLMAdapter):
    """An adapter whose server gets no API key, saying why in every check and failure: an
    operator who sees HTTP 401 learns it is the binding, not the key."""

    def __init__(self, adapter: LLMAdapter, reason: str) -> None:
        self.adapter = adapter
        self.reason = reason

    async def check(self) -> CheckResult:
        """The adapter's check, its detail followed by why the key was withheld."""
        return (await self.probe()).result

    async def probe(self) -> Probe:
        """The adapter's probe, its detail followed by why the key was withheld."""
        result, models = await self.adapter.probe()
        detail = f"{result.detail}; {self.reason}"
        return Probe(result.model_copy(update={"detail": detail}), models)

    async def chat(self, messages: list[ChatMessage], *, model: str) -> str:
        """The adapter's reply; its ``LLMUnavailable`` says why the key was withheld."""
        try:
            return await self.adapter.chat(messages, model=model)
        except LLMUnavailable as exc:  # of the same kind: a timeout stays one (metrics)
            raise type(exc)(f"{exc.message}; {self.reason}") from None

    async def embed(self, texts: list[str], *, model: str) -> list[list[float]]:
        """The adapter's vectors; its ``LLMUnavailable`` says why the key was withheld."""
        try:
            return await self.adapter.embed(texts, model=model)
        except LLMUnavailable as exc:  # of the same kind: a timeout stays one (metrics)
            raise type(exc)(f"{exc.message}; {self.reason}") from None
