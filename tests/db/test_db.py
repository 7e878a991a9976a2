"""The database layer on real PostgreSQL: migrations, the advisory lock, retries."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from hearth.db.embedded import create_database_once
from hearth.db.engine import DatabaseAdapter, connect_with_retry, create_engine
from hearth.db.migrate import (
    HEAD_REVISION,
    alembic_config,
    current_revision,
    schema_is_current,
    upgrade_to_head,
)
from hearth.errors import StartupError
from hearth.kit.urls import normalize_database_url
from hearth.log import configure_logging
from hearth.models import Setting
from tests.support.database import rolled_back_session
from tests.support.paths import ROOT
from tests.support.services import POSTGRES_ADMIN_URL, free_port


async def test_migrations_create_the_settings_table(engine: AsyncEngine) -> None:
    def describe(connection: sa.Connection) -> dict[str, Any]:
        inspector = sa.inspect(connection)
        return {
            "columns": {
                c["name"]: (str(c["type"]), c["nullable"])
                for c in inspector.get_columns("settings")
            },
            "unique": inspector.get_unique_constraints("settings"),
            "primary": inspector.get_pk_constraint("settings")["constrained_columns"],
            "default": {c["name"]: c["default"] for c in inspector.get_columns("settings")}[
                "updated_at"
            ],
        }

    async with engine.connect() as connection:
        shape = await connection.run_sync(describe)
    assert shape["columns"] == {
        "id": ("INTEGER", False),
        "key": ("VARCHAR(255)", False),
        "value": ("TEXT", False),
        "updated_at": ("TIMESTAMP", False),
    }
    assert shape["primary"] == ["id"]
    assert [u["column_names"] for u in shape["unique"]] == [["key"]]
    assert shape["default"] == "now()"


def _key() -> str:
    """A key no other test uses: nothing here depends on what the table holds."""
    return f"test_{uuid.uuid4().hex[:12]}"


async def test_updated_at_is_timezone_aware(db_session: AsyncSession) -> None:
    setting = Setting(key=_key(), value="2026-12-24")
    db_session.add(setting)
    await db_session.flush()
    await db_session.refresh(setting)
    assert setting.updated_at.tzinfo is not None


async def test_keys_are_unique(db_session: AsyncSession) -> None:
    key = _key()
    db_session.add(Setting(key=key, value="a"))
    await db_session.flush()
    db_session.add(Setting(key=key, value="b"))
    with pytest.raises(IntegrityError):
        await db_session.flush()


async def test_what_a_test_commits_is_rolled_back_after_it(engine: AsyncEngine) -> None:
    """The db_session fixture's promise: a commit inside the test is a savepoint, and the
    whole transaction is rolled back when the test ends."""
    key = _key()
    async with rolled_back_session(engine) as session:
        session.add(Setting(key=key, value="committed by a test"))
        await session.commit()
        assert await _stored_value(session, key) == "committed by a test"
    async with engine.connect() as connection:
        assert await _stored_value(connection, key) is None


async def _stored_value(executor: AsyncSession | AsyncConnection, key: str) -> str | None:
    result = await executor.execute(sa.select(Setting.value).where(Setting.key == key))
    return result.scalar_one_or_none()


async def test_replicas_migrating_together_do_not_race(fresh_database: str) -> None:
    engines = [create_engine(normalize_database_url(fresh_database)) for _ in range(4)]
    try:
        revisions = await asyncio.gather(*(upgrade_to_head(engine) for engine in engines))
        assert revisions == [HEAD_REVISION] * 4
        assert await schema_is_current(engines[0])
        async with engines[0].connect() as connection:
            versions = (
                await connection.execute(sa.text("SELECT version_num FROM alembic_version"))
            ).all()
        assert versions == [(HEAD_REVISION,)]
    finally:
        for engine in engines:
            await engine.dispose()


def test_head_revision_constant_names_the_newest_migration() -> None:
    """Start-up skips importing Alembic when the database is at HEAD_REVISION; a migration
    added without moving HEAD_REVISION forward would never be applied."""
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION


async def test_a_database_from_a_newer_hearth_is_refused_clearly(fresh_database: str) -> None:
    engine = create_engine(normalize_database_url(fresh_database))
    try:
        await upgrade_to_head(engine)
        async with engine.begin() as connection:
            await connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
        assert await current_revision(engine) == "9999"
        with pytest.raises(
            StartupError, match="at revision 9999; this Hearth knows revisions up to"
        ):
            await upgrade_to_head(engine)
    finally:
        await engine.dispose()


async def test_schema_is_not_current_before_migrations(fresh_database: str) -> None:
    engine = create_engine(normalize_database_url(fresh_database))
    try:
        assert not await schema_is_current(engine)
    finally:
        await engine.dispose()


def _alembic(*args: str, database: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database}
    return subprocess.run(
        [str(Path(sys.executable).with_name("alembic")), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_models_and_migrations_do_not_drift(fresh_database: str) -> None:
    """What CI's `alembic check` asks: autogenerate finds nothing to add."""
    upgraded = _alembic("upgrade", "head", database=fresh_database)
    assert upgraded.returncode == 0, upgraded.stderr
    checked = _alembic("check", database=fresh_database)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "No new upgrade operations detected" in checked.stdout + checked.stderr


def test_migrations_are_reversible(fresh_database: str) -> None:
    for step in (("upgrade", "head"), ("downgrade", "base"), ("upgrade", "head")):
        result = _alembic(*step, database=fresh_database)
        assert result.returncode == 0, result.stderr


async def test_connect_with_retry_logs_each_retry_then_gives_up() -> None:
    buffer = io.StringIO()
    configure_logging(level="INFO", fmt="json", stream=buffer)
    engine = create_engine(
        f"postgresql+psycopg://hearth:hidden-password@127.0.0.1:{free_port()}/hearth"
    )
    try:
        with pytest.raises(StartupError, match=r"after 3 attempts: .*Connection refused"):
            await connect_with_retry(engine, attempts=3, delay=0.05)
    finally:
        await engine.dispose()
        configure_logging(level="WARNING", fmt="json")
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    retries = [line for line in lines if line["event"] == "db_connect_retry"]
    assert [(r["attempt"], r["delay_seconds"]) for r in retries] == [(1, 0.05), (2, 0.1)]
    [failed] = [line for line in lines if line["event"] == "db_connect_failed"]
    assert "Connection refused" in failed["reason"]
    assert "hidden-password" not in buffer.getvalue()


async def test_database_check_reports_versions_and_failures(engine: AsyncEngine) -> None:
    ok = await DatabaseAdapter(engine).check()
    assert ok.status == "ok"
    assert ok.detail.startswith("PostgreSQL ")
    assert ok.latency_ms > 0
    dead = create_engine(f"postgresql+psycopg://hearth:dead-db-secret@127.0.0.1:{free_port()}/h")
    try:
        down = await DatabaseAdapter(dead).check()
    finally:
        await dead.dispose()
    assert down.status == "unreachable"
    assert "Connection refused" in down.detail
    assert "dead-db-secret" not in down.detail


@pytest.mark.postgres
def test_processes_starting_together_create_the_embedded_database_once() -> None:
    """`hearth serve --with-worker` starts two processes that both make sure the embedded
    server has Hearth's database: six at once, released together, never fail."""
    name = f"hearth_race_{uuid.uuid4().hex[:8]}"
    together = threading.Barrier(6)
    created: list[bool] = []
    errors: list[str] = []

    def start() -> None:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
            together.wait()
            try:
                created.append(create_database_once(connection, name))
            except psycopg.Error as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
    assert errors == []
    assert sorted(created) == [False] * 5 + [True]
