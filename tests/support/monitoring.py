"""Hearth's monitoring files for tests/deploy/: the alert rules and the Grafana dashboard,
the metric names a PromQL expression uses and those an exposition exports, promtool, and the
Prometheus Operator's CRD schemas (tests/deploy/crds/, see its README) that the chart's and
the kustomize component's ServiceMonitor and PrometheusRule are validated against."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.paths import ROOT

PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "hearth-rules.yml"
RULES_TESTS = PROMETHEUS / "hearth-rules.test.yml"
SCRAPE_CONFIG = PROMETHEUS / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "hearth.json"
CHART_RULES = ROOT / "deploy" / "helm" / "hearth" / "files" / "hearth-rules.yml"
COMPONENT = ROOT / "deploy" / "kubernetes" / "components" / "monitoring"
CRD_SCHEMAS = ROOT / "tests" / "deploy" / "crds"
CRD_KINDS = {"ServiceMonitor": "servicemonitor.json", "PrometheusRule": "prometheusrule.json"}
OPERATOR_API = "monitoring.coreos.com/v1"
# Series Prometheus makes itself for every target, not Hearth's.
PROMETHEUS_OWN = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})


def promtool() -> str:
    """The promtool binary; a failure (not a skip) that says how to get it when missing."""
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is not on PATH: `make prometheus` installs Debian's prometheus")
    return found


def run_promtool(
    *arguments: str | Path, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run promtool with ``arguments``; its output is for the assertion message."""
    return subprocess.run(
        [promtool(), *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


def load_rules(path: Path = RULES) -> dict[str, Any]:
    """A rules file, parsed."""
    loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


def rule_expressions() -> dict[str, str]:
    """Each alerting or recording rule of hearth-rules.yml by name: its PromQL."""
    return {
        rule.get("alert") or rule["record"]: rule["expr"]
        for group in load_rules()["groups"]
        for rule in group["rules"]
    }


def load_dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def dashboard_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows included; rows themselves excluded."""
    panels = []
    for panel in dashboard["panels"]:
        panels.extend(panel.get("panels", []))
        if panel["type"] != "row":
            panels.append(panel)
    return panels


# --- metric names -----------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_OFFSET = re.compile(r"\boffset\s+-?\w+|@\s*\S+")
_IDENTIFIER = re.compile(r"(?<![\w:.])([a-zA-Z_:][\w:]*)(?!\w)(\s*\()?")
_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "bool",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "inf",
        "nan",
    }
)


def metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression selects (Grafana's $variables allowed): every
    identifier that is not a function, a keyword, a label or inside a string."""
    text = _STRING.sub(" ", expression)
    text = _GRAFANA_VARIABLE.sub(" ", text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if not call and name.lower() not in _KEYWORDS:
            names.add(name)
    return names


def exported_names(exposition: str) -> dict[str, str]:
    """Every series name an exposition (text format) makes queryable, mapped to its family:
    a counter ``x`` gives ``x_total``, a histogram ``x_bucket``, ``x_sum`` and ``x_count``, a
    summary ``x``, ``x_sum`` and ``x_count``. Families with no sample yet count too: their
    series appear as soon as something is recorded."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "info": ("_info",),
    }
    names: dict[str, str] = {}
    for family in text_string_to_metric_families(exposition):
        for suffix in suffixes.get(family.type, ("",)):
            names[family.name + suffix] = family.name
        for sample in family.samples:
            names[sample.name] = family.name
    return names


# --- the Prometheus Operator's CRD schemas ------------------------------------------------


def strict_schema(schema: Any) -> Any:
    """The schema with unknown fields refused where the API server refuses them (kubectl's
    default field validation is Strict): in every object that lists its properties and does
    not preserve unknown fields."""
    if isinstance(schema, list):
        return [strict_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: strict_schema(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        strict["additionalProperties"] = False
    return strict


@cache
def crd_validator(kind: str) -> jsonschema.Draft7Validator:
    """A validator for ``kind`` from its CRD's openAPIV3Schema, strict about unknown fields."""
    schema = json.loads((CRD_SCHEMAS / CRD_KINDS[kind]).read_text(encoding="utf-8"))
    # apiVersion, kind and metadata are checked by the API server itself, not by the CRD.
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft7Validator(strict_schema(schema))


def crd_errors(obj: dict[str, Any]) -> list[str]:
    """What the API server would refuse in a ServiceMonitor or PrometheusRule (the CRD's
    schema; its CEL rules aside); [] when it passes."""
    kind = obj.get("kind", "")
    if obj.get("apiVersion") != OPERATOR_API or kind not in CRD_KINDS:
        return [f"{obj.get('apiVersion')}/{kind} is not a Prometheus Operator kind validated here"]
    name = obj.get("metadata", {}).get("name", "?")
    errors = []
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name) or len(name) > 253:
        errors.append(f"{kind}/{name}: metadata.name is not a DNS subdomain")
    for error in crd_validator(kind).iter_errors(obj):
        path = ".".join(str(part) for part in error.absolute_path)
        errors.append(f"{kind}/{name} {path}: {error.message}")
    return errors
