"""FastAPI dependencies of the documents: the engine re-embedding works on."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncEngine

from hearth.db.dependencies import SessionsDep
from hearth.db.unit import DatabaseUnavailable


async def get_engine(sessions: SessionsDep) -> AsyncEngine:
    """The app's engine, for work done in several transactions of its own (re-embedding
    marks documents in batches); 503 when the app has no database."""
    if sessions is None:
        raise DatabaseUnavailable("The database is unavailable: no database is configured.")
    engine: AsyncEngine = sessions.kw["bind"]
    return engine


EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
