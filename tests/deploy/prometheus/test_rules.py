"""deploy/prometheus: the alert rules pass `promtool check rules` and their own unit tests
(`promtool test rules`, which can fail: a weakened rule breaks them), the example scrape
config passes `promtool check config`, the Helm chart and the kustomize component carry the
same rules, and every rule queries only series Hearth exports."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from tests.support.monitoring import (
    CHART_RULES,
    COMPONENT,
    PROMETHEUS_OWN,
    RULES,
    RULES_TESTS,
    SCRAPE_CONFIG,
    load_rules,
    metric_names,
    rule_expressions,
    run_promtool,
)

SYNC = "run scripts/sync-prometheus-rules.sh after editing deploy/prometheus/hearth-rules.yml"
# What issue 12 asks the rules to watch, at least.
ALERTS = {
    "HearthComponentDown",
    "HearthDatabaseDown",
    "HearthQueueGrowing",
    "HearthTasksFailing",
    "HearthWorkerMissing",
    "HearthScrapeFailing",
}


def test_the_rules_pass_promtool_check_rules() -> None:
    checked = run_promtool("check", "rules", RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert rule_expressions().keys() >= ALERTS


def test_the_rules_pass_their_unit_tests() -> None:
    tested = run_promtool("test", "rules", RULES_TESTS)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_fires_and_stays_silent_in_the_unit_tests() -> None:
    cases = yaml.safe_load(RULES_TESTS.read_text(encoding="utf-8"))["tests"]
    checks = [check for case in cases for check in case["alert_rule_test"]]
    for alert in rule_expressions():
        assert any(c["alertname"] == alert and c["exp_alerts"] for c in checks), alert
        assert any(c["alertname"] == alert and not c["exp_alerts"] for c in checks), alert


def test_a_weakened_rule_fails_the_unit_tests(tmp_path: Path) -> None:
    """The unit tests hold the thresholds: waiting 1 minute instead of 5 is caught."""
    shutil.copy(RULES_TESTS, tmp_path)
    text = RULES.read_text(encoding="utf-8")
    component_down = text.index("alert: HearthComponentDown")
    weakened = text[:component_down] + text[component_down:].replace("for: 5m", "for: 1m", 1)
    (tmp_path / RULES.name).write_text(weakened, encoding="utf-8")
    tested = run_promtool("test", "rules", RULES_TESTS.name, cwd=tmp_path)
    assert tested.returncode == 1, tested.stdout + tested.stderr
    assert "HearthComponentDown" in tested.stdout + tested.stderr


def test_the_example_scrape_config_passes_promtool_check_config(tmp_path: Path) -> None:
    # Unchanged, beside its rules and the token file it names (which promtool opens).
    shutil.copy(SCRAPE_CONFIG, tmp_path)
    shutil.copy(RULES, tmp_path)
    config = yaml.safe_load(SCRAPE_CONFIG.read_text(encoding="utf-8"))
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "hearth"  # the job the rules select
    assert job["metrics_path"] == "/metrics"
    authorization = job["authorization"]
    assert authorization["type"] == "Bearer"
    assert "credentials" not in authorization  # the token lives in a file, not here
    (tmp_path / authorization["credentials_file"]).write_text("hearth_token\n", encoding="utf-8")
    assert config["rule_files"] == [RULES.name]

    checked = run_promtool("check", "config", SCRAPE_CONFIG.name, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "1 rule files found" in checked.stdout


def test_the_chart_and_the_component_carry_the_same_rules() -> None:
    assert CHART_RULES.read_bytes() == RULES.read_bytes(), SYNC
    component = yaml.safe_load((COMPONENT / "prometheusrule.yaml").read_text(encoding="utf-8"))
    assert component["spec"]["groups"] == load_rules()["groups"], SYNC


def test_every_rule_queries_series_hearth_exports(exported_metrics: dict[str, str]) -> None:
    for alert, expression in rule_expressions().items():
        names = metric_names(expression)
        assert names, alert
        missing = names - PROMETHEUS_OWN - exported_metrics.keys()
        assert not missing, f"{alert} queries {missing}, which Hearth does not export"
