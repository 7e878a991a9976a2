"""The GitHub Actions workflows: actionlint clean, every action pinned to a full commit SHA
with its version beside it, least privilege, and each CI step a command a person can run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.paths import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
VENV_BIN = Path(sys.executable).parent
EXPECTED = ("ci.yml", "docker-build-push.yml", "helm-lint.yml", "validate-infrastructure.yml")

# `uses: owner/repo[/path]@<40 hex> # vX.Y.Z`
PINNED = re.compile(r"^\s*(?:-\s+)?uses:\s+(?P<action>[\w.-]+/[\w./-]+)@(?P<ref>\S+)(?P<rest>.*)$")
VERSION_COMMENT = re.compile(r"^\s+#\s+v\d+\.\d+\.\d+\s*$")
FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


def _workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))


def _load(name: str) -> dict[Any, Any]:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(document, dict)
    return document


def _steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def _tool(name: str) -> str:
    path = VENV_BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    assert found, f"{name} is not installed: run `uv sync` (it is a dev dependency)"
    return found


def test_the_four_workflows_exist() -> None:
    assert set(EXPECTED) <= {path.name for path in _workflow_files()}


def test_actionlint_is_clean() -> None:
    # With shellcheck on PATH, actionlint also checks every `run:` script.
    _tool("shellcheck")
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [_tool("actionlint"), *map(str, _workflow_files())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_action_is_pinned_to_a_commit_with_its_version() -> None:
    problems = []
    pins: dict[str, set[str]] = {}
    for path in _workflow_files():
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if "uses:" not in line or line.lstrip().startswith("#"):
                continue
            where = f"{path.name}:{number}: {line.strip()}"
            match = PINNED.match(line)
            if match is None:
                problems.append(f"{where}: not owner/repo@ref")
                continue
            if not FULL_SHA.match(match["ref"]):
                problems.append(f"{where}: not pinned to a 40-hex commit SHA")
            if not VERSION_COMMENT.match(match["rest"]):
                problems.append(f"{where}: no `# vX.Y.Z` comment naming the pinned version")
            pins.setdefault(match["action"], set()).add(match["ref"] + match["rest"].strip())
    assert not problems, "\n".join(problems)
    # The same action is pinned to the same commit everywhere, so an upgrade is one search.
    assert {action: refs for action, refs in pins.items() if len(refs) > 1} == {}
    # And the parsed workflows agree with the line-by-line reading.
    for path in _workflow_files():
        for step in _steps(_load(path.name)):
            if "uses" in step:
                assert FULL_SHA.match(step["uses"].rsplit("@", 1)[1]), step["uses"]


def test_the_check_catches_an_unpinned_action() -> None:
    assert PINNED.match("      - uses: actions/checkout@v5")
    assert not FULL_SHA.match("v5")
    line = "      - uses: actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8"
    match = PINNED.match(line)
    assert match is not None
    assert not VERSION_COMMENT.match(match["rest"])


def test_permissions_are_minimal() -> None:
    for path in _workflow_files():
        workflow = _load(path.name)
        assert workflow.get("permissions") == {"contents": "read"}, path.name
        for name, job in workflow["jobs"].items():
            granted = job.get("permissions", {"contents": "read"})
            assert isinstance(granted, dict), f"{path.name}:{name}: {granted!r}"
            writes = {scope for scope, level in granted.items() if level == "write"}
            allowed = {"packages"} if path.name == "docker-build-push.yml" else set()
            assert writes <= allowed, f"{path.name}:{name} may write {writes}"
        for step in _steps(workflow):
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False, path.name


def test_ci_steps_are_make_targets_with_the_services_the_suite_expects() -> None:
    workflow = _load("ci.yml")
    job = workflow["jobs"]["test"]
    runs = [step["run"] for step in job["steps"] if "run" in step]
    for target in ("make lint", "make typecheck", "make pytest"):
        assert target in runs
    makefile = (ROOT / "Makefile").read_text()
    for target in ("lint", "typecheck", "pytest"):
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), target
    assert job["services"]["postgres"]["ports"] == ["5432:5432"]
    assert job["services"]["postgres"]["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    assert job["services"]["redis"]["ports"] == ["6379:6379"]
    assert job["env"]["TEST_POSTGRES_URL"] == "postgresql://postgres@127.0.0.1:5432/postgres"
    assert job["env"]["TEST_REDIS_URL"].startswith("redis://127.0.0.1:6379/")


def test_the_image_is_multi_platform_cached_and_pushed_only_from_main_and_tags() -> None:
    workflow = _load("docker-build-push.yml")
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert triggers["push"]["branches"] == ["main"]
    assert triggers["push"]["tags"] == ["v*.*.*"]
    steps = {step["uses"].split("@")[0]: step for step in _steps(workflow) if "uses" in step}
    for action in (
        "docker/setup-qemu-action",
        "docker/setup-buildx-action",
        "docker/metadata-action",
        "docker/build-push-action",
    ):
        assert action in steps
    build = steps["docker/build-push-action"]["with"]
    assert set(build["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    assert build["push"] == "${{ github.event_name != 'pull_request' }}"
    assert build["cache-from"] == "type=gha"
    assert build["cache-to"].startswith("type=gha")
    assert "type=semver,pattern={{version}}" in steps["docker/metadata-action"]["with"]["tags"]
    login = steps["docker/login-action"]
    assert login["if"] == "github.event_name != 'pull_request'"
    assert login["with"]["password"] == "${{ secrets.GITHUB_TOKEN }}"


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("helm-lint.yml", "scripts/validate-deployment.sh helm"),
        ("validate-infrastructure.yml", "scripts/validate-deployment.sh"),
    ],
)
def test_validation_workflows_run_the_one_local_command(name: str, command: str) -> None:
    runs = [step["run"].strip() for step in _steps(_load(name)) if "run" in step]
    assert command in runs
