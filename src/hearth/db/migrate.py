"""Alembic migrations, run from code under a PostgreSQL advisory lock.

Replicas that start together queue on the lock: the first applies the migrations, the
others find the schema at head and carry on.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from hearth.db.engine import error_reason
from hearth.errors import StartupError
from hearth.log import get_logger

log = get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# pg_advisory_xact_lock key: "hearth" in ASCII, so it cannot collide with another app's.
MIGRATION_LOCK_ID = 0x686561727468


def alembic_config() -> Config:
    """An Alembic configuration pointing at the migrations shipped inside the package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


@cache
def head_revision() -> str | None:
    """The newest migration this version of Hearth ships."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _upgrade(connection: Connection) -> tuple[str | None, str | None]:
    connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
    before = MigrationContext.configure(connection).get_current_revision()
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    after = MigrationContext.configure(connection).get_current_revision()
    return before, after


async def upgrade_to_head(engine: AsyncEngine) -> str | None:
    """Apply every pending migration in one transaction; return the revision now current."""
    try:
        async with engine.begin() as connection:
            before, after = await connection.run_sync(_upgrade)
    except SQLAlchemyError as exc:
        log.error("migrations_failed", exc_info=True)
        raise StartupError(f"Database migration failed: {error_reason(exc)}") from None
    if before != after:
        log.info("migrations_applied", from_revision=before, to_revision=after)
    else:
        log.info("migrations_current", revision=after)
    return after


async def schema_is_current(engine: AsyncEngine) -> bool:
    """Whether the database is at the newest migration (someone else may migrate it)."""

    def current(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        revision = await connection.run_sync(current)
    return revision == head_revision()
