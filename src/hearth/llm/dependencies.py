"""FastAPI dependencies of the LLM: the adapter for the runtime values in force."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from hearth.config.dependencies import RuntimeValuesDep
from hearth.llm.adapter import LLMAdapter
from hearth.llm.provider import LLMChoice, LLMProvider


async def get_llm_provider(request: Request) -> LLMProvider:
    """The LLM provider the app was started with."""
    provider: LLMProvider = request.app.state.llm
    return provider


LLMProviderDep = Annotated[LLMProvider, Depends(get_llm_provider)]


async def get_llm(provider: LLMProviderDep, values: RuntimeValuesDep) -> LLMAdapter:
    """The LLM adapter for the runtime values in force."""
    return provider.adapter(LLMChoice.of(values))


LLMDep = Annotated[LLMAdapter, Depends(get_llm)]
