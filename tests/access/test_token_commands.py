"""`hearth token create|list|revoke` as separate processes on a real database."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.support.app import ClientFor
from tests.support.process import clean_environment, run_hearth
from tests.support.tokens import bearer

TASK = "/tasks/8f7d2c1e-0b6a-4b7e-9d55-3c2a1f0e9b11"


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    return clean_environment(DATABASE_URL=database_url)


async def test_create_list_and_revoke(
    env: dict[str, str], tmp_path: Path, database_url: str, client_for: ClientFor
) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    created = run_hearth(
        "token", "create", name, "--scope", "read", "--scope", "write", "--expires-days", "7",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    token = created.stdout.splitlines()[-1]  # what `| tail -1` captures
    assert token.startswith("hth_")
    assert len(token) == 47
    assert f"Created the token {name!r}: scopes read, write" in created.stdout
    with psycopg.connect(database_url) as connection:
        stored = connection.execute(
            "SELECT token_sha256, row_to_json(t)::text FROM api_tokens t WHERE name = %s", (name,)
        ).fetchone()
    assert stored is not None
    assert stored[0] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in stored[1]

    async with client_for() as client:
        used = await client.get(TASK, headers=bearer(token))
    listed = run_hearth("token", "list", env=env, cwd=tmp_path)
    revoked = run_hearth("token", "revoke", name, env=env, cwd=tmp_path)
    listed_after = run_hearth("token", "list", env=env, cwd=tmp_path)
    async with client_for() as client:
        refused = await client.get(TASK, headers=bearer(token))

    assert used.status_code == 200, used.text
    assert listed.returncode == 0, listed.stderr
    [line] = [row for row in listed.stdout.splitlines() if row.startswith(name)]
    assert "read,write" in line
    assert token[:8] in line
    assert line.rstrip().endswith("active")
    assert "never" not in line  # used a moment ago; expires in 7 days
    assert token not in listed.stdout
    assert listed.stdout.splitlines()[0].startswith("NAME")
    assert revoked.returncode == 0, revoked.stderr
    assert f"Revoked the token {name!r}: running Hearth processes refuse it within 5 s" in (
        revoked.stdout
    )
    [after] = [row for row in listed_after.stdout.splitlines() if row.startswith(name)]
    assert "revoked" in after
    assert refused.status_code == 401


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["create", "bad-scope", "--scope", "admin"], "unknown scope admin; known: read, write"),
        (["create", "bad name", "--scope", "read"], "name: 1 to 64 characters"),
        (["create", "short-life", "--scope", "read", "--expires-days", "0"], "expires_days"),
        (["revoke", "no-such-token"], "No token named 'no-such-token'."),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_1(
    env: dict[str, str], tmp_path: Path, arguments: list[str], message: str
) -> None:
    result = run_hearth("token", *arguments, env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr


def test_a_duplicate_name_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    name = f"twice-{uuid.uuid4().hex[:8]}"
    first = run_hearth("token", "create", name, "--scope", "read", env=env, cwd=tmp_path)
    second = run_hearth("token", "create", name, "--scope", "write", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 1
    assert second.stderr.strip() == f"A token named {name!r} exists already; choose another name."


def test_without_a_running_database_it_says_how_to_start_one(tmp_path: Path) -> None:
    env = clean_environment(HEARTH_DATA_DIR=str(tmp_path / "data"))
    result = run_hearth("token", "list", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "embedded PostgreSQL is not running" in result.stderr
    assert "Traceback" not in result.stderr
