"""Alembic migrations, run from code under a PostgreSQL advisory lock.

Replicas that start together queue on the lock: the first applies the migrations, the
others find the schema at head and carry on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from hearth.db import vector
from hearth.db.engine import error_reason
from hearth.errors import StartupError
from hearth.log import get_logger

if TYPE_CHECKING:
    from alembic.config import Config

log = get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The newest migration in migrations/versions. Start-up compares the database with it and
# imports Alembic (about a third of a second and 10 MB here) only when there is work to do.
# A test fails when a migration is added without moving this forward.
HEAD_REVISION = "0011"
# pg_advisory_xact_lock key: "hearth" in ASCII, so it cannot collide with another app's.
MIGRATION_LOCK_ID = 0x686561727468


def alembic_config() -> Config:
    """An Alembic configuration pointing at the migrations shipped inside the package."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


async def current_revision(engine: AsyncEngine) -> str | None:
    """The migration the database is at; None before the first one."""
    async with engine.connect() as connection:
        if await connection.scalar(text("SELECT to_regclass('alembic_version')")) is None:
            return None
        revision = await connection.scalar(text("SELECT max(version_num) FROM alembic_version"))
    return str(revision) if revision is not None else None


async def schema_is_current(engine: AsyncEngine) -> bool:
    """Whether the database is at the newest migration (someone else may migrate it)."""
    return await current_revision(engine) == HEAD_REVISION


def known_revisions() -> set[str]:
    """Every migration this Hearth ships."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config())
    return {script.revision for script in scripts.walk_revisions()}


async def schema_wait_reason(engine: AsyncEngine) -> str | None:
    """Why this database is not ready for this Hearth yet (no migration, or an older one),
    in a sentence; None when it is at the newest migration. ``StartupError`` when a newer
    Hearth migrated it; a database error as it comes."""
    revision = await current_revision(engine)
    if revision == HEAD_REVISION:
        return None
    if revision is None:
        return "the database has no tables yet: run `hearth migrate` (or start `hearth serve`)"
    if revision not in known_revisions():
        raise StartupError(
            f"The database is at revision {revision}, which this Hearth does not know (a "
            f"newer Hearth migrated it; this one knows revisions up to {HEAD_REVISION}): "
            "upgrade this Hearth."
        )
    return (
        f"the database is at revision {revision}, this Hearth needs {HEAD_REVISION}: "
        "run `hearth migrate` (or start `hearth serve`)"
    )


def _upgrade(connection: Connection) -> str | None:
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade_to_head(engine: AsyncEngine) -> str | None:
    """Apply every pending migration in one transaction; return the revision now current."""
    try:
        before = await current_revision(engine)
    except SQLAlchemyError as exc:
        raise StartupError(
            f"Cannot read the database's migration version: {error_reason(exc)}"
        ) from None
    if before == HEAD_REVISION:
        log.info("migrations_current", revision=before)
        await _enable_vector_search(engine)
        return before

    from alembic.util import CommandError

    try:
        async with engine.begin() as connection:
            after = await connection.run_sync(_upgrade)
    except SQLAlchemyError as exc:
        log.exception("migrations_failed")
        raise StartupError(f"Database migration failed: {error_reason(exc)}") from None
    except CommandError as exc:  # e.g. a database migrated by a newer Hearth
        raise StartupError(
            f"Database migration failed: {exc}. The database is at revision {before}; "
            f"this Hearth knows revisions up to {HEAD_REVISION}."
        ) from None
    log.info("migrations_applied", from_revision=before, to_revision=after)
    return after


async def _enable_vector_search(engine: AsyncEngine) -> None:
    """Add what pgvector brings if the server has gained it since the documents migration."""
    try:
        async with engine.begin() as connection:
            await connection.run_sync(vector.enable_vector_search)
    except SQLAlchemyError as exc:
        # Search stays off (and says why); everything else works, so start-up goes on.
        log.warning("vector_search_unavailable", reason=error_reason(exc))
