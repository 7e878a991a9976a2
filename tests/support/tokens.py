"""API tokens for tests: made the way Hearth makes them, stored straight into a test
database, so a test can call the data routes. conftest.py registers the fixture."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from hearth.access.tokens import fingerprint, new_token, shown_part
from tests.support.process import run_hearth


def insert_token(
    database_url: str,
    scopes: Iterable[str] = ("read", "write"),
    *,
    name: str | None = None,
    expires_at: datetime | None = None,
    revoked_at: datetime | None = None,
) -> str:
    """A new token with ``scopes`` in the database at ``database_url`` (migrated already);
    returns its secret."""
    secret = new_token()
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO api_tokens (name, token_sha256, prefix, scopes, expires_at, revoked_at)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (
                name or f"test-{uuid.uuid4().hex[:12]}",
                fingerprint(secret),
                shown_part(secret),
                list(scopes),
                expires_at,
                revoked_at,
            ),
        )
    return secret


def create_with_cli(env: Mapping[str, str], cwd: Path, *scopes: str, name: str = "tests") -> str:
    """A token made by `hearth token create` (beside a running server, as a user would);
    the token is the last line of its output."""
    arguments = [f"--scope={scope}" for scope in scopes or ("read", "write")]
    created = run_hearth("token", "create", name, *arguments, env=env, cwd=cwd)
    assert created.returncode == 0, created.stderr
    return created.stdout.splitlines()[-1]


def bearer(token: str) -> dict[str, str]:
    """The header that presents ``token``."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def api_token(database_url: str) -> str:
    """A token with the read and write scopes on the suite's database."""
    return insert_token(database_url, ("read", "write"), name="suite-read-write")
