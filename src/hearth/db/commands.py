"""A database session for the commands that work on stored data (``hearth settings``,
``hearth token``, ``hearth audit``): on ``DATABASE_URL``, or on the embedded PostgreSQL of a
running ``hearth serve``. They start no server of their own."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import psycopg
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from hearth.db import engine as db_engine
from hearth.db.embedded import running_database_url
from hearth.errors import StartupError

_MISSING_TABLE = re.compile(r'relation "([^"]+)" does not exist')


@asynccontextmanager
async def command_session(database_url: str | None, data_dir: Path) -> AsyncIterator[AsyncSession]:
    """A session on the configured database, committed when the block succeeds; database
    failures become a ``StartupError`` with the reason and no password."""
    url = running_database_url(database_url, data_dir)
    engine = db_engine.create_engine(url)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            try:
                yield session
                await session.commit()
            except SQLAlchemyError as exc:
                raise StartupError(database_failure(url, exc)) from None
    finally:
        await engine.dispose()


def database_failure(url: str, exc: SQLAlchemyError) -> str:
    """What a command says when the database failed it: a missing table means migrations
    have not run; anything else, the reason."""
    where = db_engine.describe_location(url)
    if isinstance(exc, DBAPIError) and isinstance(exc.orig, psycopg.errors.UndefinedTable):
        table = _MISSING_TABLE.search(str(exc.orig))
        name = table.group(1) if table else "a"
        return f"The database {where} has no {name} table yet: run `hearth migrate` first."
    return f"The database {where} failed: {db_engine.error_reason(exc)}"
