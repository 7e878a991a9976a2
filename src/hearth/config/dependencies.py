"""FastAPI dependencies of the runtime values."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from hearth.config.connections import LLMTrier
from hearth.config.service import ConfigService, RuntimeValues
from hearth.db.dependencies import SessionsDep


async def get_config(request: Request) -> ConfigService:
    """The runtime values' service the app was started with."""
    config: ConfigService = request.app.state.config
    return config


ConfigDep = Annotated[ConfigService, Depends(get_config)]


async def get_runtime_values(config: ConfigDep, sessions: SessionsDep) -> RuntimeValues:
    """The runtime values in force (environment and defaults while the database is down)."""
    return await config.read_values(sessions)


RuntimeValuesDep = Annotated[RuntimeValues, Depends(get_runtime_values)]


async def get_llm_trier(request: Request) -> LLMTrier:
    """What tries an LLM server from the config page: the app's LLM provider."""
    trier: LLMTrier = request.app.state.llm
    return trier


LLMTrierDep = Annotated[LLMTrier, Depends(get_llm_trier)]
