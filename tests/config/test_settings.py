"""Settings: where values come from, in which order, and how bad ones are reported."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hearth.config.loader import load_settings
from hearth.config.settings import SECRET_KEY_PLACEHOLDER, Settings
from hearth.errors import StartupError
from tests.support.paths import ROOT

KEY = "k" * 40


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # .env is read from the working directory, and /run/secrets must not leak in.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HEARTH_SECRETS_DIR", str(tmp_path / "no-secrets-here"))


def test_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", KEY)
    monkeypatch.setenv("DB_CONNECT_ATTEMPTS", "7")
    settings = load_settings()
    assert settings.secret_key.get_secret_value() == KEY
    assert settings.db_connect_attempts == 7
    assert settings.db_connect_delay_seconds == 2.0  # the default


def test_reads_dotenv_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(f"SECRET_KEY={KEY}\nPORT=9000\nLOG_LEVEL=debug\n")
    monkeypatch.setenv("PORT", "9100")
    settings = load_settings()
    assert settings.secret_key.get_secret_value() == KEY
    assert settings.port == 9100
    assert settings.log_level == "DEBUG"


def test_docker_secrets_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "secret_key").write_text(KEY + "\n")
    monkeypatch.setenv("HEARTH_SECRETS_DIR", str(secrets))
    assert load_settings().secret_key.get_secret_value() == KEY


def test_systemd_credentials_beat_docker_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docker, systemd = tmp_path / "docker", tmp_path / "credentials"
    docker.mkdir()
    systemd.mkdir()
    (docker / "SECRET_KEY").write_text("d" * 40)
    (systemd / "SECRET_KEY").write_text("s" * 40)
    monkeypatch.setenv("HEARTH_SECRETS_DIR", str(docker))
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(systemd))
    assert load_settings().secret_key.get_secret_value() == "s" * 40


def test_name_file_variable_beats_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("SECRET_KEY=" + "e" * 40 + "\n")
    secret_file = tmp_path / "key.txt"
    secret_file.write_text(KEY + "\n")
    monkeypatch.setenv("SECRET_KEY_FILE", str(secret_file))
    assert load_settings().secret_key.get_secret_value() == KEY


def test_name_file_variable_may_live_in_dotenv(tmp_path: Path) -> None:
    secret_file = tmp_path / "key.txt"
    secret_file.write_text(KEY)
    (tmp_path / ".env").write_text(f"SECRET_KEY_FILE={secret_file}\n")
    assert load_settings().secret_key.get_secret_value() == KEY


def test_the_environment_beats_a_name_file_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_file = tmp_path / "key.txt"
    secret_file.write_text("f" * 40)
    monkeypatch.setenv("SECRET_KEY", KEY)
    monkeypatch.setenv("SECRET_KEY_FILE", str(secret_file))
    assert load_settings().secret_key.get_secret_value() == KEY


def test_ollama_base_url_is_an_alias_of_llm_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", KEY)
    monkeypatch.setenv("OLLAMA_BASE_URL", "http://ollama:11434/")
    assert load_settings().llm_endpoint == "http://ollama:11434"
    monkeypatch.setenv("LLM_ENDPOINT", "http://other:11434")
    assert load_settings().llm_endpoint == "http://other:11434"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("postgres://u:p@db/hearth", "postgresql+psycopg://u:p@db/hearth"),
        ("postgresql://u:p@db:5432/hearth", "postgresql+psycopg://u:p@db:5432/hearth"),
        ("postgresql+psycopg://u@db/hearth", "postgresql+psycopg://u@db/hearth"),
        (
            "postgresql://u@/hearth?host=/run/postgresql",
            "postgresql+psycopg://u@/hearth?host=/run/postgresql",
        ),
    ],
)
def test_database_urls_are_normalised_to_psycopg(given: str, stored: str) -> None:
    assert load_settings(secret_key=KEY, database_url=given).database_url == stored


def test_every_problem_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_CONNECT_ATTEMPTS", "many")
    monkeypatch.setenv("DATABASE_URL", "mysql://root@db/hearth")
    monkeypatch.setenv("PORT", "99999")
    with pytest.raises(StartupError) as raised:
        load_settings()
    message = raised.value.message
    assert "4 settings need attention" in message
    assert "SECRET_KEY: is required but not set; run `hearth init`" in message
    assert "DB_CONNECT_ATTEMPTS: must be a whole number (got 'many')" in message
    assert "DATABASE_URL: must be a PostgreSQL URL" in message
    assert "PORT: must be at most 65535" in message


@pytest.mark.parametrize(
    ("secret_key", "expected"),
    [
        ("short", "is 5 characters long; it needs at least 32"),
        (SECRET_KEY_PLACEHOLDER, "is still the placeholder from .env.example"),
    ],
)
def test_weak_secret_keys_are_refused_without_echoing_them(secret_key: str, expected: str) -> None:
    with pytest.raises(StartupError) as raised:
        load_settings(secret_key=secret_key)
    assert f"SECRET_KEY: {expected}" in raised.value.message
    assert secret_key not in raised.value.message


def test_the_example_file_is_refused_as_it_is(tmp_path: Path) -> None:
    example = ROOT / ".env.example"
    (tmp_path / ".env").write_text(example.read_text())
    with pytest.raises(StartupError, match="placeholder"):
        load_settings()


def test_the_example_file_documents_every_setting() -> None:
    from hearth.config.settings import env_names

    example = (ROOT / ".env.example").read_text()
    for name, field in Settings.model_fields.items():
        for variable in env_names(name, field):
            assert f"{variable}=" in example or variable in example, (
                f"{variable} missing from .env.example"
            )


def test_secrets_stay_out_of_repr_and_summary() -> None:
    settings = load_settings(
        secret_key=KEY,
        admin_password="operator-password",
        database_url="postgresql://hearth:db-password@db/hearth",
        redis_url="redis://:redis-password@redis:6379/0",
    )
    shown = repr(settings) + str(settings.public_summary())
    for secret in (KEY, "operator-password", "db-password", "redis-password"):
        assert secret not in shown
        assert secret in settings.secret_values()
    assert settings.public_summary()["database_url"] == "postgresql+psycopg://hearth:***@db/hearth"


def test_secret_file_is_read_verbatim_except_the_final_newline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_file = tmp_path / "admin"
    secret_file.write_text("  spaced password  \n")
    monkeypatch.setenv("ADMIN_PASSWORD_FILE", str(secret_file))
    settings = load_settings(secret_key=KEY)
    assert settings.admin_password is not None
    assert settings.admin_password.get_secret_value() == "  spaced password  "


def test_no_setting_is_read_from_the_real_environment() -> None:
    # Guard for the suite itself: the autouse fixture cleared the Hearth variables.
    assert "SECRET_KEY" not in os.environ
