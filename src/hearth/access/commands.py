"""``hearth token create|list|revoke``: the Tokens page for scripts and terminals.

Like ``hearth settings export``, they start nothing: they connect to ``DATABASE_URL`` or to
the embedded PostgreSQL a running ``hearth serve`` (``make run``) has started.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import psycopg
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from hearth.access import service
from hearth.db import engine as db_engine
from hearth.db.embedded import running_database_url
from hearth.errors import StartupError
from hearth.models import ApiToken


@asynccontextmanager
async def database_session(database_url: str | None, data_dir: Path) -> AsyncIterator[AsyncSession]:
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
                raise StartupError(_database_failure(url, exc)) from None
    finally:
        await engine.dispose()


def _database_failure(url: str, exc: SQLAlchemyError) -> str:
    where = db_engine.describe_location(url)
    if isinstance(exc, DBAPIError) and isinstance(exc.orig, psycopg.errors.UndefinedTable):
        return f"The database {where} has no api_tokens table yet: run `hearth migrate` first."
    return f"The database {where} failed: {db_engine.error_reason(exc)}"


def created_lines(new: service.NewToken) -> list[str]:
    """What ``hearth token create`` prints: a description, then the token alone last."""
    row = new.row
    scopes, expires = ", ".join(row.scopes), _when(row.expires_at, "never")
    return [
        f"Created the token {row.name!r}: scopes {scopes}, expires {expires}.",
        "Copy it now; Hearth keeps only its hash and cannot show it again:",
        new.secret,
    ]


def table_lines(rows: Sequence[ApiToken], now: datetime) -> list[str]:
    """What ``hearth token list`` prints: one aligned row per token, a header first."""
    header = ("NAME", "SCOPES", "STARTS WITH", "CREATED", "LAST USED", "EXPIRES", "STATE")
    body = [
        (
            row.name,
            ",".join(row.scopes),
            row.prefix + "…",
            _when(row.created_at, "-"),
            _when(row.last_used_at, "never"),
            _when(row.expires_at, "never"),
            _state(row, now),
        )
        for row in rows
    ]
    return _aligned([header, *body])


def _state(row: ApiToken, now: datetime) -> str:
    if row.revoked_at is not None:
        return f"revoked {_when(row.revoked_at, '')}"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "active"


def _when(moment: datetime | None, otherwise: str) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else otherwise


def _aligned(rows: Iterable[tuple[str, ...]]) -> list[str]:
    rows = list(rows)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
