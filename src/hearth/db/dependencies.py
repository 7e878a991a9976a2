"""FastAPI dependencies of the database: the unit of work every route that reads or writes
uses, the only place a request's transaction is committed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from hearth.db.unit import Sessions, UnitOfWork, unit_of_work
from hearth.db.vector import VectorSupport


async def get_sessions(request: Request) -> Sessions | None:
    """The app's session factory; None when it has no database to connect to."""
    # async: FastAPI runs a plain ``def`` dependency in a worker thread, on every request.
    sessions: Sessions | None = request.app.state.sessions
    return sessions


SessionsDep = Annotated[Sessions | None, Depends(get_sessions)]


async def get_unit_of_work(sessions: SessionsDep) -> AsyncIterator[UnitOfWork]:
    """The request's unit of work: committed if the route succeeds, else rolled back."""
    async with unit_of_work(sessions) as unit:
        yield unit


# scope="function": the commit and the after-commit actions happen before the response is
# sent, so a commit that fails becomes this request's error instead of a false success.
UnitOfWorkDep = Annotated[UnitOfWork, Depends(get_unit_of_work, scope="function")]


async def get_session(unit: UnitOfWorkDep) -> AsyncSession:
    """The session of the request's unit of work."""
    return unit.session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_vector_support(request: Request) -> VectorSupport:
    """Whether this process's database can search vectors, as the app keeps track of it."""
    vector: VectorSupport = request.app.state.vector
    return vector


VectorSupportDep = Annotated[VectorSupport, Depends(get_vector_support)]
