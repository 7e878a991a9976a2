"""NetworkPolicies: every workload (api, worker, Redis and the bundled PostgreSQL) is selected
by one that denies what it does not list, in and out; each lets in and out only what the
workload needs, with peers that select the pods they mean; the LLM rule and the api's sources
follow the values."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.kubernetes import Rendered, kinds, one, pod_specs

DNS = {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
DEFAULT_LLM = {"ports": [{"port": 11434, "protocol": "TCP"}, {"port": 443, "protocol": "TCP"}]}


def _pod_labels(objects: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Each workload's pod labels, by component."""
    labels = {}
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet"):
            template = obj["spec"]["template"]["metadata"]["labels"]
            labels[template["app.kubernetes.io/component"]] = template
    return labels


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a Kubernetes label selector (matchLabels, matchExpressions with In) selects
    ``labels``."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", expression
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def _selected(policy: dict[str, Any], labels: dict[str, dict[str, str]]) -> set[str]:
    return {c for c, pod in labels.items() if _selects(policy["spec"]["podSelector"], pod)}


def _peers_select(rule: dict[str, Any], labels: dict[str, dict[str, str]]) -> set[str]:
    """The components a rule's pod peers (in the policy's own namespace) select."""
    return {
        component
        for peer in rule.get("to", rule.get("from", []))
        if set(peer) == {"podSelector"}
        for component, pod in labels.items()
        if _selects(peer["podSelector"], pod)
    }


def _policies(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The NetworkPolicy selecting each workload; fails unless there is exactly one each."""
    labels = _pod_labels(objects)
    policies = [obj for obj in objects if obj["kind"] == "NetworkPolicy"]
    by_component = {}
    for component in labels:
        found = [p for p in policies if component in _selected(p, labels)]
        assert len(found) == 1, f"{len(found)} NetworkPolicies select the {component} pods"
        by_component[component] = found[0]
    assert len(policies) == len(labels), "a NetworkPolicy selects no workload"
    return by_component


def test_every_workload_has_a_default_deny_policy(manifests: list[dict[str, Any]]) -> None:
    """In each values file and the kustomize base: one policy per workload, both directions
    restricted (an empty list denies all), and every pod of a workload is selected."""
    policies = _policies(manifests)
    assert {"api", "worker", "redis"} <= set(policies)
    for component, policy in policies.items():
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"], component
        assert "ingress" in policy["spec"], component
        assert "egress" in policy["spec"], component
    assert len(dict(pod_specs(manifests))) >= len(policies)


def test_each_workload_lets_in_and_out_only_what_it_needs(
    manifests: list[dict[str, Any]],
) -> None:
    labels = _pod_labels(manifests)
    policies = _policies(manifests)
    bundled_postgresql = "postgresql" in labels

    (api_in,) = policies["api"]["spec"]["ingress"]
    assert api_in["ports"] == [{"port": 8000, "protocol": "TCP"}]
    assert policies["worker"]["spec"]["ingress"] == []
    for server, port in (("redis", 6379), ("postgresql", 5432)):
        if server not in policies:
            continue
        (rule,) = policies[server]["spec"]["ingress"]
        assert rule["ports"] == [{"port": port, "protocol": "TCP"}]
        assert _peers_select(rule, labels) == {"api", "worker"}, server
        assert policies[server]["spec"]["egress"] == [], server

    for component in ("api", "worker"):
        egress = policies[component]["spec"]["egress"]
        assert egress[0] == DNS
        by_port = {rule["ports"][0]["port"]: rule for rule in egress}
        assert _peers_select(by_port[6379], labels) == {"redis"}
        if bundled_postgresql:
            assert _peers_select(by_port[5432], labels) == {"postgresql"}
        else:  # the operator's database, on its port, wherever it is
            assert by_port[5432]["ports"] == [{"port": 5432, "protocol": "TCP"}]
        assert 11434 in by_port  # the LLM


def test_the_llm_rule_and_the_api_s_sources_follow_the_values(
    default: Rendered, variants: dict[str, Rendered]
) -> None:
    policies = _policies(default.objects)
    for component in ("api", "worker"):
        assert policies[component]["spec"]["egress"][-1] == DEFAULT_LLM
    assert "from" not in policies["api"]["spec"]["ingress"][0]  # anyone reaches the api

    narrowed = variants["narrow-network-policies"].objects
    labels = _pod_labels(narrowed)
    policies = _policies(narrowed)
    for component in ("api", "worker"):
        egress = policies[component]["spec"]["egress"]
        assert {
            "to": [{"ipBlock": {"cidr": "192.168.1.20/32"}}],
            "ports": [{"port": 11434, "protocol": "TCP"}],
        } in egress
        assert DEFAULT_LLM not in egress
        assert {"ports": [{"port": 993, "protocol": "TCP"}]} in egress  # extraEgress
    (api_in,) = policies["api"]["spec"]["ingress"]
    ingress_controller, test_pod = api_in["from"]
    assert ingress_controller == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
    }
    # `helm test` still reaches the api.
    (pod,) = [o for o in narrowed if o["kind"] == "Pod"]
    assert _selects(test_pod["podSelector"], pod["metadata"]["labels"])
    assert not _peers_select(api_in, labels)  # and no workload of the release

    external = _policies(variants["external-database-narrowed"].objects)
    for component in ("api", "worker"):
        assert {
            "to": [{"ipBlock": {"cidr": "192.168.1.30/32"}}],
            "ports": [{"port": 5432, "protocol": "TCP"}],
        } in external[component]["spec"]["egress"]


def test_keda_s_operator_may_read_redis(variants: dict[str, Rendered]) -> None:
    policies = _policies(variants["keda"].objects)
    (rule,) = policies["redis"]["spec"]["ingress"]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}}} in (
        rule["from"]
    )


def test_network_policies_can_be_switched_off(variants: dict[str, Rendered]) -> None:
    assert "NetworkPolicy" not in kinds(variants["no-network-policies"].objects)


def test_the_checks_above_can_fail(default: Rendered) -> None:
    """A policy whose selector misses its pods, and a second policy on one workload, are
    caught."""
    others = [
        obj
        for obj in default.objects
        if obj["kind"] != "NetworkPolicy" or obj["metadata"]["name"] != "hearth-api"
    ]
    api = one(default.objects, "NetworkPolicy", "api")
    wrong = {**api, "spec": {**api["spec"], "podSelector": {"matchLabels": {"app": "hearth"}}}}
    with pytest.raises(AssertionError, match="0 NetworkPolicies select the api pods"):
        _policies([*others, wrong])
    with pytest.raises(AssertionError, match="2 NetworkPolicies select the api pods"):
        _policies([*default.objects, api])
