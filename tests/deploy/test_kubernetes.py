"""The Kubernetes deployment: the Helm chart (deploy/helm/hearth) and the kustomize base
(deploy/kubernetes), rendered offline, linted, and checked object by object against the
Kubernetes API schemas of the oldest supported (1.28) and the newest bundled version.

helm-python-sdk renders and lints through Helm's own Go SDK (a bundled libhelm_c, no helm
binary); kubernetes-validate holds the API schemas; `kubectl kustomize` builds the base.
"""

from __future__ import annotations

import base64
import copy
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from hearth.config.loader import load_settings
from hearth.config.settings import SECRET_KEY_PLACEHOLDER
from hearth.errors import StartupError
from tests.support.paths import ROOT
from tests.support.process import HEARTH, clean_environment
from tests.support.services import free_port

CHART = ROOT / "deploy" / "helm" / "hearth"
KUSTOMIZE = ROOT / "deploy" / "kubernetes"
RELEASE, NAMESPACE = "hearth", "home"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schemas.
KUBERNETES_VERSIONS = ("1.28.0", latest_version())

DATABASE_URL = "postgresql://hearth:db-password-7f3a@postgres.db.svc:5432/hearth"
SECRET_NAMES = {
    "SECRET_KEY",
    "ADMIN_PASSWORD",
    "MCP_TOKEN",
    "LLM_API_KEY",
    "GMAIL_CLIENT_SECRET",
    "GMAIL_REFRESH_TOKEN",
    "IMAP_PASSWORD",
    "DATABASE_URL",
}
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


# --- fixtures: each values file rendered once ----------------------------------------------


@pytest.fixture(scope="module")
def kustomized() -> list[dict[str, Any]]:
    return kustomize_build(KUSTOMIZE)


@pytest.fixture(scope="module")
def default() -> Rendered:
    return render(DEFAULT)


@pytest.fixture(scope="module")
def production() -> Rendered:
    return render(VALUES["production"])


@pytest.fixture(scope="module", params=[*VALUES, "kustomize"])
def manifests(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    """The objects of each Helm values file, and of the kustomize base."""
    if request.param == "kustomize":
        objects: list[dict[str, Any]] = request.getfixturevalue("kustomized")
        return objects
    return render(VALUES[request.param]).objects


@pytest.fixture(scope="module")
def variants() -> dict[str, Rendered]:
    return {name: render(values) for name, values in VARIANTS.items()}


# --- helpers to find things in a rendering -------------------------------------------------


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
    (found,) = [c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == name]
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


# --- lint and schema validation ------------------------------------------------------------


@pytest.mark.parametrize("kube_version", [f"v{v}" for v in KUBERNETES_VERSIONS])
@pytest.mark.parametrize("values", list(VALUES))
def test_chart_lints_clean_in_strict_mode(values: str, kube_version: str) -> None:
    report = helm.lint(CHART, VALUES[values], strict=True, kube_version=kube_version)
    assert report["total_charts_linted"] == 1
    assert report["errors"] == []
    # Severity 2 is a warning, 3 an error; 1 (info) is only "icon is recommended".
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


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


def test_every_object_validates_strictly(manifests: list[dict[str, Any]]) -> None:
    assert {"ConfigMap", "Deployment", "Service"} <= set(kinds(manifests))
    assert validation_errors(manifests) == []


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_validates_strictly(variants: dict[str, Rendered], variant: str) -> None:
    assert validation_errors(variants[variant].objects) == []


def test_the_validation_rejects_what_kubernetes_would() -> None:
    """The checks above can fail: unknown fields and unknown API versions are refused."""
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"ports": [{"port": 80, "targetPort": "http", "protocl": "TCP"}]},
    }
    assert validation_errors([service])
    ingress = {"apiVersion": "extensions/v1beta1", "kind": "Ingress", "metadata": {"name": "x"}}
    assert validation_errors([ingress])


# --- what every pod must have ----------------------------------------------------------------


def test_every_container_is_locked_down(manifests: list[dict[str, Any]]) -> None:
    specs = dict(pod_specs(manifests))
    assert len(specs) >= 2
    for name, spec in specs.items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        for each in spec.get("initContainers", []) + spec["containers"]:
            where = f"{name}/{each['name']}"
            context = each["securityContext"]
            assert context["runAsNonRoot"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert each["resources"]["requests"]["memory"], where
            assert each["resources"]["limits"]["memory"], where


def test_hearth_containers_get_a_writable_tmp_and_their_secrets_as_files(
    manifests: list[dict[str, Any]],
) -> None:
    for component in ("api", "worker"):
        spec = pod_spec(manifests, component)
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        assert "emptyDir" in volumes["tmp"]
        assert {"secret", "projected"} & set(volumes["secrets"])
        for each in spec.get("initContainers", []) + spec["containers"]:
            mounts = {m["mountPath"]: m["name"] for m in each["volumeMounts"]}
            assert mounts["/tmp"] == "tmp"
            assert mounts["/run/secrets/hearth"] == "secrets"
            env = {e["name"]: e.get("value") for e in each["env"]}
            assert env["HEARTH_SECRETS_DIR"] == "/run/secrets/hearth"
            assert not any("secretKeyRef" in e.get("valueFrom", {}) for e in each["env"])


def test_api_probes_ask_livez_and_readyz(manifests: list[dict[str, Any]]) -> None:
    spec = pod_spec(manifests, "api")
    api = container(spec, "api")
    assert api["command"] + api["args"] == ["hearth", "serve"]
    assert api["startupProbe"]["httpGet"]["path"] == "/livez"
    assert api["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    ports = {port["name"]: port["containerPort"] for port in api["ports"]}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert api[probe]["httpGet"]["port"] == "http"
    # Hearth listens where the probes and the Service look.
    config = config_map_of(manifests, spec)
    assert config["HOST"] == "0.0.0.0"
    assert int(config["PORT"]) == ports["http"]
    service = one(manifests, "Service", "api")
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_worker_probes_run_hearth_check_worker(manifests: list[dict[str, Any]]) -> None:
    worker = container(pod_spec(manifests, "worker"), "worker")
    assert worker["command"] + worker["args"] == ["hearth", "worker"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert worker[probe]["exec"]["command"] == WORKER_PROBE
        assert worker[probe]["timeoutSeconds"] >= 10  # a Python start on a Raspberry Pi
    assert "ports" not in worker


def test_pods_migrate_in_an_init_container(manifests: list[dict[str, Any]]) -> None:
    for component in ("api", "worker"):
        spec = pod_spec(manifests, component)
        migrate = container(spec, "migrate")
        assert migrate["command"] + migrate["args"] == ["hearth", "migrate"]
        assert migrate["image"] == spec["containers"][0]["image"]
        assert config_map_of(manifests, spec)["MIGRATE_ON_START"] == "false"


def test_without_the_init_container_the_api_migrates_on_start(
    variants: dict[str, Rendered],
) -> None:
    objects = variants["no-init-container"].objects
    for component in ("api", "worker"):
        spec = pod_spec(objects, component)
        assert "initContainers" not in spec
        assert "MIGRATE_ON_START" not in config_map_of(objects, spec)  # Hearth's default: true


# --- secrets ---------------------------------------------------------------------------------


def test_no_secret_value_leaves_the_secret() -> None:
    secrets = {
        "SECRET_KEY": "secret-key-marker-0123456789abcdefghij",
        "ADMIN_PASSWORD": "admin-password-marker",
        "MCP_TOKEN": "mcp-token-marker-0123",
        "LLM_API_KEY": "llm-api-key-marker",
        "GMAIL_CLIENT_SECRET": "gmail-client-secret-marker",
        "GMAIL_REFRESH_TOKEN": "gmail-refresh-token-marker",
        "IMAP_PASSWORD": "imap-password-marker",
    }
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


# --- Redis -----------------------------------------------------------------------------------


def test_bundled_redis_is_reachable_from_hearth_only(default: Rendered) -> None:
    objects = default.objects
    redis = one(objects, "StatefulSet", "redis")
    assert redis["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]
    args = redis["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    service = one(objects, "Service", "redis")
    assert config_map_of(objects, pod_spec(objects, "api"))["REDIS_URL"] == (
        f"redis://{service['metadata']['name']}:6379/0"
    )
    policy = one(objects, "NetworkPolicy", "redis")
    (rule,) = policy["spec"]["ingress"]
    (peer,) = rule["from"]
    assert peer["podSelector"]["matchExpressions"][0]["values"] == ["api", "worker"]


def test_upgrading_hearth_does_not_restart_redis() -> None:
    older = render(merged(DEFAULT, {"image": {"tag": "0.1.0"}})).objects
    newer = render(merged(DEFAULT, {"image": {"tag": "0.2.0"}})).objects
    old, new = (one(objects, "StatefulSet", "redis") for objects in (older, newer))
    assert old["spec"]["template"] == new["spec"]["template"]
    assert pod_spec(older, "api")["containers"] != pod_spec(newer, "api")["containers"]


def test_external_redis_url_goes_to_the_secret(variants: dict[str, Rendered]) -> None:
    objects = variants["external-redis-url"].objects
    assert "StatefulSet" not in kinds(objects)
    assert "NetworkPolicy" not in kinds(objects)
    assert (
        secret_data(one(objects, "Secret"))["REDIS_URL"] == "redis://:redis-pw-91c2@valkey:6379/0"
    )
    assert "REDIS_URL" not in one(objects, "ConfigMap")["data"]


def test_external_redis_url_from_its_own_secret(variants: dict[str, Rendered]) -> None:
    objects = variants["external-redis-secret"].objects
    sources = pod_spec(objects, "worker")["volumes"][0]["projected"]["sources"]
    assert {"secret": {"name": "valkey", "items": [{"key": "REDIS_URL", "path": "REDIS_URL"}]}} in (
        sources
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "needs an external PostgreSQL: set database.url"),
        (
            merged(DEFAULT, {"redis": {"enabled": False}}),
            "redis.enabled=false needs an external Redis: set redis.external.url",
        ),
        (
            merged(DEFAULT, {"redis": {"external": {"url": "redis://r:6379/0"}}}),
            "redis.external is used only with redis.enabled=false",
        ),
        (
            {"secret": {"existingSecret": "mine"}, "database": {"url": DATABASE_URL}},
            "with secret.existingSecret it creates none",
        ),
        (
            merged(DEFAULT, {"database": {"existingSecret": "db"}}),
            "Set database.url or database.existingSecret, not both",
        ),
        (
            merged(DEFAULT, {"api": {"pdb": {"enabled": True, "minAvailable": 1}}}),
            "api.pdb: set minAvailable or maxUnavailable, not both",
        ),
        (
            merged(DEFAULT, {"secret": {"values": {"SECRET_KEY": "too-short"}}}),
            "SECRET_KEY.*does not match pattern",
        ),
        (merged(DEFAULT, {"ingres": {"enabled": True}}), "additional properties 'ingres'"),
    ],
)
def test_wrong_values_stop_with_a_clear_message(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmError, match=message):
        render(values)


# --- rolling on change -----------------------------------------------------------------------


def test_a_config_change_rolls_the_pods(default: Rendered) -> None:
    changed = render(merged(DEFAULT, {"config": {"LOG_LEVEL": "DEBUG"}}))
    again = render(DEFAULT)  # fresh random secrets, yet nothing to roll for
    for component in ("api", "worker"):
        before = pod_checksums(default, component)
        assert set(before) == {"checksum/config", "checksum/secret"}
        assert pod_checksums(again, component) == before
        after = pod_checksums(changed, component)
        assert after["checksum/config"] != before["checksum/config"]
        assert after["checksum/secret"] == before["checksum/secret"]


def test_a_secret_change_rolls_the_pods(default: Rendered) -> None:
    changed = render(merged(DEFAULT, {"secret": {"values": {"MCP_TOKEN": "m" * 24}}}))
    for component in ("api", "worker"):
        before, after = pod_checksums(default, component), pod_checksums(changed, component)
        assert after["checksum/secret"] != before["checksum/secret"]
        assert after["checksum/config"] == before["checksum/config"]


# --- the rest of the chart -------------------------------------------------------------------


def test_helm_test_pod_asks_health(default: Rendered) -> None:
    (pod,) = [o for o in default.objects if o["kind"] == "Pod"]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (check,) = pod["spec"]["containers"]
    assert check["args"] == ["http://hearth.home.svc:80/health"]
    assert check["command"][:2] == ["python", "-c"]


@pytest.mark.parametrize(("status", "exit_code"), [("ok", 0), ("degraded", 0), ("down", 1)])
def test_helm_test_script_passes_unless_hearth_is_down(
    default: Rendered, status: str, exit_code: int
) -> None:
    import http.server
    import json

    from tests.support.services import serving

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"status": status, "checks": {}}).encode()
            self.send_response(200 if self.path == "/health" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    (pod,) = [o for o in default.objects if o["kind"] == "Pod"]
    script = pod["spec"]["containers"][0]["command"][2]
    with serving(http.server.HTTPServer(("127.0.0.1", 0), Health)) as server:
        url = f"http://127.0.0.1:{server.server_address[1]}/health"
        done = subprocess.run(
            [sys.executable, "-c", script, url], capture_output=True, text=True, timeout=30
        )
    assert done.returncode == exit_code, done.stdout + done.stderr
    assert f'"status": "{status}"' in done.stdout


def test_production_example_scales_and_protects_hearth(production: Rendered) -> None:
    objects = production.objects
    assert "replicas" not in one(objects, "Deployment", "api")["spec"]  # the HPA decides
    hpa = one(objects, "HorizontalPodAutoscaler", "api")
    assert (
        hpa["spec"]["scaleTargetRef"]["name"]
        == one(objects, "Deployment", "api")["metadata"]["name"]
    )
    assert one(objects, "PodDisruptionBudget", "api")["spec"]["minAvailable"] == 1
    assert one(objects, "PodDisruptionBudget", "worker")["spec"]["minAvailable"] == 1
    ingress = one(objects, "Ingress")
    assert ingress["spec"]["tls"][0]["hosts"] == ["hearth.example.org"]
    assert one(objects, "ConfigMap")["data"]["SESSION_COOKIE_SECURE"] == "true"


def test_notes_say_how_to_reach_hearth_and_check_health(
    default: Rendered, production: Rendered
) -> None:
    assert "kubectl -n home port-forward service/hearth 8000:80" in default.notes
    assert "curl -s http://127.0.0.1:8000/health" in default.notes
    assert "curl -s https://hearth.example.org/health" in production.notes


def test_dev_values_use_a_local_image_and_readable_logs() -> None:
    objects = render(VALUES["dev"]).objects
    api = container(pod_spec(objects, "api"), "api")
    assert api["image"] == "hearth:dev"
    assert api["imagePullPolicy"] == "Never"
    assert one(objects, "ConfigMap")["data"]["LOG_FORMAT"] == "console"
    assert "volumeClaimTemplates" not in one(objects, "StatefulSet", "redis")["spec"]


# --- kustomize -------------------------------------------------------------------------------


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
