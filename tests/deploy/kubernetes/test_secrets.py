"""Secrets stay in the Secret: never in the ConfigMap or any other object, refused in config,
generated when not given, or taken from a Secret of the operator's own."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest
import yaml

from hearth.config.settings import SECRET_KEY_PLACEHOLDER
from tests.support.kubernetes import (
    DATABASE_URL,
    DEFAULT,
    SECRET_NAMES,
    Rendered,
    kinds,
    merged,
    one,
    pod_spec,
    render,
    secret_data,
)


def test_no_secret_value_leaves_the_secret() -> None:
    # Every secret Hearth reads, so a secret added to the settings is held to this too.
    secrets = {name: f"{name.lower()}-marker-0123456789abcdefghij" for name in SECRET_NAMES}
    secrets.pop("DATABASE_URL")
    redis_url = "redis://:redis-password-marker@valkey:6379/0"
    objects = render(
        {
            "secret": {"values": secrets},
            "database": {"url": DATABASE_URL},
            "redis": {"enabled": False, "external": {"url": redis_url}},
            "config": {"LLM_ENDPOINT": "http://ollama:11434", "IMAP_USER": "me@example.org"},
        }
    ).objects
    stored = secret_data(one(objects, "Secret"))
    assert stored == {**secrets, "DATABASE_URL": DATABASE_URL, "REDIS_URL": redis_url}
    markers = [*secrets.values(), "db-password-7f3a", "redis-password-marker"]
    for obj in objects:
        if obj["kind"] != "Secret":
            text = yaml.safe_dump(obj)
            assert not [m for m in markers if m in text], obj["metadata"]["name"]
    config = one(objects, "ConfigMap")["data"]
    assert config["LLM_ENDPOINT"] == "http://ollama:11434"
    assert not SECRET_NAMES & set(config)
    assert "REDIS_URL" not in config


def test_kustomize_keeps_secrets_out_of_the_config_map(kustomized: list[dict[str, Any]]) -> None:
    objects = kustomized
    config = one(objects, "ConfigMap")["data"]
    assert not SECRET_NAMES & set(config)
    secret = secret_data(one(objects, "Secret"))
    # The base ships placeholders that Hearth refuses, never a usable key.
    assert secret["SECRET_KEY"] == SECRET_KEY_PLACEHOLDER
    assert set(secret) == {"SECRET_KEY", "DATABASE_URL"}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"ADMIN_PASSWORD": "hunter2"}, "config.ADMIN_PASSWORD looks like a secret"),
        ({"OPENAI_API_KEY": "sk-0000"}, "config.OPENAI_API_KEY looks like a secret"),
        ({"imap_password": "x"}, "config.imap_password looks like a secret"),
        ({"LLM_ENDPOINT": "https://me:pw@llm.example.org"}, "holds a URL with a password"),
        ({"DATABASE_URL": "postgresql://db/hearth"}, "config.DATABASE_URL is set by the chart"),
    ],
)
def test_config_refuses_secrets(config: dict[str, str], message: str) -> None:
    with pytest.raises(helm.HelmRenderError, match=message):
        render(merged(DEFAULT, {"config": config}))


def test_config_accepts_secret_file_paths() -> None:
    objects = render(merged(DEFAULT, {"config": {"IMAP_PASSWORD_FILE": "/mnt/imap/password"}}))
    assert one(objects.objects, "ConfigMap")["data"]["IMAP_PASSWORD_FILE"] == "/mnt/imap/password"


def test_existing_secret_renders_no_secret(variants: dict[str, Rendered]) -> None:
    objects = variants["existing-secret"].objects
    assert "Secret" not in kinds(objects)
    for component in ("api", "worker"):
        volumes = {v["name"]: v for v in pod_spec(objects, component)["volumes"]}
        # DATABASE_URL is a key of the same Secret: projected once, with everything in it.
        assert volumes["secrets"]["projected"]["sources"] == [{"secret": {"name": "hearth-own"}}]
    assert "kubectl -n home get secret" not in variants["existing-secret"].notes


def test_database_url_from_a_cloudnativepg_secret(variants: dict[str, Rendered]) -> None:
    objects = variants["cloudnativepg"].objects
    assert "DATABASE_URL" not in secret_data(one(objects, "Secret"))
    sources = pod_spec(objects, "api")["volumes"][0]["projected"]["sources"]
    assert sources == [
        {"secret": {"name": "hearth"}},
        {
            "secret": {
                "name": "hearth-db-app",
                "items": [{"key": "uri", "path": "DATABASE_URL"}],
            }
        },
    ]


def test_secret_key_and_admin_password_are_generated_when_not_given(default: Rendered) -> None:
    stored = secret_data(one(default.objects, "Secret"))
    assert len(stored["SECRET_KEY"]) >= 32
    assert stored["ADMIN_PASSWORD"]
    assert "MCP_TOKEN" not in stored  # empty values are left out: /mcp stays off
    assert "get secret hearth -o jsonpath='{.data.ADMIN_PASSWORD}'" in default.notes
