"""FastAPI dependencies of the runtime values."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.exc import SQLAlchemyError

from hearth.config.connections import LLMTrier
from hearth.config.service import ConfigService, RuntimeValues
from hearth.db.dependencies import UnitOfWorkDep
from hearth.db.unit import is_unavailable


async def get_config(request: Request) -> ConfigService:
    """The runtime values' service the app was started with."""
    config: ConfigService = request.app.state.config
    return config


ConfigDep = Annotated[ConfigService, Depends(get_config)]


async def get_runtime_values(config: ConfigDep, unit: UnitOfWorkDep) -> RuntimeValues:
    """The runtime values in force as this process read them lately, else read in the
    request's unit of work (one connection and one transaction a request, not a session of
    their own); those of the environment and the defaults while the database is down (the
    route then says what it cannot do)."""
    try:
        return await config.recent_values(unit.session)
    except (SQLAlchemyError, OSError) as exc:
        if not is_unavailable(exc):
            raise
        return config.values_without_database()


RuntimeValuesDep = Annotated[RuntimeValues, Depends(get_runtime_values)]


async def get_stored_runtime_values(config: ConfigDep, unit: UnitOfWorkDep) -> RuntimeValues:
    """The runtime values in force as the database holds them now, never those kept: for an
    action a script takes right after changing them elsewhere (`hearth settings import`,
    then a re-embedding). 503 while the database is down."""
    return await config.values_in_force(unit.session)


StoredRuntimeValuesDep = Annotated[RuntimeValues, Depends(get_stored_runtime_values)]


async def get_llm_trier(request: Request) -> LLMTrier:
    """What tries an LLM server from the config page: the app's LLM provider."""
    trier: LLMTrier = request.app.state.llm
    return trier


LLMTrierDep = Annotated[LLMTrier, Depends(get_llm_trier)]
