"""What a pod gives Hearth (ConfigMap, environment, secret files) is what Hearth reads: its
settings load, the kustomize placeholders stop it, and the migrate init container's command
migrates a real database."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from hearth.config.loader import load_settings
from hearth.errors import StartupError
from tests.support.kubernetes import (
    DATABASE_URL,
    Rendered,
    config_map_of,
    container,
    one,
    pod_spec,
    secret_data,
)
from tests.support.process import HEARTH, clean_environment
from tests.support.services import free_port


def test_hearth_reads_its_settings_from_the_pod(
    default: Rendered, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the api container is given (ConfigMap, env, secret files) is what Hearth needs."""
    spec = pod_spec(default.objects, "api")
    for key, value in secret_data(one(default.objects, "Secret")).items():
        (tmp_path / key).write_text(value + "\n", encoding="utf-8")
    environment = {**config_map_of(default.objects, spec), "HEARTH_SECRETS_DIR": str(tmp_path)}
    for key, value in environment.items():
        monkeypatch.setenv(key, value)

    settings = load_settings(_env_file=None)

    assert settings.database_url == DATABASE_URL.replace("postgresql://", "postgresql+psycopg://")
    assert settings.redis_url == "redis://hearth-redis:6379/0"
    assert settings.host == "0.0.0.0"
    assert settings.port == 8000
    assert settings.migrate_on_start is False
    assert settings.log_format == "json"
    assert settings.admin_password is not None


def test_the_kustomize_placeholders_stop_hearth(
    kustomized: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in secret_data(one(kustomized, "Secret")).items():
        (tmp_path / key).write_text(value, encoding="utf-8")
    monkeypatch.setenv("HEARTH_SECRETS_DIR", str(tmp_path))
    with pytest.raises(StartupError, match="SECRET_KEY: is still the placeholder"):
        load_settings(_env_file=None)


def test_the_init_container_migrates_a_real_database(
    default: Rendered, fresh_database: str, tmp_path: Path
) -> None:
    """The migrate init container's command, with the pod's environment and secret files."""
    spec = pod_spec(default.objects, "api")
    migrate = container(spec, "migrate")
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    stored = secret_data(one(default.objects, "Secret"))
    stored["DATABASE_URL"] = fresh_database  # the test server instead of postgres.db.svc
    for key, value in stored.items():
        (secrets_dir / key).write_text(value, encoding="utf-8")
    env = clean_environment()
    del env["SECRET_KEY"]  # it must come from the secret files
    env.update(config_map_of(default.objects, spec))
    env.update({e["name"]: e["value"] for e in migrate["env"]})
    env["HEARTH_SECRETS_DIR"] = str(secrets_dir)
    env["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"  # not needed to migrate

    command = [HEARTH, *migrate["command"][1:], *migrate["args"]]
    done = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )

    assert done.returncode == 0, done.stderr
    assert "Database is at revision" in done.stdout
