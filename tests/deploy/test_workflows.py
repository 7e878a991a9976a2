"""The GitHub Actions workflows and the release gate: actionlint and zizmor clean (and a
broken copy not), every action pinned to a full commit SHA with its version beside it, least
privilege per job, a timeout on every job, no run on main ever cancelled, each CI step a
command a person can run, nothing pushed by a job that does not come after the tests, the
run, the arm64 run and the scan of the very archive it pushes, and Dependabot watching every
pin."""

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

GITHUB = ROOT / ".github"
WORKFLOWS = GITHUB / "workflows"
SCRIPTS = GITHUB / "scripts"
VENV_BIN = Path(sys.executable).parent
EXPECTED = ("ci.yml", "release.yml", "helm-lint.yml", "validate-infrastructure.yml")
# The release gate: a job that publishes anything must come after all of these.
GATE = {"test", "build", "run", "arm64", "scan"}

# `uses: owner/repo[/path]@<40 hex> # vX.Y.Z`
PINNED = re.compile(r"^\s*(?:-\s+)?uses:\s+(?P<action>[\w.-]+/[\w./-]+)@(?P<ref>\S+)(?P<rest>.*)$")
# A workflow or action of this repository, in GitHub's self-repository syntax.
SELF_REPOSITORY = re.compile(r"^\s*(?:-\s+)?uses:\s+\$/\S+\s*$")
VERSION_COMMENT = re.compile(r"^\s+#\s+v\d+\.\d+\.\d+\s*$")
FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
# What publishes: a registry login, a signature, a push (of the image, the chart, anything).
PUBLISHING_ACTIONS = ("docker/login-action", "sigstore/cosign-installer")
PUBLISHING_COMMANDS = re.compile(
    r"push-image\.sh|helm push|helm registry login|cosign (sign|attest)|docker push"
    r"|skopeo copy[^\n]*docker://|oras push|crane (push|copy)"
)
# Concurrency: pull requests cancel their obsolete runs; everything else has a group per run,
# so neither a running nor a pending run on main (or a tag) is ever cancelled.
CANCEL_PULL_REQUESTS_ONLY = "${{ github.event_name == 'pull_request' }}"
PER_RUN_UNLESS_PULL_REQUEST = "github.event_name == 'pull_request' && github.ref || github.run_id"


def _workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))


def _load(path: Path) -> dict[Any, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict), path
    return document


def _workflow(name: str) -> dict[Any, Any]:
    return _load(WORKFLOWS / name)


def _triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert isinstance(triggers, dict)
    return triggers


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps", []))


def _all_steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in _steps(job)]


def _action(step: dict[str, Any]) -> str:
    return str(step.get("uses", "")).split("@", 1)[0]


def _needs(job: dict[str, Any]) -> set[str]:
    needs = job.get("needs", [])
    return {needs} if isinstance(needs, str) else set(needs)


def _upstream(jobs: dict[str, Any], name: str) -> set[str]:
    """Every job that `name` waits for, directly or through others."""
    seen: set[str] = set()
    todo = list(_needs(jobs[name]))
    while todo:
        need = todo.pop()
        if need not in seen:
            seen.add(need)
            todo.extend(_needs(jobs[need]))
    return seen


def _publishes(job: dict[str, Any]) -> bool:
    for step in _steps(job):
        if _action(step) in PUBLISHING_ACTIONS:
            return True
        if _action(step) == "docker/build-push-action":
            options = step.get("with", {})
            if str(options.get("push", "false")) != "false" or "registry" in str(
                options.get("outputs", "")
            ):
                return True
        if PUBLISHING_COMMANDS.search(str(step.get("run", ""))):
            return True
    granted = job.get("permissions", {})
    return isinstance(granted, dict) and "write" in {
        granted.get("packages"),
        granted.get("id-token"),
    }


def _tool(name: str) -> str:
    path = VENV_BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    assert found, f"{name} is not installed: run `make .venv/.synced` (it is a dev dependency)"
    return found


def _actionlint(workflows: Path) -> subprocess.CompletedProcess[str]:
    # With shellcheck on PATH, actionlint also checks every `run:` script.
    _tool("shellcheck")
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    files = sorted(str(path) for path in workflows.glob("*.y*ml"))
    return subprocess.run(
        [_tool("actionlint"), *files],
        cwd=workflows.parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _zizmor(github: Path) -> subprocess.CompletedProcess[str]:
    # Offline: the audits that need GitHub's API are left out. --strict-collection: a
    # workflow or dependabot.yml that does not match its schema fails instead of being skipped.
    return subprocess.run(
        [_tool("zizmor"), "--offline", "--strict-collection", "--no-progress", str(github)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_workflows_exist_and_nothing_names_the_old_one() -> None:
    assert set(EXPECTED) <= {path.name for path in _workflow_files()}
    # The release workflow replaced docker-build-push.yml; no doc or script may send a
    # reader to it.
    named = [
        str(path.relative_to(ROOT))
        for pattern in ("*.md", "docs/**/*.md", "scripts/*", "deploy/**/*")
        for path in ROOT.glob(pattern)
        if path.is_file() and "docker-build-push" in path.read_text(errors="replace")
    ]
    assert named == []


def test_actionlint_is_clean() -> None:
    result = _actionlint(WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_is_clean() -> None:
    result = _zizmor(GITHUB)
    assert result.returncode == 0, result.stdout + result.stderr
    # It audited the workflows and dependabot.yml, not an empty directory.
    for path in (*_workflow_files(), GITHUB / "dependabot.yml"):
        assert f"completed {path}" in result.stderr, result.stderr


# Each a small, realistic mistake in a copy of .github, and what should catch it.
BREAKAGES = {
    "template injection": (
        "release.yml",
        "      - name: Read the index digest from the archive\n",
        (
            '      - run: echo "${{ github.head_ref }}"\n'
            "      - name: Read the index digest from the archive\n"
        ),
        "template-injection",
    ),
    "checkout keeps its credentials": (
        "ci.yml",
        "        with:\n          persist-credentials: false\n",
        "",
        "artipacked",
    ),
    "an unpinned action": (
        "release.yml",
        "aquasecurity/trivy-action@ed142fd0673e97e23eac54620cfb913e5ce36c25 # v0.36.0",
        "aquasecurity/trivy-action@master",
        "unpinned-uses",
    ),
}


@pytest.mark.parametrize("breakage", BREAKAGES, ids=list(BREAKAGES))
def test_zizmor_fails_a_broken_copy(tmp_path: Path, breakage: str) -> None:
    name, old, new, audit = BREAKAGES[breakage]
    github = tmp_path / ".github"
    shutil.copytree(GITHUB, github)
    path = github / "workflows" / name
    text = path.read_text()
    assert old in text, f"{name} no longer holds the line this test breaks"
    path.write_text(text.replace(old, new, 1))
    result = _zizmor(github)
    assert result.returncode != 0, result.stdout
    assert audit in result.stdout, result.stdout


def test_zizmor_fails_a_dependabot_file_off_its_schema(tmp_path: Path) -> None:
    github = tmp_path / ".github"
    shutil.copytree(GITHUB, github)
    config = github / "dependabot.yml"
    config.write_text(
        config.read_text().replace("package-ecosystem: uv", "package-ecosystem: pip-tools")
    )
    result = _zizmor(github)
    assert result.returncode != 0
    assert "pip-tools" in result.stdout + result.stderr


def test_actionlint_fails_a_broken_copy(tmp_path: Path) -> None:
    workflows = tmp_path / ".github" / "workflows"
    shutil.copytree(WORKFLOWS, workflows)
    release = workflows / "release.yml"
    # A push job waiting for a scan job that does not exist.
    release.write_text(
        release.read_text().replace(
            "needs: [test, build, run, arm64, scan]", "needs: [test, build, run, arm64, scann]"
        )
    )
    result = _actionlint(workflows)
    assert result.returncode != 0
    assert "scann" in result.stdout


def test_every_action_is_pinned_to_a_commit_with_its_version() -> None:
    problems = []
    pins: dict[str, set[str]] = {}
    for path in _workflow_files():
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if "uses:" not in line or line.lstrip().startswith("#") or SELF_REPOSITORY.match(line):
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
        for step in _all_steps(_load(path)):
            if "uses" in step:
                assert FULL_SHA.match(step["uses"].rsplit("@", 1)[1]), step["uses"]


def test_the_check_catches_an_unpinned_action() -> None:
    assert PINNED.match("      - uses: actions/checkout@v5")
    assert not FULL_SHA.match("v5")
    line = "      - uses: actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8"
    match = PINNED.match(line)
    assert match is not None
    assert not VERSION_COMMENT.match(match["rest"])
    assert not SELF_REPOSITORY.match("      - uses: ./.github/workflows/ci.yml")


def test_permissions_are_per_job_and_minimal() -> None:
    for path in _workflow_files():
        workflow = _load(path)
        # Nothing by default; each job says what it needs.
        assert workflow.get("permissions") == {}, path.name
        for name, job in workflow["jobs"].items():
            granted = job.get("permissions")
            assert isinstance(granted, dict), f"{path.name}:{name} states no permissions"
            assert granted.get("contents") == "read", f"{path.name}:{name}"
            writes = {scope for scope, level in granted.items() if level == "write"}
            publishing = path.name == "release.yml" and name in ("push", "chart")
            assert writes <= ({"packages", "id-token"} if publishing else set()), (
                f"{path.name}:{name} may write {writes}"
            )
        for step in _all_steps(workflow):
            if _action(step) == "actions/checkout":
                assert step.get("with", {}).get("persist-credentials") is False, path.name


def test_every_job_has_a_timeout() -> None:
    for path in _workflow_files():
        for name, job in _load(path)["jobs"].items():
            if "uses" in job:
                # A job that calls a workflow takes no timeout; the called workflow's jobs have
                # theirs (this test reads that file too).
                assert (ROOT / job["uses"].removeprefix("$/")).is_file(), job["uses"]
                continue
            minutes = job.get("timeout-minutes")
            assert isinstance(minutes, int), f"{path.name}:{name} has no timeout-minutes"
            assert 0 < minutes <= 60, f"{path.name}:{name}: {minutes} minutes"


def test_concurrency_never_cancels_a_run_on_main() -> None:
    for path in _workflow_files():
        workflow = _load(path)
        concurrency = workflow.get("concurrency")
        assert isinstance(concurrency, dict), f"{path.name} has no concurrency group"
        assert concurrency["cancel-in-progress"] in (False, CANCEL_PULL_REQUESTS_ONLY), path.name
        # A group shared by runs on main would let GitHub cancel a pending one.
        assert PER_RUN_UNLESS_PULL_REQUEST in concurrency["group"], path.name
    # The called CI's group differs from its caller's: equal groups deadlock.
    called = _workflow("ci.yml")["concurrency"]["group"]
    assert called != _workflow("release.yml")["concurrency"]["group"]
    assert called.startswith("ci-${{ github.workflow }}-")


def test_ci_steps_are_make_targets_with_the_services_the_suite_expects() -> None:
    workflow = _workflow("ci.yml")
    triggers = _triggers(workflow)
    assert set(triggers) == {"pull_request", "workflow_call"}
    job = workflow["jobs"]["test"]
    runs = [step["run"] for step in _steps(job) if "run" in step]
    for target in ("make lint", "make typecheck", "make pytest"):
        assert target in runs
    makefile = (ROOT / "Makefile").read_text()
    for target in ("lint", "typecheck", "pytest", "test-compose", "test-systemd"):
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), target
    # make test installs what the rest needs, then lint, typecheck, the Compose proof, systemd
    # and pytest: the test job runs three, the compose and systemd jobs the other two.
    assert re.search(
        r"^test: test-needs lint typecheck test-compose test-systemd pytest\b",
        makefile,
        re.MULTILINE,
    )
    systemd = workflow["jobs"]["systemd"]
    assert [step["run"] for step in _steps(systemd) if "run" in step] == [
        "sudo --preserve-env=TEST_POSTGRES_URL,TEST_REDIS_URL,PATH make test-systemd"
    ]
    assert job["services"]["postgres"]["ports"] == ["5432:5432"]
    assert job["services"]["postgres"]["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    assert job["services"]["redis"]["ports"] == ["6379:6379"]
    assert job["env"]["TEST_POSTGRES_URL"] == "postgresql://postgres@127.0.0.1:5432/postgres"
    assert job["env"]["TEST_REDIS_URL"].startswith("redis://127.0.0.1:6379/")


def test_ci_runs_the_compose_proof_on_the_official_python_base() -> None:
    job = _workflow("ci.yml")["jobs"]["compose"]
    assert [step["run"] for step in _steps(job) if "run" in step] == ["make test-compose"]
    assert job["env"]["HEARTH_TEST_BASE_IMAGE"] == "python:3.11-slim-bookworm"
    # scripts/test-compose.sh pulls the base it is given instead of debootstrapping one.
    assert "HEARTH_TEST_BASE_IMAGE" in (ROOT / "scripts" / "test-compose.sh").read_text()


def test_the_release_runs_the_tests_first_and_the_build_after_them() -> None:
    workflow = _workflow("release.yml")
    triggers = _triggers(workflow)
    assert triggers["push"]["branches"] == ["main"]
    assert triggers["push"]["tags"] == ["v*.*.*"]
    assert "Dockerfile" in triggers["pull_request"]["paths"]
    jobs = workflow["jobs"]
    assert jobs["test"]["uses"] == "$/.github/workflows/ci.yml"
    assert "workflow_call" in _triggers(_workflow("ci.yml"))
    assert _needs(jobs["build"]) == {"test"}
    for name in ("run", "arm64", "scan"):
        assert _needs(jobs[name]) == {"build"}, name
    assert _needs(jobs["push"]) == GATE
    assert jobs["push"]["if"] == "github.event_name != 'pull_request'"
    assert _needs(jobs["chart"]) >= {*GATE, "push"}
    assert jobs["chart"]["if"] == "startsWith(github.ref, 'refs/tags/v')"


def test_no_job_publishes_before_the_gate() -> None:
    for path in _workflow_files():
        jobs = _load(path)["jobs"]
        for name, job in jobs.items():
            if _publishes(job):
                assert path.name == "release.yml", f"{path.name}:{name} publishes"
                missing = GATE - _upstream(jobs, name)
                assert not missing, f"{name} publishes without waiting for {missing}"
    # The check finds what it should: the release's push and chart jobs publish.
    jobs = _workflow("release.yml")["jobs"]
    assert {name for name, job in jobs.items() if _publishes(job)} == {"push", "chart"}


def test_the_check_catches_a_job_that_pushes_early() -> None:
    jobs = {
        "test": {},
        "build": {"needs": "test", "steps": [{"run": "helm push chart.tgz oci://ghcr.io/x"}]},
    }
    assert _publishes(jobs["build"])
    assert GATE - _upstream(jobs, "build") == GATE - {"test"}
    assert _publishes({"steps": [{"uses": "docker/build-push-action@x", "with": {"push": True}}]})
    assert not _publishes({"steps": [{"uses": "docker/build-push-action@x", "with": {}}]})


def test_the_image_is_built_once_into_an_archive_with_attestations() -> None:
    jobs = _workflow("release.yml")["jobs"]
    builds = [
        (name, step)
        for name, job in jobs.items()
        for step in _steps(job)
        if _action(step) == "docker/build-push-action"
    ]
    assert [name for name, _ in builds] == ["build"]
    options = builds[0][1]["with"]
    assert set(options["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    assert options["outputs"].startswith("type=oci,dest=")
    assert "push" not in options
    assert "tags" not in options  # the archive's index.json then names the one image index
    assert options["sbom"] is True
    assert options["provenance"] == "mode=max"
    assert options["cache-from"] == "type=gha"
    # The build job checks the archive before handing it on: one index, both platforms,
    # each with its SBOM and provenance.
    archive = next(step for step in _steps(jobs["build"]) if step.get("id") == "archive")
    for needle in (
        "in-toto.io/predicate-type",
        "https://spdx.dev/",
        "https://slsa.dev/provenance/",
    ):
        assert needle in archive["run"], needle
    assert jobs["build"]["outputs"]["digest"] == "${{ steps.archive.outputs.digest }}"
    actions = {_action(step) for step in _steps(jobs["build"])}
    assert {"docker/setup-qemu-action", "docker/setup-buildx-action"} <= actions
    meta = next(step for step in _steps(jobs["build"]) if _action(step) == "docker/metadata-action")
    assert "type=semver,pattern={{version}}" in meta["with"]["tags"]
    assert "type=sha" in meta["with"]["tags"]


def test_every_later_job_takes_the_image_from_that_archive() -> None:
    jobs = _workflow("release.yml")["jobs"]
    uploads = [
        step["with"]["name"]
        for step in _steps(jobs["build"])
        if _action(step) == "actions/upload-artifact"
    ]
    assert uploads == ["hearth-image"]
    for name in ("run", "arm64", "scan", "push"):
        downloads = [
            step["with"]["name"]
            for step in _steps(jobs[name])
            if _action(step) == "actions/download-artifact"
        ]
        assert downloads == ["hearth-image"], name
    loads = {
        name: " ".join(str(step.get("run", "")) for step in _steps(jobs[name]))
        for name in ("run", "arm64", "scan")
    }
    assert ".github/scripts/load-image.sh" in loads["run"]
    assert " amd64 " in loads["run"]
    assert " arm64 " in loads["arm64"]
    assert jobs["scan"]["strategy"]["matrix"]["arch"] == ["amd64", "arm64"]
    push = " ".join(str(step.get("run", "")) for step in _steps(jobs["push"]))
    assert '.github/scripts/push-image.sh "$RUNNER_TEMP/hearth.oci.tar" "$DIGEST"' in push
    assert jobs["push"]["env"]["DIGEST"] == "${{ needs.build.outputs.digest }}"


def test_the_run_jobs_start_the_image_and_check_it() -> None:
    jobs = _workflow("release.yml")["jobs"]
    run = " ".join(str(step.get("run", "")) for step in _steps(jobs["run"]))
    assert jobs["run"]["env"]["HEARTH_IMAGE"] == "hearth-release:amd64"
    assert "make secrets" in run
    assert "docker compose up --detach --no-build --wait" in run
    assert "docker compose exec -T api hearth check" in run
    arm64 = jobs["arm64"]
    commands = " ".join(str(step.get("run", "")) for step in _steps(arm64))
    assert "docker/setup-qemu-action" in {_action(step) for step in _steps(arm64)}
    assert commands.count("--platform linux/arm64") >= 3
    assert '"$IMAGE" hearth version' in commands
    assert '"$IMAGE" hearth migrate' in commands
    assert arm64["services"]["postgres"]["image"].startswith("pgvector/pgvector:")


def test_the_scan_fails_on_fixable_critical_vulnerabilities() -> None:
    scan = _workflow("release.yml")["jobs"]["scan"]
    trivy = next(step for step in _steps(scan) if _action(step) == "aquasecurity/trivy-action")
    options = trivy["with"]
    assert options["severity"] == "CRITICAL"
    assert options["ignore-unfixed"] is True
    assert options["exit-code"] == "1"
    assert options["image-ref"] == "hearth-release:${{ matrix.arch }}"


def test_the_pushed_digest_is_signed_and_the_chart_published_on_tags() -> None:
    jobs = _workflow("release.yml")["jobs"]
    push = jobs["push"]
    assert "sigstore/cosign-installer" in {_action(step) for step in _steps(push)}
    commands = " ".join(str(step.get("run", "")) for step in _steps(push))
    assert 'cosign sign --yes "$IMAGE@$DIGEST"' in commands
    assert "cosign verify" in commands
    login = next(step for step in _steps(push) if _action(step) == "docker/login-action")
    assert login["with"]["password"] == "${{ secrets.GITHUB_TOKEN }}"
    chart = " ".join(str(step.get("run", "")) for step in _steps(jobs["chart"]))
    for command in (
        "helm package",
        'helm push "$RUNNER_TEMP/chart/hearth-$version.tgz" "oci://',
        "cosign sign --yes",
    ):
        assert command in chart
    assert "oci://ghcr.io" not in chart or "$repository" in chart


def test_the_chart_carries_artifact_hub_annotations() -> None:
    chart = _load(ROOT / "deploy" / "helm" / "hearth" / "Chart.yaml")
    annotations = chart.get("annotations", {})
    assert "artifacthub.io/license" in annotations, sorted(annotations)


def test_the_helper_scripts_pass_shellcheck() -> None:
    scripts = sorted(SCRIPTS.glob("*.sh"))
    assert {path.name for path in scripts} == {"load-image.sh", "push-image.sh"}
    result = subprocess.run(
        [_tool("shellcheck"), "--severity=style", *map(str, scripts)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout
    for path in scripts:
        assert os.access(path, os.X_OK), f"{path.name} is not executable"


def test_dependabot_watches_every_pin_and_groups_minor_and_patch() -> None:
    config = _load(GITHUB / "dependabot.yml")
    assert config["version"] == 2
    updates = {update["package-ecosystem"]: update for update in config["updates"]}
    assert {"github-actions", "docker", "docker-compose", "helm", "uv"} <= set(updates)
    assert updates["helm"]["directory"] == "/deploy/helm/hearth"
    for ecosystem, update in updates.items():
        groups = update.get("groups", {})
        assert any(
            set(group.get("update-types", [])) == {"minor", "patch"} for group in groups.values()
        ), f"{ecosystem}: minor and patch updates are not grouped"
    # What the entries point at exists.
    assert (ROOT / "Dockerfile").is_file()
    assert (ROOT / "docker-compose.yml").is_file()
    assert (ROOT / "uv.lock").is_file()
    assert (ROOT / "deploy" / "helm" / "hearth" / "values.yaml").is_file()


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("helm-lint.yml", "scripts/validate-deployment.sh helm"),
        ("validate-infrastructure.yml", "scripts/validate-deployment.sh"),
    ],
)
def test_validation_workflows_run_the_one_local_command(name: str, command: str) -> None:
    runs = [step["run"].strip() for step in _all_steps(_workflow(name)) if "run" in step]
    assert command in runs
