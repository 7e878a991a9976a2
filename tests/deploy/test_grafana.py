"""deploy/grafana/hearth.json: a dashboard Grafana imports as it is (a uid, a title, the
Prometheus data source as a variable, every panel placed and using it), whose queries are
valid PromQL (promtool parses them) and name only series Hearth's /metrics exports (a real
scrape: tests/deploy/conftest.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.monitoring import (
    PROMETHEUS_OWN,
    dashboard_panels,
    exported_names,
    load_dashboard,
    metric_names,
    run_promtool,
)

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# What issue 12 asks the dashboard to show, as the series it must query.
SHOWN = {
    "hearth_component_up",
    "hearth_http_requests_total",
    "hearth_http_request_duration_seconds_bucket",
    "hearth_queue_depth",
    "hearth_tasks_total",
    "hearth_task_duration_seconds_bucket",
    "hearth_documents",
    "hearth_workers_alive",
    "hearth_llm_calls_total",
    "hearth_llm_call_duration_seconds_bucket",
}
LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)$")
# Grafana's variables, as Prometheus would receive them.
VARIABLES = {"$__rate_interval": "1m", "$__interval": "30s", "$job": "hearth"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return load_dashboard()


def expressions(dashboard: dict[str, Any]) -> dict[str, str]:
    """Each query of the dashboard by where it is: its panels' targets and its variables'
    label_values() selectors."""
    found = {
        f"panel {panel['id']} ({panel['title']}) {target['refId']}": target["expr"]
        for panel in dashboard_panels(dashboard)
        for target in panel["targets"]
    }
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = LABEL_VALUES.match(variable["definition"])
            assert match, variable["definition"]
            assert match["selector"], f"${variable['name']}: label_values() of every series"
            found[f"variable ${variable['name']}"] = match["selector"]
    return found


def test_the_dashboard_is_importable(dashboard: dict[str, Any]) -> None:
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", dashboard["uid"])
    assert dashboard["title"] == "Hearth"
    assert isinstance(dashboard["schemaVersion"], int)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["job"]["datasource"] == DATASOURCE
    # No data source of the author's Grafana: each query uses the one chosen on import.
    assert "__inputs" not in dashboard

    panels = dashboard_panels(dashboard)
    ids = [panel["id"] for panel in dashboard["panels"]] + [
        inner["id"] for panel in dashboard["panels"] for inner in panel.get("panels", [])
    ]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["title"], panel["id"]
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_no_two_panels_overlap(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_the_dashboard_shows_what_an_operator_needs(dashboard: dict[str, Any]) -> None:
    used = set().union(*(metric_names(e) for e in expressions(dashboard).values()))
    assert used >= SHOWN, SHOWN - used


def test_every_query_is_valid_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    """Each query parses (`promtool check rules`, as the expression of a recording rule),
    the variables replaced as Grafana replaces them."""
    rules = []
    for number, expression in enumerate(expressions(dashboard).values()):
        for variable, value in VARIABLES.items():
            expression = expression.replace(variable, value)  # noqa: PLW2901
        assert "$" not in expression, expression
        rules.append({"record": f"dashboard:query_{number}", "expr": expression})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), "utf-8")
    checked = run_promtool("check", "rules", path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_query_names_series_hearth_exports(
    dashboard: dict[str, Any], exported_metrics: dict[str, str]
) -> None:
    for where, expression in expressions(dashboard).items():
        names = metric_names(expression)
        assert names, where
        missing = names - PROMETHEUS_OWN - exported_metrics.keys()
        assert not missing, f"{where} queries {missing}, which Hearth does not export"


def test_the_name_check_can_fail() -> None:
    """The check above maps suffixes to their family and catches a name Hearth lacks."""
    exposition = (
        "# HELP hearth_tasks_total Task runs\n# TYPE hearth_tasks_total counter\n"
        "# HELP hearth_d_seconds Durations\n# TYPE hearth_d_seconds histogram\n"
        'hearth_d_seconds_bucket{le="+Inf"} 1.0\nhearth_d_seconds_count 1.0\n'
        "hearth_d_seconds_sum 0.5\n"
    )
    exported = exported_names(exposition)
    assert exported.keys() >= {"hearth_tasks_total", "hearth_d_seconds_bucket"}
    assert exported["hearth_d_seconds_count"] == "hearth_d_seconds"
    expression = (
        'histogram_quantile(0.95, sum by (le, task) (rate(hearth_d_seconds_bucket{job="$job"}'
        '[$__rate_interval]))) / on () group_left sum(hearth_taks_total{outcome="failed"})'
    )
    assert metric_names(expression) == {"hearth_d_seconds_bucket", "hearth_taks_total"}
    assert metric_names(expression) - exported.keys() == {"hearth_taks_total"}
