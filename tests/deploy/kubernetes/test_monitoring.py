"""The Prometheus Operator objects: the chart's ServiceMonitor and PrometheusRule (off by
default) and the kustomize component (deploy/kubernetes/components/monitoring) pass their
CRDs' schemas (tests/deploy/crds/), scrape the api's Service with the token from a Secret,
and carry the rules of deploy/prometheus/hearth-rules.yml."""

from __future__ import annotations

import copy
import os
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.support.kubernetes import (
    CHART,
    DEFAULT,
    KUSTOMIZE,
    VALUES,
    VARIANTS,
    kinds,
    kustomize_build,
    merged,
    one,
    render,
    validation_errors,
)
from tests.support.monitoring import COMPONENT, crd_errors, load_rules

MONITORING = VARIANTS["monitoring"]
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}


@pytest.fixture(scope="module")
def monitored() -> list[dict[str, Any]]:
    return render(MONITORING).objects


@pytest.fixture(scope="module")
def component(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The base with the component, through an overlay in another namespace, as a user
    would add it."""
    overlay = tmp_path_factory.mktemp("overlay")
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": "home",
                "resources": [os.path.relpath(KUSTOMIZE, overlay)],
                "components": [os.path.relpath(COMPONENT, overlay)],
            }
        ),
        encoding="utf-8",
    )
    return kustomize_build(overlay)


def _check_scrapes_the_api(objects: list[dict[str, Any]], secret: str) -> dict[str, Any]:
    """The ServiceMonitor selects the api's Service, in its namespace, by a port it has, with
    the job name the rules expect and the token from ``secret``; returns it."""
    monitor = one(objects, "ServiceMonitor")
    service = one(objects, "Service", "api")
    labels = service["metadata"]["labels"]
    spec = monitor["spec"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert monitor["metadata"].get("namespace") == service["metadata"].get("namespace")
    assert "namespaceSelector" not in spec  # its own namespace, wherever it is deployed
    assert labels[spec["jobLabel"]] == "hearth"  # job="hearth" in hearth-rules.yml
    (endpoint,) = spec["endpoints"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert endpoint["authorization"] == {
        "type": "Bearer",
        "credentials": {"name": secret, "key": "token"},
    }
    return monitor


def test_monitoring_is_off_by_default() -> None:
    for values in VALUES.values():
        assert not OPERATOR_KINDS & set(kinds(render(values).objects))
    assert not OPERATOR_KINDS & set(kinds(kustomize_build(KUSTOMIZE)))


def test_the_chart_s_service_monitor_scrapes_the_api_with_the_token(
    monitored: list[dict[str, Any]],
) -> None:
    monitor = _check_scrapes_the_api(monitored, "hearth-metrics")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert crd_errors(monitor) == []


def test_the_chart_s_prometheus_rule_is_the_rules_file(monitored: list[dict[str, Any]]) -> None:
    rule = one(monitored, "PrometheusRule")
    assert rule["spec"]["groups"] == load_rules()["groups"]
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert crd_errors(rule) == []


def test_the_chart_with_monitoring_lints_clean_and_validates(
    monitored: list[dict[str, Any]],
) -> None:
    report = helm.lint(CHART, MONITORING, strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []
    assert set(kinds(monitored)) >= OPERATOR_KINDS
    assert validation_errors(monitored) == []


def test_the_chart_refuses_a_service_monitor_it_cannot_make_work() -> None:
    tokenless = merged(DEFAULT, {"metrics": {"serviceMonitor": {"enabled": True}}})
    with pytest.raises(helm.HelmError, match=r"tokenSecret\.name"):
        render(tokenless)
    switched_off = merged(MONITORING, {"config": {"METRICS_ENABLED": "false"}})
    with pytest.raises(helm.HelmError, match="METRICS_ENABLED=false"):
        render(switched_off)
    for wrong in ({"interval": "30 seconds"}, {"tokenSecret": {"name": "Not_A_Name"}}):
        with pytest.raises(helm.HelmError, match="schema"):
            render(merged(MONITORING, {"metrics": {"serviceMonitor": wrong}}))


def test_the_kustomize_component_scrapes_the_api_and_carries_the_rules(
    component: list[dict[str, Any]],
) -> None:
    _check_scrapes_the_api(component, "hearth-metrics")
    rule = one(component, "PrometheusRule")
    assert rule["spec"]["groups"] == load_rules()["groups"]
    # The overlay's namespace reaches the component's objects too.
    assert {obj["metadata"]["namespace"] for obj in component if obj["kind"] != "Namespace"} == {
        "home"
    }
    assert validation_errors(component) == []


def test_the_crd_validation_refuses_what_the_api_server_would(
    monitored: list[dict[str, Any]],
) -> None:
    """The checks above can fail: unknown fields, bad durations and missing fields."""
    monitor = copy.deepcopy(one(monitored, "ServiceMonitor"))
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    monitor["spec"]["endpoints"][0]["scrapeTimeout"] = "10 seconds"
    errors = "\n".join(crd_errors(monitor))
    assert "intervall" in errors
    assert "10 seconds" in errors

    rule = copy.deepcopy(one(monitored, "PrometheusRule"))
    del rule["spec"]["groups"][0]["rules"][0]["expr"]
    rule["spec"]["groups"][0]["rules"][1]["for"] = "five minutes"
    errors = "\n".join(crd_errors(rule))
    assert "'expr' is a required property" in errors
    assert "five minutes" in errors

    assert crd_errors({"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor"})


def test_the_component_is_a_component() -> None:
    """Added with `components:` (never `resources:`), it holds the two objects only."""
    kustomization = yaml.safe_load((COMPONENT / "kustomization.yaml").read_text("utf-8"))
    assert kustomization["kind"] == "Component"
    assert sorted(kinds(kustomize_build(COMPONENT))) == sorted(OPERATOR_KINDS)
