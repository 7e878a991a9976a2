"""Secrets stay in the Secret: never in the ConfigMap or any other object, refused in config,
generated when not given, or taken from a Secret of the operator's own; and each pod gets only
the secrets it reads: the worker never the operator's password."""

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
    WORKER_SECRETS,
    Rendered,
    hearth_secret,
    merged,
    named,
    one,
    pod_secret_files,
    pod_spec,
    render,
    secret_data,
)


def test_the_worker_gets_only_the_secrets_it_reads(
    manifests: list[dict[str, Any]], variants: dict[str, Rendered]
) -> None:
    """Every secret Hearth reads, given: the api's pod holds them all, the worker's only
    SECRET_KEY, DATABASE_URL, REDIS_URL and LLM_API_KEY; in each values file, the kustomize
    base, and with a Secret of the operator's own."""
    everything = {name: f"{name.lower()}-0123456789abcdefghijklmnop" for name in SECRET_NAMES}
    for url in ("DATABASE_URL", "REDIS_URL"):
        everything.pop(url)
    given = render({"secret": {"values": everything}}).objects
    worker = pod_secret_files(given, pod_spec(given, "worker"))
    assert set(worker) == WORKER_SECRETS
    assert set(pod_secret_files(given, pod_spec(given, "api"))) == SECRET_NAMES

    for objects in (manifests, variants["existing-secret"].objects):
        spec = pod_spec(objects, "worker")
        volume = next(v for v in spec["volumes"] if v["name"] == "secrets")
        # Every source names its keys: no Secret is mounted whole into the worker.
        for source in volume["projected"]["sources"]:
            assert source["secret"]["items"], source
        keys = {i["path"] for s in volume["projected"]["sources"] for i in s["secret"]["items"]}
        assert keys == WORKER_SECRETS


def test_no_secret_value_leaves_the_secret() -> None:
    # Every secret Hearth reads, so a secret added to the settings is held to this too.
    secrets = {name: f"{name.lower()}-marker-0123456789abcdefghij" for name in SECRET_NAMES}
    secrets.pop("DATABASE_URL")
    secrets.pop("REDIS_URL")
    redis_url = "redis://:redis-password-marker@valkey:6379/0"
    objects = render(
        {
            "secret": {"values": secrets},
            "database": {"url": DATABASE_URL},
            "redis": {"enabled": False, "external": {"url": redis_url}},
            "config": {"LLM_ENDPOINT": "http://ollama:11434", "IMAP_USER": "me@example.org"},
        }
    ).objects
    stored = secret_data(hearth_secret(objects))
    assert stored == {**secrets, "DATABASE_URL": DATABASE_URL, "REDIS_URL": redis_url}
    markers = [*secrets.values(), "db-password-7f3a", "redis-password-marker"]
    for obj in objects:
        if obj["kind"] != "Secret":
            text = yaml.safe_dump(obj)
            assert not [m for m in markers if m in text], obj["metadata"]["name"]
    config = one(objects, "ConfigMap")["data"]
    assert config["LLM_ENDPOINT"] == "http://ollama:11434"
    assert not SECRET_NAMES & set(config)


def test_the_generated_passwords_leave_their_secrets_only_inside_urls(
    default: Rendered,
) -> None:
    """The bundled PostgreSQL's and Redis's passwords are in their Secrets (and the URLs
    there), in no other object; the superuser's reaches no Hearth pod."""
    objects = default.objects
    postgresql = secret_data(named(objects, "Secret", "hearth-postgresql"))
    redis = secret_data(named(objects, "Secret", "hearth-redis"))
    markers = [postgresql["password"], postgresql["postgres-password"], redis["password"]]
    for obj in objects:
        if obj["kind"] != "Secret":
            assert not [m for m in markers if m in yaml.safe_dump(obj)], obj["metadata"]["name"]
    for component in ("api", "worker"):
        files = pod_secret_files(objects, pod_spec(objects, component))
        assert postgresql["postgres-password"] not in "".join(files.values())


def test_kustomize_keeps_secrets_out_of_the_config_map(kustomized: list[dict[str, Any]]) -> None:
    objects = kustomized
    config = named(objects, "ConfigMap", "hearth-config")["data"]
    assert not SECRET_NAMES & set(config)
    secret = secret_data(hearth_secret(objects))
    # The base ships placeholders that Hearth and Redis refuse, never a usable key.
    assert secret["SECRET_KEY"] == SECRET_KEY_PLACEHOLDER
    assert set(secret) == {"SECRET_KEY", "DATABASE_URL", "REDIS_URL"}
    assert secret_data(named(objects, "Secret", "hearth-redis")) == {"password": "replace-me"}


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
    config = named(objects.objects, "ConfigMap", "hearth-config")
    assert config["data"]["IMAP_PASSWORD_FILE"] == "/mnt/imap/password"


def test_existing_secret_renders_no_secret_of_hearth_s(variants: dict[str, Rendered]) -> None:
    objects = variants["existing-secret"].objects
    assert {o["metadata"]["name"] for o in objects if o["kind"] == "Secret"} == {"hearth-redis"}
    volumes = {v["name"]: v for v in pod_spec(objects, "api")["volumes"]}
    # DATABASE_URL is a key of the same Secret: projected once, with everything in it.
    assert volumes["secrets"]["projected"]["sources"] == [
        {"secret": {"name": "hearth-own"}},
        {"secret": {"name": "hearth-redis", "items": [{"key": "uri", "path": "REDIS_URL"}]}},
    ]
    worker = pod_secret_files(objects, pod_spec(objects, "worker"), absent={"hearth-own"})
    assert worker == {
        "SECRET_KEY": "hearth-own/SECRET_KEY",
        "LLM_API_KEY": "hearth-own/LLM_API_KEY",
        "DATABASE_URL": "hearth-own/DATABASE_URL",
        "REDIS_URL": worker["REDIS_URL"],
    }
    assert "kubectl -n home get secret" not in variants["existing-secret"].notes


def test_database_url_from_a_cloudnativepg_secret(variants: dict[str, Rendered]) -> None:
    objects = variants["cloudnativepg"].objects
    assert "DATABASE_URL" not in secret_data(hearth_secret(objects))
    assert "StatefulSet" not in {
        o["kind"] for o in objects if "postgresql" in o["metadata"]["name"]
    }
    for component in ("api", "worker"):
        files = pod_secret_files(objects, pod_spec(objects, component), absent={"hearth-db-app"})
        assert files["DATABASE_URL"] == "hearth-db-app/uri"


def test_secret_key_and_admin_password_are_generated_when_not_given(default: Rendered) -> None:
    stored = secret_data(hearth_secret(default.objects))
    assert len(stored["SECRET_KEY"]) >= 32
    assert stored["ADMIN_PASSWORD"]
    assert "MCP_TOKEN" not in stored  # empty values are left out: /mcp stays off
    assert "get secret hearth -o jsonpath='{.data.ADMIN_PASSWORD}'" in default.notes
