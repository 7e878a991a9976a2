"""The chart as a package: complete metadata for Helm and Artifact Hub, the images it lists
being those it runs, every third-party image pinned by version and digest (in the kustomize
base too), and values.schema.json refusing wrong values with a message naming them (each file
of wrong-values/ says which)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.support.kubernetes import (
    CHART,
    PINNED_IMAGE,
    WRONG_VALUES,
    Rendered,
    render,
)

CHART_YAML = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))


def _images(objects: list[dict[str, Any]]) -> set[str]:
    return {
        each["image"]
        for obj in objects
        if obj["kind"] in ("Deployment", "StatefulSet", "Pod")
        for spec in [obj["spec"]["template"]["spec"] if "template" in obj["spec"] else obj["spec"]]
        for each in spec.get("initContainers", []) + spec["containers"]
    }


def test_chart_metadata_is_complete() -> None:
    for field in ("kubeVersion", "home", "sources", "maintainers", "keywords", "description"):
        assert CHART_YAML.get(field), field
    annotations = CHART_YAML["annotations"]
    assert annotations["artifacthub.io/license"] == "MIT"
    changes = yaml.safe_load(annotations["artifacthub.io/changes"])
    assert {change["kind"] for change in changes} <= {
        "added",
        "changed",
        "deprecated",
        "removed",
        "fixed",
        "security",
    }
    assert all(change["description"] for change in changes)
    for link in yaml.safe_load(annotations["artifacthub.io/links"]):
        assert link["url"].startswith("https://")


def test_the_listed_images_are_those_the_chart_runs(default: Rendered) -> None:
    """Artifact Hub scans the images Chart.yaml lists: they must be the default release's."""
    listed = {
        image["image"]
        for image in yaml.safe_load(CHART_YAML["annotations"]["artifacthub.io/images"])
    }
    assert listed == _images(default.objects)


def test_third_party_images_are_pinned_by_digest(
    manifests: list[dict[str, Any]],
) -> None:
    """Redis and PostgreSQL: a version tag (never a floating one) and the digest it had."""
    hearth = re.compile(r"^(ghcr\.io/hearth-stack/)?hearth[:@]")
    third_party = {image for image in _images(manifests) if not hearth.match(image)}
    assert third_party, "no third-party image in this rendering"
    for image in third_party:
        assert PINNED_IMAGE.match(image), image
        tag = image.split("@")[0].rsplit(":", 1)[1]
        assert re.search(r"\d+\.\d+", tag), f"{image}: a version tag, not a floating one"


@pytest.mark.parametrize("values", sorted(WRONG_VALUES.glob("*.yaml")), ids=lambda p: p.stem)
def test_wrong_values_are_refused_with_a_message_naming_them(values: Path) -> None:
    text = values.read_text(encoding="utf-8")
    expected = re.search(r"^# expect: (.+)$", text, re.MULTILINE)
    assert expected, f"{values.name} has no '# expect: MESSAGE' line"
    with pytest.raises(helm.HelmError, match=expected[1]):
        render(yaml.safe_load(text))


def test_the_schema_refuses_what_it_let_through_before() -> None:
    """The three the chart used to accept; wrong-values/ holds them and more."""
    names = {path.stem for path in WRONG_VALUES.glob("*.yaml")}
    assert {"run-as-non-root-as-text", "cpu-not-a-quantity", "extra-env-number"} <= names


@pytest.mark.parametrize(
    "values",
    [
        {"api": {"resources": {"requests": {"cpu": 0.5, "memory": "1Gi"}}}},
        {"api": {"resources": {"requests": {"cpu": "250m", "memory": "1e9"}}}},
        {"worker": {"extraEnv": [{"name": "A", "value": "1"}]}},
        {
            "worker": {
                "extraEnv": [
                    {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
                ]
            }
        },
        {"securityContext": {"runAsNonRoot": True, "runAsUser": 10002}},
    ],
)
def test_the_schema_still_takes_right_values(values: dict[str, Any]) -> None:
    assert render(values).objects
