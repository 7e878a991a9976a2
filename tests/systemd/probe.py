"""Runs inside the systemd container as root (`python3 - UNIT... < probe.py`, the image's
Python 3.11 and its standard library only) and prints, as JSON, what systemd and the kernel
say about each unit: its state, its memory settings and the limit the kernel enforces, the
exposure `systemd-analyze security` rates, and the sandbox every process of the unit runs
in, read from /proc. PID 1 (systemd, outside any unit's sandbox) comes along for contrast."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

CGROUP = Path("/sys/fs/cgroup")


def _show(unit: str, *properties: str) -> dict[str, str]:
    output = subprocess.run(
        ["systemctl", "show", unit, *(f"--property={name}" for name in properties)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


def _exposure(unit: str) -> float | None:
    output = subprocess.run(
        ["systemd-analyze", "security", "--no-pager", unit], capture_output=True, text=True
    ).stdout
    found = re.search(rf"Overall exposure level for {re.escape(unit)}: ([0-9.]+)", output)
    return float(found.group(1)) if found else None


def _mount(pid: int, target: str) -> dict[str, str]:
    """The mount at ``target`` as process ``pid`` sees it: its id, options and file system."""
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == target:
            after = fields[fields.index("-") + 1 :]
            return {
                "id": fields[0],
                "options": fields[5],
                "fstype": after[0],
                "super_options": after[2] if len(after) > 2 else "",
            }
    return {}


def _process(pid: int) -> dict[str, Any]:
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return {
        "pid": pid,
        "comm": Path(f"/proc/{pid}/comm").read_text().strip(),
        "uid": int(status["Uid"].split()[0]),
        "seccomp": int(status["Seccomp"]),
        "no_new_privs": int(status["NoNewPrivs"]),
        "cap_eff": status["CapEff"].strip(),
        "root": _mount(pid, "/"),
        "dev": _mount(pid, "/dev"),
        "proc": _mount(pid, "/proc"),
    }


def _memory_limit(control_group: str) -> int | None:
    """The limit the kernel enforces on the unit's cgroup (cgroup v1 or v2), in bytes."""
    for path in (
        CGROUP / "memory" / control_group.lstrip("/") / "memory.limit_in_bytes",  # v1
        CGROUP / control_group.lstrip("/") / "memory.max",  # v2
    ):
        if path.exists():
            value = path.read_text().strip()
            return None if value == "max" else int(value)
    return None


def _pids(control_group: str) -> list[int]:
    for hierarchy in (CGROUP / "systemd", CGROUP / "unified", CGROUP):
        procs = hierarchy / control_group.lstrip("/") / "cgroup.procs"
        if procs.exists():
            return sorted(int(pid) for pid in procs.read_text().split())
    return []


def _unit(unit: str) -> dict[str, Any]:
    shown = _show(
        unit, "ActiveState", "MainPID", "ControlGroup", "MemoryMax", "MemoryHigh", "MemoryCurrent"
    )
    group = shown.get("ControlGroup", "")
    processes = []
    for pid in _pids(group) if group else []:
        try:
            processes.append(_process(pid))
        except FileNotFoundError:  # a process that ended meanwhile
            continue
    return {
        "active": shown["ActiveState"],
        "main_pid": int(shown["MainPID"]),
        "memory_max": shown["MemoryMax"],
        "memory_high": shown["MemoryHigh"],
        "memory_current": shown["MemoryCurrent"],
        "cgroup_memory_limit": _memory_limit(group) if group else None,
        "exposure": _exposure(unit),
        "processes": processes,
    }


def main() -> None:
    report = {"pid1": _process(1), "units": {unit: _unit(unit) for unit in sys.argv[1:]}}
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
