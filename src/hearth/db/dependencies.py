"""FastAPI dependencies of the database: the unit of work every route that reads or writes
uses, the only place a request's transaction is committed."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from typing import Annotated

import psycopg
from fastapi import Depends, FastAPI, Request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from hearth.db.unit import Sessions, UnitOfWork, is_unavailable, unavailable, unit_of_work
from hearth.db.vector import VectorSupport
from hearth.errors import HearthError


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


def answer_unavailable_database(app: FastAPI) -> None:
    """Map, once for every route, a database that cannot be reached to a 503 that says why
    (with ``Retry-After``), wherever the failure surfaces: outside a unit of work too (a
    session of its own, a pool that ran dry). Other database errors stay 500s: bugs.

    Call after ``hearth.web.errors.register_error_handlers``: the answer is rendered by the
    handler of ``HearthError`` (JSON for programs, the error page for browsers)."""
    render = app.exception_handlers[HearthError]

    async def database_unavailable(request: Request, exc: Exception) -> Response:
        if not is_unavailable(exc):
            raise exc  # a refused query is a bug, logged as a 500 by the request middleware
        answer = render(request, unavailable(exc))
        return await answer if inspect.isawaitable(answer) else answer

    # DBAPIError covers SQLAlchemy's OperationalError and InterfaceError; psycopg's own
    # class arrives bare from code that uses the driver without SQLAlchemy.
    for kind in (DBAPIError, PoolTimeout, psycopg.OperationalError):
        app.add_exception_handler(kind, database_unavailable)
