"""The `hearth` command: init, version, check, and staying light where it must."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hearth.config.loader import load_settings
from hearth.version import hearth_version
from tests.support.paths import ROOT
from tests.support.process import HEARTH, clean_environment, hearth_server, run_hearth
from tests.support.services import REDIS_URL, free_port
from tests.support.worker import hearth_worker

HEAVY_MODULES = ("fastapi", "sqlalchemy", "uvicorn", "pydantic", "alembic", "structlog", "redis")


def _modules_loaded_by(*argv: str) -> list[str]:
    """Run hearth's main() with ``argv`` in a fresh interpreter; list the heavy imports."""
    code = (
        "import sys, contextlib, io\n"
        "from hearth.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        f"    main({list(argv)!r})\n"
        f"print(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    loaded: list[str] = json.loads(result.stdout.strip().replace("'", '"'))
    return loaded


def test_help_and_live_probe_import_nothing_heavy() -> None:
    assert _modules_loaded_by("--help") == []
    assert _modules_loaded_by("check", "--live", "--url", f"http://127.0.0.1:{free_port()}") == []


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = run_hearth("--help", env=clean_environment(), cwd=tmp_path)
    assert result.returncode == 0
    for command in ("serve", "migrate", "check", "init", "version"):
        assert command in result.stdout


def test_version(tmp_path: Path) -> None:
    result = run_hearth("version", env=clean_environment(), cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"hearth {hearth_version()}"


def test_init_writes_fresh_private_secrets_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = clean_environment()
    env.pop("SECRET_KEY")
    first = run_hearth("init", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    env_file = tmp_path / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    content = env_file.read_text()
    assert content not in first.stdout + first.stderr  # secrets are not echoed

    again = run_hearth("init", env=env, cwd=tmp_path)
    assert again.returncode == 1
    assert "already exists" in again.stderr
    assert env_file.read_text() == content

    forced = run_hearth("init", "--force", env=env, cwd=tmp_path)
    assert forced.returncode == 0
    assert env_file.read_text() != content
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HEARTH_SECRETS_DIR", str(tmp_path / "none"))
    settings = load_settings()  # the written file is a valid configuration
    assert len(settings.secret_key.get_secret_value()) >= 32
    assert settings.admin_password is not None


@pytest.mark.redis
@pytest.mark.worker
def test_check_connects_to_each_component(tmp_path: Path, database_url: str) -> None:
    env = clean_environment(DATABASE_URL=database_url, REDIS_URL=REDIS_URL)
    no_worker = run_hearth("check", "--worker", env=env, cwd=tmp_path)
    assert no_worker.returncode == 1
    assert "has not reported" in no_worker.stdout
    with hearth_worker({**env, "WORKER_HEARTBEAT_SECONDS": "1"}, tmp_path):
        ok = run_hearth("check", env=env, cwd=tmp_path)
        worker = run_hearth("check", "--worker", "--json", env=env, cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith(f"hearth {hearth_version()}: ok")
    for name in ("db", "redis", "worker"):
        assert f"  {name} " in ok.stdout
    assert worker.returncode == 0, worker.stdout
    assert json.loads(worker.stdout)["status"] == "ok"

    down = {**env, "DATABASE_URL": f"postgresql://u:db-secret@127.0.0.1:{free_port()}/x"}
    unreadable = run_hearth("check", "--worker", env=down, cwd=tmp_path)
    assert unreadable.returncode == 1
    assert "cannot read heartbeats" in unreadable.stdout
    assert "db-secret" not in unreadable.stdout + unreadable.stderr

    env["REDIS_URL"] = f"redis://:check-secret@127.0.0.1:{free_port()}/0"
    degraded = run_hearth("check", "--json", env=env, cwd=tmp_path)
    assert degraded.returncode == 1
    report = json.loads(degraded.stdout)
    assert report["status"] == "degraded"
    assert report["checks"]["redis"]["status"] == "unreachable"
    assert "check-secret" not in degraded.stdout + degraded.stderr


def test_live_and_ready_probes_ask_the_running_server(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    env = clean_environment(DATABASE_URL=database_url, PORT=str(port))
    with hearth_server(env, tmp_path, port) as server:
        server.wait_until("/readyz", 200)
        live = run_hearth("check", "--live", env=env, cwd=tmp_path)
        ready = run_hearth("check", "--ready", "--json", env=env, cwd=tmp_path)
        assert live.returncode == 0, live.stdout
        assert ready.returncode == 0, ready.stdout
        assert json.loads(ready.stdout)["status"] == "ready"
        # The probe asks anonymously: statuses, no details (the database's version).
        assert json.loads(ready.stdout)["checks"]["db"] == {
            "status": "ok",
            "detail": None,
            "latency_ms": json.loads(ready.stdout)["checks"]["db"]["latency_ms"],
        }
        assert "PostgreSQL" not in ready.stdout
        assert server.stop() == 0
    gone = run_hearth("check", "--live", env=env, cwd=tmp_path)
    assert gone.returncode == 1
    assert "no answer" in gone.stdout


def test_the_console_script_is_installed() -> None:
    assert os.access(HEARTH, os.X_OK)


def test_requirements_txt_matches_the_lock() -> None:
    """requirements.txt is exported from uv.lock (`make requirements`); it must not drift."""
    from tests.support.users import uv_executable

    exported = subprocess.run(
        [
            uv_executable(),
            "export",
            "--locked",
            "--no-dev",
            "--all-extras",
            "--no-emit-project",
            "--quiet",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout

    def pins(text: str) -> list[str]:
        return [line for line in text.splitlines() if line and not line.startswith("#")]

    assert pins(exported) == pins((ROOT / "requirements.txt").read_text()), (
        "run `make requirements`"
    )
