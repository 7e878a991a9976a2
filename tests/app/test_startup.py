"""The real `hearth serve` process: bad settings, a database that is late, gone, or back."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from hearth.version import hearth_version
from tests.support.postgres import OwnedPostgres
from tests.support.process import clean_environment, hearth_server, json_lines, run_hearth
from tests.support.services import free_port


@pytest.mark.parametrize(
    ("variables", "named", "says"),
    [
        ({"SECRET_KEY": None}, "SECRET_KEY", "is required but not set"),
        ({"SECRET_KEY": "too-short"}, "SECRET_KEY", "needs at least 32"),
        ({"DB_CONNECT_ATTEMPTS": "five"}, "DB_CONNECT_ATTEMPTS", "must be a whole number"),
        ({"DATABASE_URL": "postgresql://[broken"}, "DATABASE_URL", "is not a valid URL"),
        ({"DATABASE_URL": "mysql://root@db/hearth"}, "DATABASE_URL", "must be a PostgreSQL URL"),
        (
            {"SECRET_KEY": None, "SECRET_KEY_FILE": "/nonexistent/secret"},
            "SECRET_KEY_FILE",
            "cannot be read",
        ),
        ({"ADMIN_PASSWORD_FILE": "/"}, "ADMIN_PASSWORD_FILE", "cannot be read: Is a directory"),
        (
            {"HEALTH_DETAILS": "sometimes"},
            "HEALTH_DETAILS",
            "must be one of 'when_authorized', 'always' or 'never' (got 'sometimes')",
        ),
        (
            {"LLM_ENDPOINT": "http://127.0.0.1:9/?token=S3cr3t-in-url"},
            "LLM_ENDPOINT",
            "must not carry query parameters other than Azure's api-version",
        ),
        (
            {"OLLAMA_BASE_URL": "http://u:S3cr3t-in-url@127.0.0.1:9"},
            "LLM_ENDPOINT",
            "must not contain a user name or password",
        ),
        (
            {"LLM_TRUSTED_ORIGIN": "https://api.openai.com/v1"},
            "LLM_TRUSTED_ORIGIN",
            "must name an origin only",
        ),
    ],
)
def test_bad_settings_stop_start_up_with_a_readable_message(
    tmp_path: Path, variables: dict[str, str | None], named: str, says: str
) -> None:
    env = clean_environment(HEARTH_DATA_DIR=str(tmp_path / "data"))
    for key, value in variables.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    result = run_hearth("serve", "--port", str(free_port()), env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.startswith("Hearth cannot start:")
    line = next(line for line in result.stderr.splitlines() if line.strip().startswith(f"{named}:"))
    assert says in line
    assert "S3cr3t" not in result.stderr  # a URL's credentials are never echoed
    assert not (tmp_path / "data").exists()  # nothing was started


def test_unreachable_database_is_retried_then_exit_1(tmp_path: Path) -> None:
    port = free_port()
    env = clean_environment(
        DATABASE_URL=f"postgresql://hearth:db-secret-pw@127.0.0.1:{port}/hearth",
        DB_CONNECT_ATTEMPTS="3",
        DB_CONNECT_DELAY_SECONDS="0.1",
    )
    result = run_hearth("serve", "--port", str(free_port()), env=env, cwd=tmp_path)
    assert result.returncode == 1
    lines = json_lines(result.stdout)  # every line is JSON: no stray traceback
    [starting] = [line for line in lines if line["event"] == "hearth_starting"]
    assert starting["version"] == hearth_version()
    assert (
        starting["settings"]["database_url"]
        == f"postgresql+psycopg://hearth:***@127.0.0.1:{port}/hearth"
    )
    assert starting["settings"]["db_connect_attempts"] == 3
    assert "secret_key" not in starting["settings"]
    retries = [line for line in lines if line["event"] == "db_connect_retry"]
    assert [r["attempt"] for r in retries] == [1, 2]
    assert [r["delay_seconds"] for r in retries] == [0.1, 0.2]
    [failed] = [line for line in lines if line["event"] == "db_connect_failed"]
    assert f"127.0.0.1:{port}/hearth" in failed["database"]
    assert "Connection refused" in failed["reason"]
    assert "db-secret-pw" not in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.embedded_postgres
def test_database_that_starts_during_the_retries(tmp_path: Path) -> None:
    postgres = OwnedPostgres(tmp_path / "pg", free_port()).init()
    env = clean_environment(
        DATABASE_URL=postgres.url, DB_CONNECT_ATTEMPTS="30", DB_CONNECT_DELAY_SECONDS="0.2"
    )
    with hearth_server(env, tmp_path, free_port()) as server:
        try:
            # Wait until Hearth has failed at least once, then bring the database up.
            server.wait_for_event("db_connect_retry")
            postgres.start()
            ready = server.wait_until("/readyz", 200)
            assert ready.json()["status"] == "ready"
            assert server.events("migrations_applied")
        finally:
            assert server.stop() == 0
            postgres.stop()


@pytest.mark.embedded_postgres
def test_database_lost_and_regained_without_restart(tmp_path: Path) -> None:
    postgres = OwnedPostgres(tmp_path / "pg", free_port()).init()
    postgres.start()
    env = clean_environment(DATABASE_URL=postgres.url, HEALTH_CACHE_SECONDS="0")
    try:
        with hearth_server(env, tmp_path, free_port()) as server:
            server.wait_until("/readyz", 200)

            postgres.stop()
            not_ready = server.wait_until("/readyz", 503)
            assert not_ready.json()["reason"] == "db: unreachable"  # no error text anonymously
            probe = run_hearth("check", "--ready", "--url", server.url, env=env, cwd=tmp_path)
            assert probe.returncode == 1
            assert "db: unreachable" in probe.stdout
            assert str(postgres.port) not in probe.stdout
            assert "refused" not in probe.stdout
            assert server.get("/livez").status_code == 200
            health = server.get("/health")
            assert health.status_code == 200
            assert health.json()["status"] == "down"
            assert health.json()["checks"]["db"]["status"] == "unreachable"
            assert server.get("/healthz").status_code == 503

            postgres.start()
            server.wait_until("/readyz", 200)
            recovered = server.get("/health").json()
            assert recovered["checks"]["db"]["status"] == "ok"
            assert recovered["status"] != "down"
            assert server.process.poll() is None  # the same process all along
            assert server.stop(signal.SIGTERM) == 0
    finally:
        if postgres.running():
            postgres.stop()
