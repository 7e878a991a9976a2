"""What a pod gives Hearth (ConfigMap, environment, secret files) is what Hearth reads: its
settings load, for the api and for the worker with its narrower secrets, and the kustomize
placeholders stop it. test_postgresql.py runs the migrate init container's command against a
real database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hearth.config.loader import load_settings
from hearth.errors import StartupError
from tests.support.kubernetes import (
    Rendered,
    config_map_of,
    named,
    pod_secret_files,
    pod_spec,
    secret_data,
)


def _give_the_pod(
    objects: list[dict[str, Any]],
    component: str,
    secrets_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Give this process the environment and secret files of the component's pod."""
    spec = pod_spec(objects, component)
    for path, value in pod_secret_files(objects, spec).items():
        (secrets_dir / path).write_text(value + "\n", encoding="utf-8")
    environment = {**config_map_of(objects, spec), "HEARTH_SECRETS_DIR": str(secrets_dir)}
    for key, value in environment.items():
        monkeypatch.setenv(key, value)


@pytest.mark.parametrize("component", ["api", "worker"])
def test_hearth_reads_its_settings_from_the_pod(
    default: Rendered, component: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default release: the database and Redis URLs are those of the bundled servers'
    Secrets, with their passwords; the worker runs without the operator's password."""
    _give_the_pod(default.objects, component, tmp_path, monkeypatch)

    settings = load_settings(_env_file=None)

    postgresql = secret_data(named(default.objects, "Secret", "hearth-postgresql"))
    redis = secret_data(named(default.objects, "Secret", "hearth-redis"))
    assert settings.database_url == postgresql["uri"].replace(
        "postgresql://", "postgresql+psycopg://"
    )
    assert f":{postgresql['password']}@hearth-postgresql:5432/hearth" in postgresql["uri"]
    assert settings.redis_url == f"redis://:{redis['password']}@hearth-redis:6379/0"
    assert settings.host == "0.0.0.0"
    assert settings.port == 8000
    assert settings.migrate_on_start is False
    assert settings.log_format == "json"
    assert (settings.admin_password is not None) is (component == "api")


def test_the_kustomize_placeholders_stop_hearth(
    kustomized: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for component in ("api", "worker"):
        _give_the_pod(kustomized, component, tmp_path, monkeypatch)
        with pytest.raises(StartupError, match="SECRET_KEY: is still the placeholder"):
            load_settings(_env_file=None)
