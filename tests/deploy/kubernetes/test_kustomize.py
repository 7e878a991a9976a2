"""The kustomize base (deploy/kubernetes): an overlay replaces its Secrets, merges its
ConfigMap and narrows its NetworkPolicies, as its README shows, and its namespace enforces the
restricted Pod Security Standard."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from tests.support.kubernetes import (
    DATABASE_URL,
    KUSTOMIZE,
    config_map_of,
    hearth_secret,
    kustomize_build,
    named,
    one,
    pod_secret_files,
    pod_spec,
    secret_data,
    validation_errors,
)

REDIS_URL = "redis://:redis-password-0123456789@hearth-redis:6379/0"


def test_kustomize_overlay_replaces_the_secrets_and_merges_the_config(
    kustomized: list[dict[str, Any]], tmp_path: Path
) -> None:
    (tmp_path / "hearth.env").write_text(
        f"SECRET_KEY={'s' * 40}\nDATABASE_URL={DATABASE_URL}\nREDIS_URL={REDIS_URL}\n",
        encoding="utf-8",
    )
    (tmp_path / "redis.env").write_text("password=redis-password-0123456789\n", encoding="utf-8")
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(KUSTOMIZE, tmp_path)],  # never absolute
                "secretGenerator": [
                    {"name": "hearth", "behavior": "replace", "envs": ["hearth.env"]},
                    {"name": "hearth-redis", "behavior": "replace", "envs": ["redis.env"]},
                ],
                "configMapGenerator": [
                    {
                        "name": "hearth-config",
                        "behavior": "merge",
                        "literals": ["LLM_ENDPOINT=http://ollama:11434"],
                    }
                ],
                # The README's patch: the database at one address only.
                "patches": [
                    {
                        "target": {"kind": "NetworkPolicy", "name": "hearth-(api|worker)"},
                        "patch": yaml.safe_dump(
                            [
                                {
                                    "op": "add",
                                    "path": "/spec/egress/2/to",
                                    "value": [{"ipBlock": {"cidr": "192.168.1.30/32"}}],
                                }
                            ]
                        ),
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    objects = kustomize_build(tmp_path)
    secret = hearth_secret(objects)
    assert secret_data(secret) == {
        "SECRET_KEY": "s" * 40,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
    }
    redis_secret = named(objects, "Secret", "hearth-redis")
    assert secret_data(redis_secret) == {"password": "redis-password-0123456789"}
    config = named(objects, "ConfigMap", "hearth-config")
    assert config["data"]["LLM_ENDPOINT"] == "http://ollama:11434"
    # The pods follow the hashed names, so a changed value rolls them.
    for component in ("api", "worker"):
        spec = pod_spec(objects, component)
        files = pod_secret_files(objects, spec)
        assert files["DATABASE_URL"] == DATABASE_URL
        assert files["REDIS_URL"] == REDIS_URL
        assert config_map_of(objects, spec) == config["data"]
        policy = one(objects, "NetworkPolicy", component)
        (database,) = [
            rule for rule in policy["spec"]["egress"] if rule["ports"][0]["port"] == 5432
        ]
        assert database["to"] == [{"ipBlock": {"cidr": "192.168.1.30/32"}}]
    redis_volumes = one(objects, "StatefulSet", "redis")["spec"]["template"]["spec"]["volumes"]
    (password,) = [v for v in redis_volumes if v["name"] == "password"]
    assert password["secret"]["secretName"] == redis_secret["metadata"]["name"]
    assert secret["metadata"]["name"] != hearth_secret(kustomized)["metadata"]["name"]
    assert validation_errors(objects) == []


def test_kustomize_namespace_enforces_the_restricted_pod_security_standard(
    kustomized: list[dict[str, Any]],
) -> None:
    objects = kustomized
    namespace = one(objects, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"} == {
        namespace["metadata"]["name"]
    }
