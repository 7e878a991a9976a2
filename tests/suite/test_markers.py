"""The suite's own machinery, through the real pytest command: markers derived from the
fixtures a test uses, and a run that fails at once, naming the service, only when a selected
test needs one that is missing."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.paths import ROOT
from tests.support.services import free_port

DB_TESTS = "tests/db/test_db.py"
# Needs nothing: it reads the migration scripts.
NEEDS_NOTHING = f"{DB_TESTS}::test_head_revision_constant_names_the_newest_migration"
NEEDS_POSTGRES = f"{DB_TESTS}::test_keys_are_unique"  # through db_session


def _pytest(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_markers_follow_the_fixtures_and_only_what_is_selected_is_looked_for() -> None:
    # With PostgreSQL away, the tests of test_db that need no database still run: of the
    # other eleven, ten are marked `postgres` through db_session, engine or fresh_database,
    # one (which connects by itself) by hand.
    dead = {"TEST_POSTGRES_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"}
    result = _pytest("-q", "-m", "not postgres", DB_TESTS, **dead)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed, 11 deselected" in result.stdout


def test_a_missing_service_a_selected_test_needs_stops_the_run_at_once() -> None:
    dead = {"TEST_POSTGRES_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"}
    result = _pytest("-q", NEEDS_NOTHING, NEEDS_POSTGRES, **dead)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "PostgreSQL (TEST_POSTGRES_URL) [postgres]: nothing answers" in result.stdout
    assert "fix: make services" in result.stdout
    assert "passed" not in result.stdout  # at once: not even the test that could run
