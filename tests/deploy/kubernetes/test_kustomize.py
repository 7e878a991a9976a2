"""The kustomize base (deploy/kubernetes): an overlay replaces its Secret and merges its
ConfigMap, and its namespace enforces the restricted Pod Security Standard."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from tests.support.kubernetes import (
    DATABASE_URL,
    KUSTOMIZE,
    config_map_of,
    kustomize_build,
    one,
    pod_spec,
    secret_data,
    validation_errors,
)


def test_kustomize_overlay_replaces_the_secret_and_merges_the_config(
    kustomized: list[dict[str, Any]], tmp_path: Path
) -> None:
    (tmp_path / "hearth.env").write_text(
        f"SECRET_KEY={'s' * 40}\nDATABASE_URL={DATABASE_URL}\n", encoding="utf-8"
    )
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(KUSTOMIZE, tmp_path)],  # never absolute
                "secretGenerator": [
                    {"name": "hearth", "behavior": "replace", "envs": ["hearth.env"]}
                ],
                "configMapGenerator": [
                    {
                        "name": "hearth-config",
                        "behavior": "merge",
                        "literals": ["LLM_ENDPOINT=http://ollama:11434"],
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    objects = kustomize_build(tmp_path)
    secret = one(objects, "Secret")
    assert secret_data(secret) == {"SECRET_KEY": "s" * 40, "DATABASE_URL": DATABASE_URL}
    config = one(objects, "ConfigMap")
    assert config["data"]["LLM_ENDPOINT"] == "http://ollama:11434"
    assert config["data"]["REDIS_URL"] == "redis://hearth-redis:6379/0"
    # The pods follow the hashed names, so a changed value rolls them.
    for component in ("api", "worker"):
        spec = pod_spec(objects, component)
        assert spec["volumes"][0]["secret"]["secretName"] == secret["metadata"]["name"]
        assert config_map_of(objects, spec) == config["data"]
    assert secret["metadata"]["name"] != one(kustomized, "Secret")["metadata"]["name"]
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
