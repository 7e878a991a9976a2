"""scripts/backup-config.sh and `hearth settings export|import`, on real PostgreSQL: a backup
restored the way its RESTORE.txt says brings the runtime settings back, a backup whose
pg_dump is not of the server's version is refused, and an import with a bad key or value is
refused whole, saying which."""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import psycopg
import pytest

from hearth.config.service import ConfigService
from hearth.config.settings import Settings
from hearth.db.engine import create_engine
from hearth.kit.urls import normalize_database_url
from tests.support.database import create_database, drop_database
from tests.support.paths import ROOT
from tests.support.postgres import BIN as WHEEL_BIN
from tests.support.process import (
    HEARTH,
    TEST_SECRET_KEY,
    clean_environment,
    hearth_server,
    run_hearth,
)
from tests.support.services import POSTGRES_ADMIN_URL, free_port

BACKUP = ROOT / "scripts" / "backup-config.sh"
SAVED = {"llm_model": "qwen2.5:7b", "event_date": "2026-12-24", "llm_provider": "openai"}


@pytest.fixture
def migrated(fresh_database: str, tmp_path: Path) -> str:
    """A database of the test's own, migrated by `hearth migrate`."""
    result = run_hearth("migrate", env=_env(fresh_database), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return fresh_database


def _env(database_url: str, **extra: str) -> dict[str, str]:
    return clean_environment(DATABASE_URL=database_url, **extra)


async def _save(database_url: str, values: Mapping[str, str]) -> None:
    """Store runtime settings as the config page does: ConfigService.save, then commit."""
    from sqlalchemy.ext.asyncio import AsyncSession

    settings = Settings(_env_file=None, secret_key=TEST_SECRET_KEY, database_url=database_url)
    engine = create_engine(normalize_database_url(database_url))
    try:
        async with AsyncSession(engine) as session:
            await ConfigService(settings).save(session, values)
            await session.commit()
    finally:
        await engine.dispose()


def _stored(database_url: str) -> dict[str, str]:
    with psycopg.connect(database_url) as connection:
        rows = connection.execute("SELECT key, value FROM settings").fetchall()
    return dict(rows)


def _run_backup(
    database_url: str, tmp_path: Path, *args: str, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BACKUP), "--output-dir", str(tmp_path / "backups"), "--hearth", HEARTH, *args],
        env=_env(database_url, **extra),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _backup(database_url: str, tmp_path: Path, *args: str) -> Path:
    result = _run_backup(database_url, tmp_path, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    [backup] = (tmp_path / "backups").iterdir()
    assert f"Backing up Hearth into {backup}/" in result.stdout
    return backup


def _documented(backup: Path, program: str) -> list[str]:
    """The command RESTORE.txt gives for ``program`` (its first word ends with it)."""
    for line in (backup / "RESTORE.txt").read_text().splitlines():
        words = shlex.split(line)
        if words and words[0].endswith(program):
            return words
    raise AssertionError(f"RESTORE.txt names no {program} command")


def _major(program: Path | str) -> int:
    """The PostgreSQL major version of a client program, from its --version."""
    output = subprocess.run(
        [str(program), "--version"], capture_output=True, text=True, check=True
    ).stdout
    return int(output.split()[-1].split(".")[0])


def _server_major(database_url: str) -> int:
    with psycopg.connect(database_url) as connection:
        return connection.info.server_version // 10000


@pytest.fixture
def scratch_database() -> Iterator[str]:
    url = create_database("hearth_test_restore")
    yield url
    drop_database(url)


async def test_backup_then_restore_the_database_as_documented(
    migrated: str, tmp_path: Path
) -> None:
    await _save(migrated, SAVED)
    backup = _backup(migrated, tmp_path)

    assert sorted(path.name for path in backup.iterdir()) == [
        "RESTORE.txt",
        "database.dump",
        "settings.json",
    ]
    assert (backup.stat().st_mode & 0o777) == 0o700  # the dump holds the service's data
    document = json.loads((backup / "settings.json").read_text())
    assert document["format"] == "hearth-settings"
    assert document["settings"] == SAVED

    # The database is lost: dropped, and created again empty.
    drop_database(migrated)
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{migrated.rsplit("/", 1)[1]}"')

    restore = _documented(backup, "pg_restore")
    assert restore[-1] == str(backup / "database.dump")
    # The dump and its restore are the server's own version's (a newer pg_restore would set
    # parameters an older server rejects).
    assert _major(restore[0]) == _server_major(migrated)
    result = subprocess.run(restore, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr

    assert _stored(migrated) == SAVED
    exported = run_hearth("settings", "export", env=_env(migrated), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["settings"] == SAVED
    # The restored database is whole: Hearth finds it at the current migration.
    check = run_hearth("migrate", env=_env(migrated), cwd=tmp_path)
    assert check.returncode == 0, check.stderr


def test_a_pg_dump_of_another_version_is_refused_before_anything_is_written(
    fresh_database: str, tmp_path: Path
) -> None:
    """The wheel's pg_dump (PostgreSQL 18) against the suite's server: its dump would not
    restore there, so the backup refuses and names the package that brings the right one."""
    server, wheel = _server_major(fresh_database), _major(WHEEL_BIN / "pg_dump")
    assert server != wheel, f"the suite's server is PostgreSQL {wheel}, like the wheel's tools"
    result = _run_backup(fresh_database, tmp_path, PG_DUMP=str(WHEEL_BIN / "pg_dump"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith(
        f"backup-config: the database is PostgreSQL {server}, "
        f"but PG_DUMP={WHEEL_BIN / 'pg_dump'} is PostgreSQL {wheel}'s"
    )
    assert f"apt-get install postgresql-client-{server}" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "backups").exists()  # no half-made backup to mistake for one

    missing = _run_backup(fresh_database, tmp_path, PG_DUMP=str(tmp_path / "pg_dump"))
    assert missing.returncode == 1
    assert f"PG_DUMP={tmp_path / 'pg_dump'} is not an executable file" in missing.stderr


async def test_restore_only_the_settings_into_another_database(
    migrated: str, scratch_database: str, tmp_path: Path
) -> None:
    await _save(migrated, SAVED)
    backup = _backup(migrated, tmp_path, "--settings-only")
    assert sorted(path.name for path in backup.iterdir()) == ["RESTORE.txt", "settings.json"]

    # Another deployment, with settings of its own that the backup replaces.
    assert run_hearth("migrate", env=_env(scratch_database), cwd=tmp_path).returncode == 0
    await _save(scratch_database, {"llm_model": "llama3.1", "embedding_model": "mxbai"})
    command = _documented(backup, "hearth")
    assert command[1:3] == ["settings", "import"]
    result = subprocess.run(
        command, env=_env(scratch_database), cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "Imported 3 runtime settings" in result.stdout
    assert "Running servers act on them within 5 s" in result.stdout
    # Imported keys take the backup's values; a key the backup does not hold stays.
    assert _stored(scratch_database) == {**SAVED, "embedding_model": "mxbai"}


async def test_an_import_with_a_bad_key_or_value_is_refused_whole(
    migrated: str, tmp_path: Path
) -> None:
    await _save(migrated, {"llm_model": "llama3.1"})
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "format": "hearth-settings",
                "version": 1,
                "settings": {
                    "llm_model": "mistral",  # fine, and still not written
                    "llm_provider": "anthropic",
                    "admin_password": "hunter2",
                },
            }
        )
    )
    result = run_hearth("settings", "import", str(bad), env=_env(migrated), cwd=tmp_path)
    assert result.returncode == 1
    assert "nothing was imported" in result.stderr
    assert "llm_provider: must be one of: ollama, openai" in result.stderr
    assert "admin_password: is not a runtime setting" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert _stored(migrated) == {"llm_model": "llama3.1"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"llm_model": 7}', "values must be strings (not for: llm_model)"),
        ('{"format": "hearth-settings", "version": 9, "settings": {}}', "has version 9"),
    ],
)
def test_an_unreadable_import_file_is_refused(
    migrated: str, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "settings.json"
    path.write_text(content)
    result = run_hearth("settings", "import", str(path), env=_env(migrated), cwd=tmp_path)
    assert result.returncode == 1
    assert message in result.stderr
    assert _stored(migrated) == {}


def test_import_reads_stdin_and_says_when_the_environment_wins(
    migrated: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [HEARTH, "settings", "import", "-"],
        input='{"llm_model": "phi4", "event_date": "2027-01-01"}',
        env=_env(migrated, LLM_MODEL="llama3.2"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "llm_model: LLM_MODEL in the environment wins over the imported value." in (
        result.stdout
    )
    assert _stored(migrated) == {"llm_model": "phi4", "event_date": "2027-01-01"}


def test_export_to_a_file_and_a_database_without_the_table(
    fresh_database: str, tmp_path: Path
) -> None:
    result = run_hearth("settings", "export", env=_env(fresh_database), cwd=tmp_path)
    assert result.returncode == 1
    assert "has no settings table yet: run `hearth migrate` first" in result.stderr
    assert result.stdout == ""
    assert run_hearth("migrate", env=_env(fresh_database), cwd=tmp_path).returncode == 0
    out = tmp_path / "out.json"
    result = run_hearth(
        "settings", "export", "--output", str(out), env=_env(fresh_database), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"Exported 0 runtime settings to {out}.\n"
    assert json.loads(out.read_text())["settings"] == {}


@pytest.mark.embedded_postgres
def test_backup_of_the_embedded_database(tmp_path: Path) -> None:
    """With DATABASE_URL unset, the backup finds the running embedded server's socket."""
    data = tmp_path / "data"
    env = clean_environment(HEARTH_DATA_DIR=str(data))
    with hearth_server(env, tmp_path, free_port()) as server:
        server.wait_until("/readyz")
        stored = subprocess.run(
            [HEARTH, "settings", "import", "-"],
            input='{"llm_model": "gemma3"}',
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert stored.returncode == 0, stored.stderr
        result = subprocess.run(
            [str(BACKUP), "-o", str(tmp_path / "backups"), "--hearth", HEARTH],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    [backup] = (tmp_path / "backups").iterdir()
    assert json.loads((backup / "settings.json").read_text())["settings"] == {"llm_model": "gemma3"}
    assert (backup / "database.dump").stat().st_size > 0
    assert "?host=" in (backup / "RESTORE.txt").read_text()  # the server's Unix socket

    # And when it is not running, the backup says what to do instead of failing obscurely.
    stopped = subprocess.run(
        [str(BACKUP), "-o", str(tmp_path / "backups2"), "--hearth", HEARTH],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert stopped.returncode == 1
    assert "embedded PostgreSQL is not running" in stopped.stderr
