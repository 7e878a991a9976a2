"""scripts/validate-deployment.sh: every deployment file of the checkout passes its validator,
and the script says clearly what is missing or broken instead of crashing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import ROOT

SCRIPT = ROOT / "scripts" / "validate-deployment.sh"
CHECKS = ("compose", "hadolint", "helm", "kustomize", "shellcheck", "systemd", "actionlint")


def _validate(*args: str, root: Path | None = None) -> subprocess.CompletedProcess[str]:
    # A tree without .venv (the tmp_path ones) finds the tools of this one on PATH.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(
        [str(SCRIPT), *(["--root", str(root)] if root else []), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PATH": path},
    )


def _summary(output: str) -> dict[str, str]:
    lines = output.split("Summary (", 1)[1].splitlines()[1:]
    return {line.split()[0]: line.split(None, 1)[1] for line in lines if line.strip()}


@pytest.mark.systemd
def test_the_checkout_passes_every_validator() -> None:
    result = _validate()
    assert result.returncode == 0, result.stdout + result.stderr
    assert _summary(result.stdout) == dict.fromkeys(CHECKS, "PASS")


def test_missing_files_are_reported_not_crashed_on(tmp_path: Path) -> None:
    result = _validate(root=tmp_path)
    assert result.returncode == 1
    assert _summary(result.stdout) == dict.fromkeys(CHECKS, "MISSING (its files do not exist)")
    assert "missing: Dockerfile" in result.stdout
    assert "missing: deploy/helm/hearth/Chart.yaml" in result.stdout

    allowed = _validate("--allow-missing", root=tmp_path)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert set(_summary(allowed.stdout).values()) == {"SKIPPED (missing files)"}


def _tree_with_systemd(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "deploy" / "systemd", tmp_path / "deploy" / "systemd")
    return tmp_path


@pytest.mark.systemd
def test_only_the_checks_asked_for_run(tmp_path: Path) -> None:
    root = _tree_with_systemd(tmp_path)
    result = _validate("systemd", "shellcheck", root=root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _summary(result.stdout) == {"systemd": "PASS", "shellcheck": "PASS"}
    assert "Overall exposure level for hearth.service" in result.stdout

    unknown = _validate("kubernetes")
    assert unknown.returncode == 2
    assert "unknown check 'kubernetes'" in unknown.stderr


@pytest.mark.systemd
def test_a_broken_unit_fails_the_systemd_check(tmp_path: Path) -> None:
    root = _tree_with_systemd(tmp_path)
    unit = root / "deploy" / "systemd" / "hearth-worker.service"
    unit.write_text(unit.read_text().replace("ProtectSystem=strict", "ProtectSystem=sometimes"))
    result = _validate("systemd", root=root)
    assert result.returncode == 1
    assert "hearth-worker.service" in result.stdout
    assert "sometimes" in result.stdout
    assert _summary(result.stdout) == {"systemd": "FAIL"}


@pytest.mark.systemd
def test_an_unhardened_unit_fails_the_security_review(tmp_path: Path) -> None:
    root = _tree_with_systemd(tmp_path)
    unit = root / "deploy" / "systemd" / "hearth.service"
    text = unit.read_text()
    start, end = text.index("NoNewPrivileges=yes"), text.index("[Install]")
    unit.write_text(text[:start] + text[end:])
    result = _validate("systemd", root=root)
    assert result.returncode == 1
    assert _summary(result.stdout) == {"systemd": "FAIL"}


def test_a_bad_script_and_a_bad_workflow_fail(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "bad.sh").write_text('#!/bin/sh\nrm -rf $1/*\necho "$UNSET_VAR\n')
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "ci.yml").write_text(
        "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ${{ github.nope }}\n"
    )
    result = _validate("shellcheck", "actionlint", root=tmp_path)
    assert result.returncode == 1
    assert _summary(result.stdout) == {"shellcheck": "FAIL", "actionlint": "FAIL"}
    assert "scripts/bad.sh" in result.stdout
    assert "ci.yml" in result.stdout
