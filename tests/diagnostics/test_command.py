"""``hearth diagnose`` as a user runs it: beside a real ``hearth serve`` (whose log ring it
reads with ``HEARTH_TOKEN``), without a token, without a server, and without a database; it
exits 0 whatever it finds, and 1 only when it cannot run."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.support.process import clean_environment, hearth_server, run_hearth
from tests.support.services import free_port
from tests.support.tokens import create_with_cli

pytestmark = [pytest.mark.redis]

PASSWORD = "diag-command-operator-pw-5821"
# Secrets in the server's and the command's environment; none may appear in the output.
SECRETS = {
    "ADMIN_PASSWORD": PASSWORD,
    "MCP_TOKEN": "diag-command-mcp-token-0c7e",
    "LLM_API_KEY": "sk-diag-command-llm-3f9d",
    "IMAP_PASSWORD": "diag-command-imap-pw-12",
    "NOTIFY_URLS": "json://127.0.0.1:9/hook/DiagCmdPath77?token=diag-cmd-notify-4a1",
}
DATABASE_PASSWORD = "diag-command-db-pw-64"
EVERY_SECRET = [
    *SECRETS.values(),
    DATABASE_PASSWORD,
    "DiagCmdPath77",
    "diag-cmd-notify-4a1",
]


def _with_password(url: str) -> str:
    scheme, rest = url.split("://", 1)
    user, _, host = rest.rpartition("@")
    return f"{scheme}://{user or 'postgres'}:{DATABASE_PASSWORD}@{host}"


def _leaks(text: str, *more: str) -> list[str]:
    return [secret for secret in (*EVERY_SECRET, *more) if secret in text]


def test_beside_a_running_server_it_reads_the_servers_log_ring(
    tmp_path: Path, fresh_database: str
) -> None:
    port = free_port()
    env = clean_environment(
        DATABASE_URL=_with_password(fresh_database),
        PORT=str(port),
        IMAP_HOST="127.0.0.1",
        IMAP_PORT="9",
        IMAP_USER="diag",
        **SECRETS,
    )
    with hearth_server(env, tmp_path, port) as server:
        server.wait_until("/readyz", 200)
        # Warnings in the server's ring: a wrong password, a refused token.
        with httpx.Client(base_url=server.url) as browser:
            csrf = browser.get("/login").json()["csrf_token"]
            wrong = browser.post(
                "/login", json={"password": "wrong"}, headers={"X-CSRF-Token": csrf}
            )
            assert wrong.status_code == 401, wrong.text
        refused = httpx.get(
            f"{server.url}/diagnostics", headers={"Authorization": f"Bearer {SECRETS['MCP_TOKEN']}"}
        )
        assert refused.status_code == 401
        token = create_with_cli(env, tmp_path, "read", name="diagnose")

        without = run_hearth("diagnose", env=env, cwd=tmp_path)
        with_token = run_hearth("diagnose", env={**env, "HEARTH_TOKEN": token}, cwd=tmp_path)
        as_json = run_hearth("diagnose", "--json", env={**env, "HEARTH_TOKEN": token}, cwd=tmp_path)
        wrong_token = run_hearth(
            "diagnose", env={**env, "HEARTH_TOKEN": "hth_" + "x" * 43}, cwd=tmp_path
        )
        pid = server.process.pid

    for run in (without, with_token, as_json, wrong_token):
        assert run.returncode == 0, run.stderr
        assert _leaks(run.stdout + run.stderr, token) == []

    assert "== Health: " in without.stdout
    assert "set HEARTH_TOKEN to an API token with the read scope" in without.stdout
    assert f"http://127.0.0.1:{port}/diagnostics" in without.stdout

    text = with_token.stdout
    assert f"== Log: the server at http://127.0.0.1:{port}: this server (pid {pid})" in text
    assert " warning hearth.auth.router login_failed " in text
    assert "api_token_refused" in text
    assert "postgresql+psycopg://postgres:***@127.0.0.1:5432/" in text
    assert "== Log: this hearth diagnose command" in text

    report = json.loads(as_json.stdout)
    server_log, own_log = report["logs"]
    assert server_log["read"] is True
    assert "login_failed" in [event["event"] for event in server_log["events"]]
    assert own_log["process"].startswith("this hearth diagnose command")
    assert report["migrations"]["status"] == "current"
    assert report["generated_by"] == "hearth diagnose"

    assert "answered HTTP 401" in wrong_token.stdout


def test_without_a_server_or_a_database_it_reports_and_starts_nothing(tmp_path: Path) -> None:
    """No DATABASE_URL and no embedded PostgreSQL running: the report says so; the command
    does not start one (a second start could take the data directory over)."""
    data = tmp_path / "data"
    env = clean_environment(HEARTH_DATA_DIR=str(data), PORT=str(free_port()), **SECRETS)
    run = run_hearth("diagnose", env={**env, "HEARTH_TOKEN": "hth_" + "y" * 43}, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert not (data / "postgres").exists()
    assert "The embedded PostgreSQL is not running" in run.stdout
    assert "no database to read" in run.stdout
    assert "The server's log ring was not read: no server answered at" in run.stdout
    assert _leaks(run.stdout + run.stderr) == []


def test_with_the_database_down_it_still_reports(tmp_path: Path) -> None:
    url = f"postgresql://postgres:{DATABASE_PASSWORD}@127.0.0.1:{free_port()}/hearth"
    env = clean_environment(DATABASE_URL=url, **SECRETS)
    run = run_hearth("diagnose", env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "  db      unreachable" in run.stdout
    assert "== Migrations\nnot read: " in run.stdout
    assert "database not read (" in run.stdout
    assert _leaks(run.stdout + run.stderr) == []


def test_it_exits_1_only_when_it_cannot_run(tmp_path: Path) -> None:
    env = clean_environment(SECRET_KEY="")
    run = run_hearth("diagnose", env=env, cwd=tmp_path)
    assert run.returncode == 1
    assert "SECRET_KEY" in run.stderr
    assert run.stdout == ""
