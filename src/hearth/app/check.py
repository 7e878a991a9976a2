"""``hearth check``: ask a running server (``--live``, ``--ready``), check this host's
worker (``--worker``), or connect to each component once. Each mode imports only what it
needs: Docker and systemd run the first two every few seconds."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from http import HTTPStatus
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # kept out of --live/--ready, which must stay light
    from hearth.config.settings import Settings
    from hearth.health.schemas import HealthReport

PROBE_TIMEOUT_SECONDS = 3


def _default_url() -> str:
    from dotenv import dotenv_values

    values = {**dotenv_values(".env"), **os.environ}
    host = values.get("HOST") or "127.0.0.1"
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 (a wildcard bind is reached via loopback)
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{values.get('PORT') or 8000}"


def probe_server(path: str, *, url: str | None, as_json: bool) -> int:
    """GET ``path`` on the running server; 0 on HTTP 200, 1 otherwise. Imports nothing
    heavy, so it is cheap enough for a container health check."""
    target = (url or _default_url()).rstrip("/") + path
    if not target.startswith(("http://", "https://")):
        print(f"--url must be an http:// or https:// URL, not {target!r}")
        return 1
    try:
        with urllib.request.urlopen(target, timeout=PROBE_TIMEOUT_SECONDS) as response:  # noqa: S310 (the scheme is checked above)
            status, body = response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        status, body = 0, json.dumps({"status": "unreachable", "detail": f"{target}: {reason}"})
    if as_json:
        print(body)
    else:
        print(f"{target}: {'HTTP ' + str(status) if status else 'no answer'} {body}")
    return 0 if status == HTTPStatus.OK else 1


def check_components(settings: Settings, *, as_json: bool) -> int:
    """Connect to each component once, print the results; 0 when the status is ok."""
    import asyncio

    from hearth.app.runtime import open_runtime
    from hearth.log import configure_logging

    configure_logging(level="WARNING", fmt="json", secrets=settings.secret_values())

    async def report() -> HealthReport:
        async with open_runtime(settings, serving=False) as runtime:
            return await runtime.health.report()

    result = asyncio.run(report())
    print(result.model_dump_json(indent=2) if as_json else _table(result))
    return 0 if result.status == "ok" else 1


def _table(report: HealthReport) -> str:
    lines = [f"hearth {report.version}: {report.status}"]
    for name, result in report.checks.items():
        latency = f"{result.latency_ms:.1f} ms" if result.latency_ms else ""
        lines.append(f"  {name:<6} {result.status:<13} {latency:>9}  {result.detail or ''}")
    return "\n".join(lines)


def check_worker(settings: Settings, *, as_json: bool) -> int:
    """0 when this host's worker reported within its heartbeat window (a worker container's
    health check), else 1. One psycopg query, no SQLAlchemy and no runtime: Docker runs this
    every few seconds, on a Raspberry Pi too."""
    import psycopg

    from hearth.db import driver
    from hearth.db.embedded import EmbeddedNotRunning, running_database_url
    from hearth.kit.text import first_line
    from hearth.worker import repository
    from hearth.worker.identity import MISSED_BEATS, host_name

    window = settings.worker_heartbeat_seconds * MISSED_BEATS
    ok = False
    try:
        url = running_database_url(settings.database_url, settings.hearth_data_dir)
        with driver.connect(url) as connection:
            age = repository.seconds_since_report(connection, host_name())
    except EmbeddedNotRunning as exc:
        detail = f"no database to read heartbeats from: {exc.message}"
    except psycopg.Error as exc:
        detail = f"cannot read heartbeats: {first_line(exc)}"
    else:
        ok = age is not None and age < window
        detail = (
            f"hearth worker on {host_name()} reported {age:.0f} s ago"
            if ok and age is not None
            else f"hearth worker on {host_name()} has not reported in the last {window:g} s"
        )
    print(
        json.dumps({"status": "ok" if ok else "unreachable", "detail": detail})
        if as_json
        else detail
    )
    return 0 if ok else 1
