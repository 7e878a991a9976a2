"""Every call of an LLM adapter is counted by operation and outcome and timed, through the
provider both the web app and the worker build, against a fake server speaking Ollama's API
(and a port that never answers)."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import CollectorRegistry

from hearth.llm.adapter import ChatMessage, LLMUnavailable
from hearth.llm.provider import LLMChoice, LLMProvider
from hearth.metrics.registry import LLMMetrics
from tests.support.fake_llm import black_hole, fake_llm

HELLO = [ChatMessage(role="user", content="hello")]


def counts(registry: CollectorRegistry) -> dict[tuple[str, str, str], float]:
    return {
        (s.labels["operation"], s.labels["outcome"], s.labels["process"]): s.value
        for family in registry.collect()
        for s in family.samples
        if s.name == "hearth_llm_calls_total"
    }


def timed(registry: CollectorRegistry, operation: str) -> float | None:
    return registry.get_sample_value(
        "hearth_llm_call_duration_seconds_count", {"operation": operation, "process": "web"}
    )


async def test_calls_are_counted_by_operation_and_outcome() -> None:
    registry = CollectorRegistry()
    recorder = LLMMetrics.create(registry, "web")
    async with httpx.AsyncClient() as client:
        with fake_llm() as server:
            llm = LLMProvider(lambda: client, None, recorder).adapter(
                LLMChoice("ollama", server.url)
            )
            assert (await llm.check()).status == "ok"
            assert await llm.chat(HELLO, model="llama3.2:1b") == "hello"
            await llm.embed(["a", "b"], model="nomic-embed-text")
            server.mode = "error"
            with pytest.raises(LLMUnavailable):
                await llm.embed(["a"], model="nomic-embed-text")
        # The server is gone: connection refused, an error (not silence: no circuit).
        assert (await llm.check()).status == "unreachable"
    assert counts(registry) == {
        ("check", "ok", "web"): 1,
        ("chat", "ok", "web"): 1,
        ("embed", "ok", "web"): 1,
        ("embed", "error", "web"): 1,
        ("check", "error", "web"): 1,
    }
    assert timed(registry, "embed") == 2


async def test_silence_is_a_timeout_and_the_calls_the_circuit_refuses_are_refused() -> None:
    registry = CollectorRegistry()
    recorder = LLMMetrics.create(registry, "web")
    async with httpx.AsyncClient() as client:
        with black_hole() as address:
            llm = LLMProvider(lambda: client, None, recorder).adapter(
                LLMChoice("ollama", f"http://{address}")
            )
            assert (await llm.check()).status == "unreachable"
            with pytest.raises(LLMUnavailable, match="does not answer"):
                await llm.chat(HELLO, model="llama3.2:1b")
    found = counts(registry)
    assert found == {("check", "timeout", "web"): 1, ("chat", "refused", "web"): 1}
    slow = registry.get_sample_value(
        "hearth_llm_call_duration_seconds_sum", {"operation": "check", "process": "web"}
    )
    assert slow is not None
    assert slow >= 1.0


async def test_an_unconfigured_llm_is_no_call() -> None:
    registry = CollectorRegistry()
    async with httpx.AsyncClient() as client:
        provider = LLMProvider(lambda: client, None, LLMMetrics.create(registry, "web"))
        llm = provider.adapter(LLMChoice("ollama", ""))
        assert (await llm.check()).status == "unconfigured"
        with pytest.raises(LLMUnavailable, match="no LLM endpoint"):
            await llm.embed(["a"], model="nomic-embed-text")
    assert counts(registry) == {}
