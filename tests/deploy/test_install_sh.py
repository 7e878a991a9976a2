"""deploy/systemd/install.sh, run for real in a private mount namespace (its /etc, /var/lib
and /opt are throwaway layers over this machine's): it installs a Hearth that serves as the
user `hearth` with its secrets from $CREDENTIALS_DIRECTORY, changes nothing when run again,
wires further credentials into both units, and sets up embedded mode.

The script below runs once for the module; each test reads what one step left behind. Root is
needed to make the namespace; as another user the module asks `sudo -n` (passwordless sudo,
as CI runners have)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.database import create_database, drop_database
from tests.support.paths import ROOT
from tests.support.services import REDIS_URL, free_port
from tests.systemd.machine import source_snapshot

pytestmark = [
    # The first test runs install.sh, which builds a virtualenv: the script alone may take 600 s.
    pytest.mark.timeout(900),
    pytest.mark.systemd,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.embedded_postgres,  # install.sh --embedded, then serve --with-worker
    pytest.mark.worker,
]

# Run in a private mount namespace: /etc and /var/lib are overlays, /opt a tmpfs. Every step
# leaves what the tests read in $work.
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

# --uninstall where systemd does not run (a chroot): the links `systemctl enable` made go
# with the units; a drop-in of the operator's own, the settings, the data and the user stay.
# --purge removes those too; run again, each has nothing left to do.
mkdir -p /etc/systemd/system/multi-user.target.wants
ln -s /etc/systemd/system/hearth.service /etc/systemd/system/multi-user.target.wants/
printf '[Service]\nMemoryMax=3G\n' >/etc/systemd/system/hearth.service.d/memory.conf
leftovers() {
    for path in /etc/systemd/system/multi-user.target.wants/hearth.service \
        /etc/systemd/system/hearth.service /etc/systemd/system/hearth-worker.service.d \
        /etc/systemd/system/hearth.service.d/embedded.conf \
        /etc/systemd/system/hearth.service.d/memory.conf /opt/hearth /etc/hearth/hearth.env \
        /var/lib/hearth/postgres; do
        if [ -e "$path" ] || [ -L "$path" ]; then echo "$path"; fi
    done
    getent passwd hearth | cut -d: -f1 || true
}
"$install" --uninstall >"$work/uninstall.log"
leftovers >"$work/after-uninstall.txt"
"$install" --uninstall >"$work/uninstall-again.log"
"$install" --uninstall --purge >"$work/purge.log"
leftovers >"$work/after-purge.txt"
"$install" --uninstall --purge >"$work/purge-again.log"
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


class Run:
    """What the install script left in its work directory."""

    def __init__(self, work: Path) -> None:
        self.work = work

    def log(self, name: str) -> str:
        return (self.work / name).read_text()

    def line(self, name: str) -> str:
        return self.log(name).strip()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """install.sh, run five times and then as systemd would start Hearth, normal and embedded."""
    work = tmp_path_factory.mktemp("install")
    source = source_snapshot(work / "source")
    uv = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    database = create_database()
    try:
        result = subprocess.run(
            [
                *_namespace_command(),
                str(work),
                database,
                REDIS_URL,
                str(free_port()),
                str(source / "deploy" / "systemd" / "install.sh"),
                uv if Path(uv).exists() else "",
            ],
            input=INSTALL_SCRIPT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        yield Run(work)
    finally:
        drop_database(database)


def test_the_first_run_creates_everything(run: Run) -> None:
    first = run.log("run1.log")
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


def test_a_second_run_changes_nothing_and_keeps_what_the_operator_edited(run: Run) -> None:
    second = run.log("run2.log")
    assert _actions(second) <= {"unchanged", "kept", "skipped"}, second
    assert run.log("before.txt") == run.log("after.txt")
    assert run.log("secret_key").startswith("my-own-secret-key-which-install-must-keep")
    assert "Next:" not in second


def test_secrets_and_settings_are_readable_only_by_whom_they_are_for(run: Run) -> None:
    modes = dict(line.split(" ", 1) for line in run.log("modes.txt").splitlines())
    assert modes["/etc/hearth"] == "750 root hearth"
    assert modes["/etc/hearth/credentials"] == "700 root root"
    assert modes["/etc/hearth/credentials/SECRET_KEY"] == "600 root root"
    assert modes["/etc/hearth/credentials/ADMIN_PASSWORD"] == "600 root root"
    assert modes["/etc/hearth/hearth.env"] == "640 root hearth"
    assert modes["/var/lib/hearth"] == "750 hearth hearth"


def test_a_further_credential_is_made_root_only_and_wired_into_both_units_then_unwired(
    run: Run,
) -> None:
    assert "fixed      /etc/hearth/credentials/DATABASE_URL" in run.log("run3.log")
    assert run.line("database_url-mode.txt") == "600 root root"
    wiring = "LoadCredential=DATABASE_URL:/etc/hearth/credentials/DATABASE_URL"
    assert wiring in run.log("dropin-web.conf").splitlines()
    assert wiring in run.log("dropin-worker.conf").splitlines()
    assert _actions(run.log("run4.log")) <= {"unchanged", "kept", "skipped"}, run.log("run4.log")
    removed = "removed    /etc/systemd/system/hearth.service.d/credentials.conf"
    assert removed in run.log("run5.log")
    assert run.line("dropins-left.txt") == ""


def test_the_installed_units_verify_and_hearth_serves_as_the_user_hearth(run: Run) -> None:
    assert run.log("verify.log") == ""
    assert run.line("ready.txt") == "yes", run.log("serve.log")
    assert run.line("server-user.txt") == "hearth"
    # JSON logs (for the journal), and the secret from the credentials never printed.
    serve = run.log("serve.log")
    lines = [line for line in serve.splitlines() if line.startswith("{")]
    assert any('"event": "hearth_starting"' in line for line in lines), serve
    assert "my-own-secret-key" not in serve


def test_embedded_mode_runs_postgresql_as_hearth_with_the_worker_beside_the_server(
    run: Run,
) -> None:
    # The user hearth runs PostgreSQL from the venv (root installed it) in the state directory.
    created = "created    /etc/systemd/system/hearth.service.d/embedded.conf"
    assert created in run.log("run-embedded.log")
    assert run.log("embedded-dropin.txt").splitlines() == [
        "ExecStart=/opt/hearth/venv/bin/hearth serve --with-worker",
        "Environment=XDG_RUNTIME_DIR=/run/hearth",
    ]
    assert run.line("embedded-ready.txt") == "yes", run.log("embedded.log")
    assert run.line("pgdata-owner.txt").split()[0] == "hearth"
    assert '"event": "embedded_postgres_started"' in run.log("embedded.log")


def test_uninstall_without_systemd_keeps_what_is_yours_and_purge_removes_it(run: Run) -> None:
    removed = run.log("uninstall.log")
    for line in (
        "removed    /etc/systemd/system/multi-user.target.wants/hearth.service",
        "removed    /etc/systemd/system/hearth.service",
        "removed    /etc/systemd/system/hearth.service.d/embedded.conf",
        "removed    /etc/systemd/system/hearth-worker.service.d/",
        (
            "kept       /etc/systemd/system/hearth.service.d/ (drop-ins of your own: memory.conf;"
            " --purge removes them)"
        ),
        "removed    /opt/hearth (the program)",
        "kept       /etc/hearth (settings and secrets; --purge removes them)",
        "kept       /var/lib/hearth (data; --purge removes it)",
        "kept       user hearth (--purge removes it)",
    ):
        assert line in removed.splitlines(), removed
    assert run.log("after-uninstall.txt").splitlines() == [
        "/etc/systemd/system/hearth.service.d/memory.conf",
        "/etc/hearth/hearth.env",
        "/var/lib/hearth/postgres",
        "hearth",
    ]
    again = run.log("uninstall-again.log")
    assert _actions(again) == {"kept", "Nothing"}, again
    purged = run.log("purge.log")
    for line in (
        "removed    /etc/systemd/system/hearth.service.d",
        "removed    /etc/hearth (settings and secrets)",
        "removed    /var/lib/hearth (data)",
        "removed    user hearth",
    ):
        assert line in purged.splitlines(), purged
    assert run.log("after-purge.txt") == ""
    assert run.line("purge-again.log").startswith("Nothing to remove"), run.log("purge-again.log")
