"""Every call of an LLM adapter counted and timed, by operation and outcome, for the metrics
(``hearth_llm_calls_total``, ``hearth_llm_call_duration_seconds``): a wrapper around the
adapter the provider builds, so each adapter is measured the same way.

Outcomes: ``ok``; ``timeout`` (no answer in time); ``refused`` (the circuit refused the call
at once: the server was found silent); ``error`` (anything else: a connection refused, an
HTTP error, an answer of the wrong shape)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Literal, Protocol

from hearth.llm.adapter import ChatMessage, LLMAdapter, LLMTimeout, LLMUnavailable
from hearth.llm.circuit import CircuitOpen
from hearth.llm.http import CHECK_TIMEOUT_SECONDS

if TYPE_CHECKING:
    from hearth.kit.checks import CheckResult

Operation = Literal["check", "chat", "embed"]
Outcome = Literal["ok", "error", "timeout", "refused"]


class CallRecorder(Protocol):
    """Where measured calls go (``hearth.metrics.registry.LLMMetrics``)."""

    def record(self, operation: str, outcome: str, seconds: float) -> None:
        """Count one call of ``operation`` that ended in ``outcome`` after ``seconds``."""


def outcome_of(exc: LLMUnavailable) -> Outcome:
    """How a failed call ended, for the metrics."""
    if isinstance(exc, CircuitOpen):
        return "refused"
    return "timeout" if isinstance(exc, LLMTimeout) else "error"


class Measured(LLMAdapter):
    """``adapter``, each call of it recorded in ``recorder``."""

    def __init__(self, adapter: LLMAdapter, recorder: CallRecorder) -> None:
        self.adapter = adapter
        self.recorder = recorder

    async def check(self) -> CheckResult:
        """The adapter's check; ``unreachable`` after the check's timeout counts as one."""
        started = time.perf_counter()
        try:
            result = await self.adapter.check()
        except asyncio.CancelledError:  # the health service's budget ran out
            self.recorder.record("check", "timeout", time.perf_counter() - started)
            raise
        seconds = time.perf_counter() - started
        if result.status == "ok":
            outcome: Outcome = "ok"
        else:
            outcome = "timeout" if seconds >= CHECK_TIMEOUT_SECONDS else "error"
        self.recorder.record("check", outcome, seconds)
        return result

    async def chat(self, messages: list[ChatMessage], *, model: str) -> str:
        """The adapter's reply, the call recorded."""
        started = time.perf_counter()
        try:
            reply = await self.adapter.chat(messages, model=model)
        except LLMUnavailable as exc:
            self.recorder.record("chat", outcome_of(exc), time.perf_counter() - started)
            raise
        self.recorder.record("chat", "ok", time.perf_counter() - started)
        return reply

    async def embed(self, texts: list[str], *, model: str) -> list[list[float]]:
        """The adapter's vectors, the call recorded."""
        started = time.perf_counter()
        try:
            vectors = await self.adapter.embed(texts, model=model)
        except LLMUnavailable as exc:
            self.recorder.record("embed", outcome_of(exc), time.perf_counter() - started)
            raise
        self.recorder.record("embed", "ok", time.perf_counter() - started)
        return vectors
