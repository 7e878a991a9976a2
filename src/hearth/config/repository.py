"""All SQL of the runtime settings: the ``settings`` table."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from hearth.log.redaction import SENSITIVE_KEY
from hearth.models import Setting


async def get_all(session: AsyncSession) -> dict[str, str]:
    """Every stored key and its value."""
    rows = await session.execute(select(Setting.key, Setting.value))
    return dict(rows.all())


async def upsert(session: AsyncSession, key: str, value: str) -> None:
    """Insert or replace one value, atomically (``INSERT … ON CONFLICT (key) DO UPDATE``)."""
    if SENSITIVE_KEY.search(key):  # the allowlist refuses these too; this is the last guard
        raise ValueError(f"{key} looks like a secret; secrets are never stored")
    statement = insert(Setting).values(key=key, value=value)
    statement = statement.on_conflict_do_update(
        index_elements=[Setting.key],
        set_={"value": statement.excluded.value, "updated_at": func.now()},
    )
    await session.execute(statement)
