"""Idle CPU of a whole Hearth stack, process by process: which one wakes, and how much.

The tree is the server, its descendants (the worker, its pool child) and the embedded
PostgreSQL's processes. It is sampled every SAMPLE_S seconds over the window, so processes
born in it are seen (a connection opened and closed each period shows as backends born):

- a process alive at both ends counts its own CPU (user + system) over the window;
- one born in the window counts its CPU from nothing; one that ended counts up to its last
  sample;
- PostgreSQL processes that ended in the window, reaped by the postmaster, count in full
  from the postmaster's ``children_*`` times (their whole life, which began in the window
  for a connection opened and closed in it), and their own samples are left out;
- a PostgreSQL backend is named by the client that holds the other end of its Unix socket
  (``ss -xp``), so the backends of the server, of the worker and of its pool child are told
  apart; the auxiliary processes by their title (checkpointer, walwriter, autovacuum …).

Used by ``bench.embedded_queue``; it reports, it asserts nothing.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench import serve_startup

SAMPLE_S = 1.0
_SS_LINE = re.compile(r"^\S+\s+\S+\s+\d+\s+\d+\s+(\S+)\s+(\d+)\s+(\S+)\s+(\d+)\s*(.*)$")
_PID = re.compile(r"pid=(\d+)")


@dataclass
class Seen:
    role: str
    postgres: bool
    first: float | None  # CPU seconds at the window's start; None: born in the window
    last: float = 0.0
    alive: bool = True


@dataclass
class Idle:
    """CPU seconds over ``seconds``, by role, with the processes of each role."""

    seconds: float
    cpu: dict[str, float] = field(default_factory=dict)
    processes: dict[str, int] = field(default_factory=dict)
    born: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(self.cpu.values())

    def percent(self, cpu_seconds: float) -> float:
        return 100 * cpu_seconds / self.seconds


def _own_cpu(process: psutil.Process) -> float | None:
    try:
        times = process.cpu_times()
    except psutil.Error:
        return None
    return float(times.user + times.system)


def _reaped_cpu(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.children_user + times.children_system)


def _title(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return "?"


def socket_owners() -> dict[int, int]:
    """Backend pid → pid of the process at the other end of its Unix socket (``ss -xp``)."""
    if shutil.which("ss") is None:
        return {}
    out = subprocess.run(["ss", "-xpH"], capture_output=True, text=True, check=False).stdout
    owner: dict[int, list[int]] = {}
    peers: list[tuple[int, int]] = []
    for line in out.splitlines():
        match = _SS_LINE.match(line.strip())
        if match is None:
            continue
        inode, peer = int(match[2]), int(match[4])
        owner[inode] = [int(pid) for pid in _PID.findall(match[5])]
        peers.append((inode, peer))
    clients: dict[int, int] = {}
    for inode, peer in peers:
        for pid in owner.get(inode, []):
            for client in owner.get(peer, []):
                if client != pid:
                    clients.setdefault(pid, client)
    return clients


class Tree:
    """The stack's processes and the role of each."""

    def __init__(self, server_pid: int, pgdata: Path) -> None:
        self.server = psutil.Process(server_pid)
        self.pgdata = pgdata
        self.postmaster: psutil.Process | None = None

    def processes(self) -> dict[int, tuple[psutil.Process, bool]]:
        """Each process by pid, with whether it is PostgreSQL's."""
        found = {self.server.pid: (self.server, False)}
        with contextlib.suppress(psutil.Error):
            found.update({p.pid: (p, False) for p in self.server.children(recursive=True)})
        for process in serve_startup.postgres_processes(self.pgdata):
            found[process.pid] = (process, True)
            try:
                if process.parent() is None or process.parent().name() != "postgres":  # type: ignore[union-attr]
                    self.postmaster = process
            except psutil.Error:
                continue
        return found

    def role(self, process: psutil.Process, *, postgres: bool, clients: dict[int, int]) -> str:
        """What the process is, in a few words."""
        if not postgres:
            return self._hearth_role(process)
        if self.postmaster is not None and process.pid == self.postmaster.pid:
            return "postgres: postmaster"
        title = _title(process).removeprefix("postgres: ")
        if "[local]" in title or "127.0.0.1" in title:  # a client backend: user db host state
            client = clients.get(process.pid)
            if client is None:
                return "postgres: backend, client gone"
            try:
                return f"postgres: backend of {self._hearth_role(psutil.Process(client))}"
            except psutil.Error:
                return "postgres: backend, client gone"
        return f"postgres: {re.sub(r'[0-9 ]+$', '', title)}"

    def _hearth_role(self, process: psutil.Process) -> str:
        if process.pid == self.server.pid:
            return "hearth serve"
        try:
            parent = process.parent()
        except psutil.Error:
            parent = None
        if parent is not None and parent.pid == self.server.pid:
            return "hearth worker, main" if "worker" in _title(process) else _title(process)[:40]
        if parent is not None and "worker" in _title(parent):
            return "hearth worker, pool child"
        return _title(process)[:40] or "?"


ENDED = "postgres: ended in the window (whole life)"


class Sampler:
    """What each process of the tree used, from its first sample to its last."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self.seen: dict[int, Seen] = {}
        self.clients: dict[int, int] = {}

    def sample(self, *, first: bool) -> None:
        current = self.tree.processes()
        if any(pid not in self.seen for pid, (_, postgres) in current.items() if postgres):
            self.clients.update(socket_owners())  # a new backend: who holds its other end
        for pid, (process, postgres) in current.items():
            cpu = _own_cpu(process)
            if cpu is None:
                continue
            if pid not in self.seen:
                role = self.tree.role(process, postgres=postgres, clients=self.clients)
                self.seen[pid] = Seen(role, postgres, cpu if first else None)
            self.seen[pid].last = cpu
        for pid, entry in self.seen.items():
            entry.alive = pid in current

    def result(self, seconds: float, reaped: float) -> Idle:
        """CPU by role; ``reaped``: what the postmaster's ended children used."""
        cpu: dict[str, float] = defaultdict(float)
        count: dict[str, int] = defaultdict(int)
        born: dict[str, int] = defaultdict(int)
        for entry in self.seen.values():
            if entry.first is None:
                born[entry.role] += 1
            if entry.postgres and not entry.alive:
                count[ENDED] += 1  # counted in full below, through the postmaster
                continue
            cpu[entry.role] += entry.last - (entry.first or 0.0)
            count[entry.role] += 1
        if reaped or count.get(ENDED):
            cpu[ENDED] += reaped
        return Idle(seconds, dict(cpu), dict(count), dict(born))


def measure(server_pid: int, pgdata: Path, seconds: float) -> Idle:
    """Sample the tree every SAMPLE_S for ``seconds``; CPU by role."""
    tree = Tree(server_pid, pgdata)
    sampler = Sampler(tree)
    sampler.sample(first=True)
    reaped_before = _reaped_cpu(tree.postmaster) if tree.postmaster else 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(min(SAMPLE_S, max(0.0, deadline - time.monotonic())))
        sampler.sample(first=False)
    reaped = (_reaped_cpu(tree.postmaster) if tree.postmaster else 0.0) - reaped_before
    return sampler.result(seconds, reaped)


def rows(idle: Idle) -> list[tuple[str, ...]]:
    """The breakdown as table rows, the costliest first."""
    table: list[tuple[str, ...]] = [
        ("process (role)", "count", "born in window", "CPU", "% of a core")
    ]
    for role, seconds in sorted(idle.cpu.items(), key=lambda item: -item[1]):
        table.append(
            (
                role,
                str(idle.processes.get(role, 0)),
                str(idle.born.get(role, 0)),
                f"{seconds * 1000:.0f} ms",
                f"{idle.percent(seconds):.2f} %",
            )
        )
    table.append(
        (
            "total",
            str(sum(idle.processes.values())),
            "",
            f"{idle.total * 1000:.0f} ms",
            f"{idle.percent(idle.total):.2f} %",
        )
    )
    return table
