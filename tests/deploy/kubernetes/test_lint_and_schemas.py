"""Helm lints the chart clean in strict mode, and every object of every rendering passes the
strict API schemas of the oldest supported (1.28) and the newest bundled Kubernetes."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest

from tests.support.kubernetes import (
    CHART,
    KUBERNETES_VERSIONS,
    VALUES,
    VARIANTS,
    Rendered,
    kinds,
    validation_errors,
)


@pytest.mark.parametrize("kube_version", [f"v{v}" for v in KUBERNETES_VERSIONS])
@pytest.mark.parametrize("values", list(VALUES))
def test_chart_lints_clean_in_strict_mode(values: str, kube_version: str) -> None:
    report = helm.lint(CHART, VALUES[values], strict=True, kube_version=kube_version)
    assert report["total_charts_linted"] == 1
    assert report["errors"] == []
    # Severity 2 is a warning, 3 an error; 1 (info) is only "icon is recommended".
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


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
