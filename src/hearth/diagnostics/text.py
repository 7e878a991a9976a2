"""The report as one plain text, for pasting into a bug report: the page's ``<pre>`` and
``hearth diagnose``'s output. Fixed-width columns, one section after another, log events
last (they are the longest part)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from hearth.diagnostics.schemas import Diagnostics, LogSection

# Keys every event has, shown in the line's head rather than repeated as key=value.
_HEAD_KEYS = ("timestamp", "level", "logger", "event")
# Keys that say nothing a bug report needs (the service is Hearth; the exception goes below).
_LEFT_OUT = frozenset({*_HEAD_KEYS, "service", "exception"})


_MIGRATION_STATUS = {
    "current": "up to date",
    "behind": "behind: `hearth migrate` (or a restart of `hearth serve`) applies the rest",
    "no_tables": "no tables yet: run `hearth migrate` (or start `hearth serve`)",
    "unknown_revision": "migrated by a newer Hearth: upgrade this one",
}


def render(report: Diagnostics) -> str:
    """The whole report as text, ending with a newline."""
    lines = [
        f"Hearth diagnostics, {_time(report.generated_at)}, by {report.generated_by}",
        "Secrets are masked; settings that hold one show only whether they are set.",
    ]
    lines += _section("Version", [f"hearth {report.version}"])
    lines += _section("Platform", _platform(report))
    health = report.health
    lines += _section(
        f"Health: {health.status}",
        _table(
            (name, check.status, f"{check.latency_ms:.1f} ms", check.detail or "")
            for name, check in health.checks.items()
        ),
    )
    lines += _section("Migrations", _migrations(report))
    lines += _section(f"Queues (broker: {report.queues.broker})", _queues(report))
    lines += _section("Workers", _workers(report))
    settings = report.settings
    lines += _section(
        "Settings: infrastructure (environment, .env, secret files)",
        _table((s.variable, _value(s.value), s.source) for s in settings.infrastructure),
    )
    runtime = _table((s.name, s.value, s.source) for s in settings.runtime)
    if settings.error:
        runtime.insert(0, f"database not read ({settings.error}): environment and defaults")
    lines += _section("Settings: runtime (the config page's)", runtime)
    for log in report.logs:
        lines += _section(f"Log: {log.process}", _log(log))
    return "\n".join(lines) + "\n"


def _section(title: str, body: Sequence[str]) -> list[str]:
    return ["", f"== {title}", *(body or ["(none)"])]


def _platform(report: Diagnostics) -> list[str]:
    info = report.platform
    rows = [
        ("python", info.python),
        ("system", info.system),
        ("architecture", info.architecture),
        ("host", info.hostname),
        ("process", f"pid {info.pid}, started {_time(info.started_at)}"),
        ("cpus", str(info.cpus or "unknown")),
        ("runs in", ", ".join(info.runs_in) or "no container, Kubernetes or systemd hint"),
    ]
    return _table(rows)


def _migrations(report: Diagnostics) -> list[str]:
    found = report.migrations
    if found.error:
        return [f"not read: {found.error}"]
    said = _MIGRATION_STATUS.get(found.status, found.status)
    return [f"database at {found.current or '(none)'}, this Hearth's newest {found.head}: {said}"]


def _queues(report: Diagnostics) -> list[str]:
    queues = report.queues
    if queues.error:
        return [f"not read: {queues.error}"]
    return _table((name, f"{depth} waiting") for name, depth in queues.depths.items())


def _workers(report: Diagnostics) -> list[str]:
    section = report.workers
    if section.error:
        return [f"not read: {section.error}"]
    rows = [
        (
            worker.name,
            "alive" if worker.alive else "silent",
            f"pid {worker.pid}",
            f"concurrency {worker.concurrency}",
            f"started {_time(worker.started_at)}",
            f"last report {worker.last_report_seconds:.0f} s ago",
        )
        for worker in section.workers
    ]
    return _table(rows) or [f"no worker has reported (alive = within {section.window_seconds:g} s)"]


def _log(log: LogSection) -> list[str]:
    if not log.read:
        return [log.note or "not read"]
    head = f"{len(log.events)} event(s) at WARNING or above, oldest first (the last {log.capacity}"
    head += f"; {log.dropped} older ones dropped)" if log.dropped else ")"
    lines = [head]
    for event in log.events:
        lines.append(event_line(event))
        exception = event.get("exception")
        if exception:
            lines.extend(f"    {line}" for line in str(exception).splitlines())
    return lines


def event_line(event: dict[str, Any]) -> str:
    """One event in one line: time, level, logger, event, then its other fields."""
    head = [str(event.get(key, "-")) for key in _HEAD_KEYS]
    fields = [f"{key}={_field(value)}" for key, value in event.items() if key not in _LEFT_OUT]
    return " ".join([*head, *fields])


def _field(value: object) -> str:
    if isinstance(value, str):
        return value if value and " " not in value and '"' not in value else json.dumps(value)
    return json.dumps(value, default=str, ensure_ascii=False)


def _value(value: object) -> str:
    return "(not set)" if value is None or value == "" else str(value)


def _time(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "unknown"


def _table(rows: Iterable[Sequence[str]]) -> list[str]:
    """Rows with their columns aligned (the last column as it is)."""
    rows = [tuple(row) for row in rows]
    if not rows:
        return []
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    return [
        "  "
        + "  ".join(
            [*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]]
        ).rstrip()
        for row in rows
    ]
