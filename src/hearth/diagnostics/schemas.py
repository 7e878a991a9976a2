"""The diagnostics report as API clients and ``hearth diagnose --json`` see it.

Each section that reads something outside the process (the database, Redis) carries an
``error``: the section says what it could not read instead of the whole report failing, since
a report is most wanted when something is down.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from hearth.health.schemas import HealthReport


class PlatformInfo(BaseModel):
    """Where this process runs."""

    python: str = Field(description="version and implementation, e.g. 3.11.9 (CPython)")
    system: str = Field(description="the operating system as Python's platform module names it")
    architecture: str
    hostname: str
    pid: int
    cpus: int | None
    runs_in: list[str] = Field(description="docker, podman, kubernetes, systemd: the hints found")
    started_at: datetime | None = Field(description="when this process started (UTC)")


class InfrastructureSetting(BaseModel):
    """A setting read at start-up: its value (a secret only as set/unset) and where it came
    from."""

    name: str
    variable: str
    value: str | int | float | bool | None
    secret: bool
    source: str = Field(
        description="default, environment, .env, a NAME_FILE variable, a secrets directory, or "
        "argument (the command line or the program that built the settings)"
    )


class RuntimeSetting(BaseModel):
    """A runtime value (the config page's) in force and its source."""

    name: str
    value: str
    source: Literal["environment", "database", "default"]
    variable: str


class SettingsSection(BaseModel):
    """Both kinds of setting; ``error`` when the database's runtime values were not read
    (the environment's and the defaults are shown then)."""

    infrastructure: list[InfrastructureSetting]
    runtime: list[RuntimeSetting]
    error: str | None = None


class MigrationsSection(BaseModel):
    """The database's migration against the newest this Hearth ships."""

    current: str | None = None
    head: str
    status: Literal["current", "behind", "unknown_revision", "no_tables", "unread"]
    error: str | None = None


class QueuesSection(BaseModel):
    """Messages waiting in each task queue of the broker in use."""

    broker: Literal["redis", "postgresql", "none"]
    depths: dict[str, int] = Field(default_factory=dict)
    error: str | None = None


class WorkerInfo(BaseModel):
    """A worker that reported a heartbeat, alive or not."""

    name: str
    pid: int
    concurrency: int
    started_at: datetime
    last_report_seconds: float
    alive: bool


class WorkersSection(BaseModel):
    """The workers of ``worker_heartbeats`` (a clean stop removes a worker's row)."""

    window_seconds: float = Field(description="a worker is alive if it reported within this")
    workers: list[WorkerInfo] = Field(default_factory=list)
    error: str | None = None


class LogSection(BaseModel):
    """One process's last log events at WARNING or above, oldest first, as written (secrets
    masked); ``note`` says why they are missing when they could not be read."""

    process: str
    read: bool
    capacity: int = 0
    dropped: int = Field(default=0, description="older events pushed out of the ring")
    events: list[dict[str, Any]] = Field(default_factory=list)
    note: str | None = None


class Diagnostics(BaseModel):
    """Everything a bug report needs, gathered at ``generated_at``; ``text`` is the same as
    one copyable text (the page's and ``hearth diagnose``'s)."""

    generated_at: datetime
    generated_by: str
    version: str
    platform: PlatformInfo
    health: HealthReport
    migrations: MigrationsSection
    queues: QueuesSection
    workers: WorkersSection
    settings: SettingsSection
    logs: list[LogSection]
    text: str = ""
