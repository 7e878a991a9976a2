"""The unit of work: one transaction, committed or rolled back at the edge (a request, an
MCP tool call), and what must happen only once it is committed.

A worker must never pick up a task for data it cannot see yet, or for a change that was
rolled back: tasks are sent after the commit (``UnitOfWork.after_commit``). The database
being unavailable is mapped here, once, to a 503 that says why.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import psycopg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hearth.db.engine import error_reason
from hearth.errors import HearthError

Sessions = async_sessionmaker[AsyncSession]
AfterCommit = Callable[[], Awaitable[None]]


class DatabaseUnavailable(HearthError):
    """The database cannot be reached (not configured, down, restarting): 503 and why."""

    status_code = 503


def unavailable(exc: BaseException) -> DatabaseUnavailable:
    """The 503 for a failure ``is_unavailable`` recognised, with the driver's reason."""
    return DatabaseUnavailable(f"The database is unavailable: {error_reason(exc)}.")


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached, as opposed to refusing a query."""
    if isinstance(
        exc, OperationalError | InterfaceError | PoolTimeout | OSError | psycopg.OperationalError
    ):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


@dataclass
class UnitOfWork:
    """The session of one unit of work, and the actions waiting for its commit."""

    session: AsyncSession
    waiting: list[AfterCommit] = field(default_factory=list)  # for the commit, in order

    def after_commit(self, action: AfterCommit) -> None:
        """Run ``action`` once the transaction is committed, never if it is rolled back.
        The data is stored by then, so ``action`` must handle its own failures."""
        self.waiting.append(action)


@asynccontextmanager
async def unit_of_work(sessions: Sessions | None) -> AsyncIterator[UnitOfWork]:
    """Commit when the block succeeds, roll back when it raises, then run the after-commit
    actions. ``DatabaseUnavailable`` (503) when the database cannot be reached."""
    if sessions is None:
        raise DatabaseUnavailable("The database is not available.")
    try:
        async with sessions() as session:
            unit = UnitOfWork(session)
            try:
                yield unit
            except BaseException:
                await session.rollback()
                raise
            await session.commit()
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        raise unavailable(exc) from None
    for action in unit.waiting:
        await action()
