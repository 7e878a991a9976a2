"""The Kubernetes deployment, rendered offline for tests/deploy/kubernetes/: the Helm chart
(deploy/helm/hearth) with each values file and variant, the kustomize base (deploy/kubernetes),
the strict schema check of every object, and helpers to find things in a rendering.

helm-python-sdk renders and lints through Helm's own Go SDK (a bundled libhelm_c, no helm
binary); kubernetes-validate holds the API schemas; `kubectl kustomize` builds the base.
"""

from __future__ import annotations

import base64
import copy
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import yaml
from kubernetes_validate.utils import latest_version

from hearth.config.settings import SECRET_FIELDS
from tests.support.paths import ROOT

CHART = ROOT / "deploy" / "helm" / "hearth"
KUSTOMIZE = ROOT / "deploy" / "kubernetes"
RELEASE, NAMESPACE = "hearth", "home"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schemas.
KUBERNETES_VERSIONS = ("1.28.0", latest_version())

DATABASE_URL = "postgresql://hearth:db-password-7f3a@postgres.db.svc:5432/hearth"
# Every secret Hearth reads (its SecretStr settings), and the database URL with its password.
SECRET_NAMES = {name.upper() for name in SECRET_FIELDS} | {"DATABASE_URL"}
WORKER_PROBE = ["hearth", "check", "--worker"]


def merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in, key by key (as Helm merges values files)."""
    result = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def values_file(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART / name).read_text(encoding="utf-8"))
    return loaded


# values.yaml plus the one value it cannot default: the external PostgreSQL.
DEFAULT = {"database": {"url": DATABASE_URL}}
VALUES = {
    "default": DEFAULT,
    "dev": values_file("values.dev.yaml"),
    "production": values_file("values.production.example.yaml"),
}
# Other shapes a release can take; each is rendered and validated too.
VARIANTS = {
    "existing-secret": {
        "secret": {"existingSecret": "hearth-own"},
        "database": {"existingSecret": "hearth-own"},
    },
    "cloudnativepg": {"database": {"existingSecret": "hearth-db-app", "existingSecretKey": "uri"}},
    "external-redis-url": merged(
        DEFAULT,
        {"redis": {"enabled": False, "external": {"url": "redis://:redis-pw-91c2@valkey:6379/0"}}},
    ),
    "external-redis-secret": merged(
        DEFAULT, {"redis": {"enabled": False, "external": {"existingSecret": "valkey"}}}
    ),
    "no-init-container": merged(DEFAULT, {"migrations": {"initContainer": False}}),
    "everything-on": merged(
        DEFAULT,
        {
            "ingress": {"enabled": True, "className": "nginx", "tls": {"enabled": True}},
            "api": {"pdb": {"enabled": True}, "autoscaling": {"enabled": True}},
            "worker": {"pdb": {"enabled": True}, "autoscaling": {"enabled": True}},
            "redis": {"persistence": {"enabled": False}},
            "imagePullSecrets": [{"name": "regcred"}],
            "image": {"digest": "sha256:" + "0" * 64},
        },
    ),
}


class Rendered:
    """A chart rendering: its Kubernetes objects and its NOTES.txt."""

    def __init__(self, manifests: dict[str, str]) -> None:
        self.notes = ""
        self.objects: list[dict[str, Any]] = []
        for path, text in sorted(manifests.items()):
            if path.endswith("NOTES.txt"):
                self.notes = text
            else:
                self.objects += [obj for obj in yaml.safe_load_all(text) if obj]


def render(values: dict[str, Any]) -> Rendered:
    with helm.Chart.load(CHART) as chart:
        return Rendered(chart.render(values, name=RELEASE, namespace=NAMESPACE))


def kustomize_build(path: Path) -> list[dict[str, Any]]:
    built = subprocess.run(
        ["kubectl", "kustomize", str(path)], capture_output=True, text=True, check=False
    )
    assert built.returncode == 0, built.stderr
    return [obj for obj in yaml.safe_load_all(built.stdout) if obj]


# --- finding things in a rendering ---------------------------------------------------------


def one(objects: list[dict[str, Any]], kind: str, component: str | None = None) -> dict[str, Any]:
    found = [
        obj
        for obj in objects
        if obj["kind"] == kind
        and (
            component is None
            or obj["metadata"]["labels"]["app.kubernetes.io/component"] == component
        )
    ]
    assert len(found) == 1, f"{len(found)} {kind} objects for {component}"
    return found[0]


def kinds(objects: list[dict[str, Any]]) -> list[str]:
    return sorted(obj["kind"] for obj in objects)


def pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet"):
            yield obj["metadata"]["name"], obj["spec"]["template"]["spec"]
        elif obj["kind"] == "Pod":
            yield obj["metadata"]["name"], obj["spec"]


def pod_spec(objects: list[dict[str, Any]], component: str) -> dict[str, Any]:
    spec: dict[str, Any] = one(objects, "Deployment", component)["spec"]["template"]["spec"]
    return spec


def container(spec: dict[str, Any], name: str) -> dict[str, Any]:
    every: list[dict[str, Any]] = spec.get("initContainers", []) + spec["containers"]
    (found,) = [c for c in every if c["name"] == name]
    return found


def config_map_of(objects: list[dict[str, Any]], spec: dict[str, Any]) -> dict[str, str]:
    """The data of the ConfigMap the pod's Hearth container takes its environment from."""
    (source,) = spec["containers"][0]["envFrom"]
    name = source["configMapRef"]["name"]
    (config,) = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == name]
    data: dict[str, str] = config["data"]
    return data


def secret_data(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def pod_checksums(rendered: Rendered, component: str) -> dict[str, str]:
    deployment = one(rendered.objects, "Deployment", component)
    annotations: dict[str, str] = deployment["spec"]["template"]["metadata"]["annotations"]
    return {k: v for k, v in annotations.items() if k.startswith("checksum/")}


def validation_errors(objects: list[dict[str, Any]]) -> list[str]:
    """Every object against the strict API schema of each version; what did not pass."""
    errors = []
    for obj in objects:
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                path = ".".join(str(part) for part in exc.path)
                errors.append(f"{obj['kind']}/{obj['metadata']['name']} ({version}) {path}: {exc}")
            except kubernetes_validate.SchemaNotFoundError as exc:
                errors.append(exc.message)  # an unknown kind or apiVersion is an error here
    return errors
