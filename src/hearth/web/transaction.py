"""A request's unit of work: one database session, committed or rolled back at the edge,
and the tasks the request asked for, sent only once that commit has happened (a worker must
never pick up a task for data it cannot see yet, or for a change that was rolled back)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from hearth.errors import HearthError
from hearth.runtime import Runtime
from hearth.worker.queue import PendingTask


@dataclass
class Transaction:
    session: AsyncSession
    pending: list[PendingTask] = field(default_factory=list)

    def enqueue(self, name: str, *args: Any, **kwargs: Any) -> str:
        """Ask for task ``name`` to run after the commit; returns its id now."""
        task = PendingTask(name, args, kwargs)
        self.pending.append(task)
        return task.id


async def transaction(request: Request) -> AsyncIterator[Transaction]:
    runtime: Runtime = request.app.state.runtime
    if runtime.sessions is None:
        raise HearthError("The database is not available.", status_code=503)
    async with runtime.sessions() as session:
        unit = Transaction(session)
        try:
            yield unit
        except BaseException:
            await session.rollback()
            raise
        await session.commit()
    for task in unit.pending:
        await runtime.task_queue().send(task)


# scope="function": the commit and the sends happen before the response goes out, so a
# broker that is down becomes this request's 503 rather than a silently lost task.
TransactionDep = Annotated[Transaction, Depends(transaction, scope="function")]
