"""What every pod of every rendering has: locked-down containers, a writable /tmp, the secrets
as files, probes that ask Hearth, migrations in an init container, and an api that serves on
for a moment after it is told to stop."""

from __future__ import annotations

from typing import Any

from tests.support.kubernetes import (
    WORKER_PROBE,
    Rendered,
    config_map_of,
    container,
    one,
    pod_spec,
    pod_specs,
    render,
)


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


def test_the_api_serves_on_while_its_endpoints_are_removed(
    manifests: list[dict[str, Any]],
) -> None:
    """A preStop sleep (the image has coreutils' sleep) shorter than the grace period, leaving
    Uvicorn time to finish the requests in flight; the worker, behind no Service, has none."""
    spec = pod_spec(manifests, "api")
    hook = container(spec, "api")["lifecycle"]["preStop"]["exec"]["command"]
    assert hook[0] == "sleep"
    delay = int(hook[1])
    assert 1 <= delay <= 10
    assert spec["terminationGracePeriodSeconds"] - delay >= 20
    assert "lifecycle" not in container(pod_spec(manifests, "worker"), "worker")


def test_the_pre_stop_delay_follows_the_values() -> None:
    longer = render({"api": {"preStopSleepSeconds": 15, "terminationGracePeriodSeconds": 45}})
    spec = pod_spec(longer.objects, "api")
    assert container(spec, "api")["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "15"]
    assert spec["terminationGracePeriodSeconds"] == 45
    none = render({"api": {"preStopSleepSeconds": 0}})
    assert "lifecycle" not in container(pod_spec(none.objects, "api"), "api")
