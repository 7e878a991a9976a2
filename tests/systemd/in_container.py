"""deploy/systemd/install.sh on a real systemd, booted as PID 1 in a container on the real
Docker engine. `make test-systemd` runs this module after scripts/test-systemd.sh has made
sure of the engine and the debootstrapped base image; its name keeps it out of `make pytest`,
which may run after that script has stopped an engine it started.

Two machines, one for each way to run: the host's PostgreSQL and Redis (the container shares
the host's network; a database and a Redis database of the test's own), and `--embedded`.
On each, as an operator would: install.sh from a read-only copy of this checkout, the edit of
/etc/hearth/hearth.env, `systemctl enable --now`, /readyz 200 and the worker reporting; then
`systemctl restart hearth` and a reboot survived; the sandbox each process of the units runs
in and the memory limit the kernel enforces, read from /proc and the cgroups (probe.py); on
the first machine an upgrade (changed code and unit) that install.sh rebuilds and restarts,
and a run after it that changes nothing; --uninstall keeping the data, and --purge. Each
machine's story runs once (a fixture); the tests read what it saw. The figures (boot →
/readyz 200 and more) are printed at the end of the run.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.support.database import create_database, drop_database
from tests.support.paths import ROOT
from tests.support.services import REDIS_URL, free_port
from tests.systemd.machine import Machine, ensure_image, figure, source_snapshot

pytestmark = [
    pytest.mark.docker,
    pytest.mark.postgres,
    pytest.mark.redis,
    # The first test of each machine runs its whole story: install.sh builds a virtualenv
    # (from PyPI the first time), two boots, an upgrade.
    pytest.mark.timeout(900),
]

SYSTEMD = ROOT / "deploy" / "systemd"
UNITS = ("hearth.service", "hearth-worker.service")
MODES = ("external", "embedded")
# `systemd-analyze security` on the running units, as measured here: 1.3 "OK" for both, in
# both modes (offline, test_systemd.py holds the unit files to at most 2.0).
EXPOSURE_MAX = 1.3
# The worker's broker: a Redis database of this test's own on the suite's server.
BROKER_URL = urlunsplit(urlsplit(REDIS_URL)._replace(path="/14"))
SIZE_SUFFIXES = {"K": 1024, "M": 1024**2, "G": 1024**3}


def _bytes(size: str) -> int:
    """A systemd size (1536M, 2G) in bytes."""
    return int(size[:-1]) * SIZE_SUFFIXES[size[-1]] if size[-1] in SIZE_SUFFIXES else int(size)


def _setting(path: Path, key: str) -> str:
    """The last value ``path`` gives ``key`` (a unit or a drop-in)."""
    values = [
        line.split("=", 1)[1] for line in path.read_text().splitlines() if line.startswith(key)
    ]
    assert values, f"{path} sets no {key}"
    return values[-1]


def _facts(machine: Machine) -> dict[str, str]:
    """What is left of an installation: paths, the user, the units."""
    output = machine.sh(
        """
        for path in /opt/hearth /etc/hearth/hearth.env /etc/hearth/credentials/SECRET_KEY \
            /var/lib/hearth /var/lib/hearth/postgres /etc/systemd/system/hearth.service \
            /etc/systemd/system/hearth-worker.service /etc/systemd/system/hearth.service.d; do
            if [ -e "$path" ]; then echo "$path=yes"; else echo "$path=no"; fi
        done
        if getent passwd hearth >/dev/null; then echo user=yes; else echo user=no; fi
        echo "active=$(systemctl is-active hearth.service hearth-worker.service | xargs || true)"
        echo "loaded=$(systemctl show -P LoadState hearth.service)"
        """
    )
    return dict(line.split("=", 1) for line in output.splitlines())


def _main_pids(machine: Machine, *units: str) -> dict[str, int]:
    return {unit: report["main_pid"] for unit, report in machine.probe(*units)["units"].items()}


@dataclass
class Story:
    """What one machine showed, step by step."""

    mode: str
    installed: str = ""
    after_enable: dict[str, Any] = field(default_factory=dict)
    worker: dict[str, Any] = field(default_factory=dict)
    restart_pids: tuple[dict[str, int], dict[str, int]] = ({}, {})
    # The units' journal before the reboot (which empties it) and after the uninstall.
    journals: list[str] = field(default_factory=list)
    after_reboot: dict[str, Any] = field(default_factory=dict)
    upgrade: str = ""
    upgrade_pids: tuple[dict[str, int], dict[str, int]] = ({}, {})
    rerun: str = ""
    rerun_pids: tuple[dict[str, int], dict[str, int]] = ({}, {})
    uninstalled: str = ""
    after_uninstall: dict[str, str] = field(default_factory=dict)
    uninstalled_again: str = ""
    purged: str = ""
    after_purge: dict[str, str] = field(default_factory=dict)
    purged_again: str = ""


def _tell(machine: Machine, story: Story, database_url: str | None) -> None:
    """Install, run, restart, reboot, upgrade and remove Hearth on ``machine``."""
    label = story.mode
    embedded = database_url is None
    units = ("hearth.service",) if embedded else UNITS
    figure(f"{label}: container start → systemd booted", machine.boot())

    started = time.monotonic()
    story.installed = machine.install(*(["--embedded"] if embedded else []))
    figure(f"{label}: install.sh (venv from uv.lock)", time.monotonic() - started)

    # The operator's edit: where the database and Redis are (external), a port of the test's.
    port = free_port()
    settings = machine.read("/etc/hearth/hearth.env")
    if embedded:
        assert not re.search(r"^(DATABASE|REDIS)_URL=", settings, re.MULTILINE), settings
    else:
        settings = re.sub(
            r"^DATABASE_URL=.*$", f"DATABASE_URL={database_url}", settings, flags=re.MULTILINE
        )
        settings = re.sub(
            r"^REDIS_URL=.*$", f"REDIS_URL={BROKER_URL}", settings, flags=re.MULTILINE
        )
    machine.write("/etc/hearth/hearth.env", f"{settings.rstrip()}\nPORT={port}\n")

    started = time.monotonic()
    machine.run("systemctl", "enable", "--now", *units)
    machine.wait_ready(port)
    figure(f"{label}: systemctl enable --now → /readyz 200", time.monotonic() - started)
    story.worker = machine.wait_worker(port)
    story.after_enable = machine.probe(*UNITS)
    for unit in units:
        used = int(story.after_enable["units"][unit]["memory_current"]) / 2**20
        figure(f"{label}: {unit} memory (cgroup, after the worker reported)", used, " MiB")

    before = _main_pids(machine, *UNITS)
    started = time.monotonic()
    machine.run("systemctl", "restart", "hearth")
    machine.wait_ready(port)
    figure(f"{label}: systemctl restart hearth → /readyz 200", time.monotonic() - started)
    story.restart_pids = (before, _main_pids(machine, *UNITS))
    story.journals.append(machine.journal(lines=100_000))

    # A reboot: the enabled units come back by themselves.
    figure(f"{label}: shutdown (docker stop)", machine.shut_down())
    started = time.monotonic()
    machine.start()
    machine.wait_ready(port)
    figure(f"{label}: boot (docker start) → /readyz 200", time.monotonic() - started)
    machine.wait_booted()
    story.after_reboot = machine.probe(*UNITS)

    if not embedded:
        # An upgrade: new code and a changed unit in the checkout, install.sh run again.
        init = machine.source / "src" / "hearth" / "__init__.py"
        init.write_text(init.read_text() + "# upgraded\n")
        unit_file = machine.source / "deploy" / "systemd" / "hearth.service"
        unit_file.write_text(unit_file.read_text() + "# upgraded\n")
        before = _main_pids(machine, *UNITS)
        started = time.monotonic()
        story.upgrade = machine.install()
        machine.wait_ready(port)
        figure(f"{label}: upgrade: install.sh → /readyz 200", time.monotonic() - started)
        story.upgrade_pids = (before, _main_pids(machine, *UNITS))
        before = story.upgrade_pids[1]
        story.rerun = machine.install()
        story.rerun_pids = (before, _main_pids(machine, *UNITS))

    story.uninstalled = machine.install("--uninstall")
    story.journals.append(machine.journal(lines=100_000))
    story.after_uninstall = _facts(machine)
    story.uninstalled_again = machine.install("--uninstall")
    story.purged = machine.install("--uninstall", "--purge")
    story.after_purge = _facts(machine)
    story.purged_again = machine.install("--uninstall", "--purge")


@pytest.fixture(scope="module")
def image() -> str:
    return ensure_image()


def _told(image: str, source: Path, mode: str) -> Story:
    """One machine's story, with the machine removed (and its database dropped) after it."""
    machine = Machine(image, mode, source)
    database_url = None if mode == "embedded" else create_database("hearth_systemd")
    story = Story(mode)
    try:
        _tell(machine, story, database_url)
    finally:
        machine.remove()
        if database_url:
            drop_database(database_url)
    return story


@pytest.fixture(scope="module")
def stories(
    image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[Story]]]:
    """Both machines' stories, told at the same time: each spends much of it waiting (for
    PyPI, a boot, a start, a stop), so the two together take little longer than one."""
    with ThreadPoolExecutor(max_workers=len(MODES)) as pool:
        yield {
            mode: pool.submit(_told, image, source_snapshot(tmp_path_factory.mktemp(mode)), mode)
            for mode in MODES
        }


@pytest.fixture(scope="module")
def external(stories: dict[str, Future[Story]]) -> Story:
    return stories["external"].result()


@pytest.fixture(scope="module")
def embedded(stories: dict[str, Future[Story]]) -> Story:
    return stories["embedded"].result()


@pytest.fixture(params=MODES)
def story(request: pytest.FixtureRequest) -> Story:
    result: Story = request.getfixturevalue(request.param)
    return result


def _assert_sandboxed(report: dict[str, Any], unit: str) -> None:
    """Every process of ``unit`` runs in the sandbox the unit file asks for."""
    pid1 = report["pid1"]
    processes = report["units"][unit]["processes"]
    assert processes, report["units"][unit]
    for process in processes:
        where = f"{unit}: {process['comm']} (pid {process['pid']})"
        assert process["uid"] != 0, where  # User=hearth
        assert process["seccomp"] == 2, where  # SystemCallFilter=: a seccomp filter
        assert process["no_new_privs"] == 1, where  # NoNewPrivileges=
        assert int(process["cap_eff"], 16) == 0, where  # CapabilityBoundingSet=
        assert process["root"]["options"].split(",")[0] == "ro", where  # ProtectSystem=strict
        assert "hidepid=invisible" in process["proc"]["super_options"], where  # ProtectProc=
        # PrivateDevices=: a /dev of the unit's own (read-only), not the machine's.
        assert process["dev"]["id"] != pid1["dev"]["id"], where
        assert process["dev"]["options"].split(",")[0] == "ro", where
    # The contrast: systemd itself runs outside every one of these.
    assert (pid1["uid"], pid1["seccomp"]) == (0, 0)
    assert "hidepid" not in pid1["proc"]["super_options"]


def test_both_ways_install_and_serve_under_systemd(story: Story) -> None:
    assert "created    user hearth" in story.installed
    assert re.search(r"^built      /opt/hearth/venv \(hearth \S+\)$", story.installed, re.MULTILINE)
    assert "reloaded   systemd units" in story.installed
    units = story.after_enable["units"]
    if story.mode == "embedded":
        # One unit: PostgreSQL, the web app and the worker; the worker's unit stays off.
        assert (units["hearth.service"]["active"], units["hearth-worker.service"]["active"]) == (
            "active",
            "inactive",
        )
        comms = {process["comm"] for process in units["hearth.service"]["processes"]}
        assert "postgres" in comms, comms
    else:
        assert [units[unit]["active"] for unit in UNITS] == ["active", "active"]
    assert story.worker["status"] == "ok", story.worker


def test_a_restart_and_a_reboot_are_survived(story: Story) -> None:
    before, after = story.restart_pids
    assert after["hearth.service"] not in (0, before["hearth.service"])
    if story.mode == "external":  # the worker's own unit is left alone
        assert after["hearth-worker.service"] == before["hearth-worker.service"]
    units = story.after_reboot["units"]
    # Enabled: both come back at boot (and /readyz was 200 again, or the story stopped).
    expected = {"external": "active", "embedded": "inactive"}[story.mode]
    assert (units["hearth.service"]["active"], units["hearth-worker.service"]["active"]) == (
        "active",
        expected,
    )


# In the units' journal, signs of a stop that was not orderly: a process of the unit killed
# (Celery's pool children, PostgreSQL, or at the stop timeout), tasks lost, the database gone
# under the worker.
DISORDERLY_STOP = re.compile(
    r"exited with 'signal 15|WorkerLostError|UNABLE TO RESTORE|EMERGENCY DUMP"
    r"|with signal SIGKILL|timed out|embedded_postgres_died"
)


def test_every_stop_is_orderly(story: Story) -> None:
    # The restart, the upgrade's restart and the uninstall's stop: SIGTERM to the main
    # process only (KillMode=mixed), which stops the rest in order.
    assert len(story.journals) == 2
    for journal in story.journals:
        assert "Stopped hearth.service" in journal
        assert not DISORDERLY_STOP.findall(journal), journal


def test_the_sandbox_applies_to_every_process_of_the_units(story: Story) -> None:
    for report in (story.after_enable, story.after_reboot):
        _assert_sandboxed(report, "hearth.service")
        if story.mode == "external":
            _assert_sandboxed(report, "hearth-worker.service")


def test_systemd_analyze_security_rates_the_running_units_ok(story: Story) -> None:
    units = story.after_enable["units"]
    running = UNITS if story.mode == "external" else ("hearth.service",)
    for unit in running:
        exposure = units[unit]["exposure"]
        assert exposure is not None, units[unit]
        figure(f"{story.mode}: systemd-analyze security {unit}", exposure, unit="")
        assert exposure <= EXPOSURE_MAX, f"{unit}: exposure {exposure} > {EXPOSURE_MAX}"


def test_the_memory_limits_are_the_kernels(story: Story) -> None:
    units = story.after_enable["units"]
    embedded_dropin = SYSTEMD / "hearth.service.d" / "embedded.conf"
    for unit in UNITS:
        source = SYSTEMD / unit
        if story.mode == "embedded" and unit == "hearth.service":
            source = embedded_dropin
        memory_max = _bytes(_setting(source, "MemoryMax="))
        memory_high = _bytes(_setting(source, "MemoryHigh="))
        assert memory_high < memory_max
        assert (units[unit]["memory_max"], units[unit]["memory_high"]) == (
            str(memory_max),
            str(memory_high),
        )
        if units[unit]["active"] == "active":
            # Enforced: the limit of the unit's memory cgroup (MemoryHigh= is cgroup v2's).
            assert units[unit]["cgroup_memory_limit"] == memory_max, units[unit]


def test_an_upgrade_rebuilds_and_restarts_what_runs_and_a_rerun_changes_nothing(
    external: Story,
) -> None:
    upgrade = external.upgrade
    assert re.search(r"^built      /opt/hearth/venv ", upgrade, re.MULTILINE), upgrade
    assert "updated    /etc/systemd/system/hearth.service" in upgrade, upgrade
    assert "restarted  hearth.service hearth-worker.service" in upgrade, upgrade
    before, after = external.upgrade_pids
    for unit in UNITS:
        assert after[unit] not in (0, before[unit]), (unit, before, after)
    # Once more: nothing to rebuild, nothing restarted.
    assert "restarted" not in external.rerun, external.rerun
    assert "unchanged  /opt/hearth/venv" in external.rerun, external.rerun
    assert external.rerun_pids[0] == external.rerun_pids[1]


def test_uninstall_keeps_settings_and_data_and_purge_removes_them(story: Story) -> None:
    removed = story.uninstalled
    assert "stopped    hearth.service" in removed, removed
    assert "disabled   hearth.service" in removed, removed
    assert "removed    /opt/hearth (the program)" in removed, removed
    assert "kept       /etc/hearth (settings and secrets; --purge removes them)" in removed
    left = story.after_uninstall
    assert (left["active"], left["loaded"]) == ("inactive inactive", "not-found"), left
    assert left["/opt/hearth"] == left["/etc/systemd/system/hearth.service"] == "no", left
    assert left["/etc/systemd/system/hearth.service.d"] == "no", left
    assert left["/etc/hearth/credentials/SECRET_KEY"] == left["user"] == "yes", left
    assert left["/var/lib/hearth"] == "yes", left
    if story.mode == "embedded":
        assert left["/var/lib/hearth/postgres"] == "yes", left  # the database's files
    assert "Nothing to remove" in story.uninstalled_again, story.uninstalled_again

    assert "removed    /etc/hearth (settings and secrets)" in story.purged, story.purged
    assert "removed    user hearth" in story.purged, story.purged
    gone = story.after_purge
    assert {gone[key] for key in gone if key.startswith("/") or key == "user"} == {"no"}, gone
    if story.mode == "external":
        assert "note: the database DATABASE_URL names stays in its server" in story.purged
    assert "Nothing to remove" in story.purged_again, story.purged_again
