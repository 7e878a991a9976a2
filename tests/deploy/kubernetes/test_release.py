"""The release as an operator meets it: wrong values stop with a clear message, a changed
ConfigMap or Secret rolls the pods, `helm test` asks /health, and the example values files
and NOTES.txt say what they should."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import helm_python as helm
import pytest

from hearth.config.settings import Settings
from tests.support.kubernetes import (
    DATABASE_URL,
    DEFAULT,
    EXTERNAL_DATABASE,
    VALUES,
    Rendered,
    container,
    merged,
    named,
    one,
    pod_checksums,
    pod_spec,
    render,
)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"postgresql": {"enabled": False}}, "needs an external PostgreSQL: set database.url"),
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
            merged(EXTERNAL_DATABASE, {"database": {"existingSecret": "db"}}),
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
    assert named(objects, "ConfigMap", "hearth-config")["data"]["SESSION_COOKIE_SECURE"] == "true"
    # CloudNativePG's database: the bundled PostgreSQL is left out.
    assert "postgresql" not in {
        o["metadata"]["labels"].get("app.kubernetes.io/component") for o in objects
    }


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
    assert named(objects, "ConfigMap", "hearth-config")["data"]["LOG_FORMAT"] == "console"
    for component in ("redis", "postgresql"):  # nothing left on disk after an uninstall
        assert "volumeClaimTemplates" not in one(objects, "StatefulSet", component)["spec"]


def test_behind_the_ingress_hearth_believes_the_pod_network_only(
    default: Rendered, production: Rendered, kustomized: list[dict[str, Any]]
) -> None:
    """The Ingress controller's pods are the proxy: their X-Forwarded-For names the client the
    login throttle counts. Without an Ingress the chart names no proxy."""
    assert "FORWARDED_ALLOW_IPS" not in named(default.objects, "ConfigMap", "hearth-config")["data"]
    for config in (
        named(production.objects, "ConfigMap", "hearth-config"),
        named(kustomized, "ConfigMap", "hearth-config"),
    ):
        trusted = config["data"]["FORWARDED_ALLOW_IPS"]
        assert trusted == "10.42.0.0/16"
        assert Settings(_env_file=None, secret_key="k" * 40, forwarded_allow_ips=trusted)
    none = render(merged(VALUES["production"], {"ingress": {"forwardedAllowIps": ""}}))
    assert named(none.objects, "ConfigMap", "hearth-config")["data"]["FORWARDED_ALLOW_IPS"] == ""
