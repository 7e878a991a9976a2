"""All SQL of the workers' heartbeats (the ``worker_heartbeats`` table), and what the sweep of
orphaned tasks reads and changes of the embedded broker's tables (kombu's ``kombu_message``,
Celery's ``celery_taskmeta``).

Plain SQL in psycopg's parameter style, run through SQLAlchemy (``exec_driver_sql``) by the
worker and the health check, and through psycopg alone by ``hearth check --worker``: a
container health check run every few seconds must not pay for importing SQLAlchemy.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy import Connection
    from sqlalchemy.ext.asyncio import AsyncConnection

_AGE = "extract(epoch FROM now() - seen_at)"

_ALIVE = (
    f"SELECT hostname, {_AGE} FROM worker_heartbeats "  # noqa: S608 (a constant, no input)
    f"WHERE {_AGE} < %(window)s ORDER BY hostname"
)
_GONE = (
    f"SELECT hostname, {_AGE} FROM worker_heartbeats "  # noqa: S608 (a constant, no input)
    f"WHERE {_AGE} >= %(window)s AND {_AGE} < %(within)s ORDER BY seen_at DESC"
)
# The youngest report of the workers on one host (each run of a worker has its own name).
_AGE_ON_HOST = (
    f"SELECT min({_AGE}) FROM worker_heartbeats "  # noqa: S608 (a constant, no input)
    "WHERE split_part(hostname, '@', 2) = %(host)s"
)
_BEAT = (
    "INSERT INTO worker_heartbeats (hostname, pid, concurrency, started_at, seen_at) "
    "VALUES (%(hostname)s, %(pid)s, %(concurrency)s, %(started_at)s, now()) "
    "ON CONFLICT (hostname) DO UPDATE SET seen_at = now(), pid = excluded.pid, "
    "started_at = excluded.started_at"
)
_FORGET = "DELETE FROM worker_heartbeats WHERE hostname = %(hostname)s"
_PRUNE = f"DELETE FROM worker_heartbeats WHERE {_AGE} > %(older_than)s"  # noqa: S608 (a constant, no input)

# One sweep of orphaned tasks at a time, whichever worker runs it (a transaction-scoped
# advisory lock: released at commit, or when a worker dies holding it).
_SWEEP_LOCK_KEY = 0x4845_4152_5448  # "HEARTH"
_TRY_SWEEP_LOCK = "SELECT pg_try_advisory_xact_lock(%(key)s)"

# The embedded broker: Celery's database backend records a STARTED task's worker (with
# result_extended); the table exists once the first result was stored.
_HAS_RESULTS = "SELECT to_regclass('celery_taskmeta') IS NOT NULL"
_STARTED = "SELECT task_id, name, worker FROM celery_taskmeta WHERE status = 'STARTED'"
# kombu's SQLAlchemy transport hides a message it delivers (visible = false) and keeps no
# record of the acknowledgement: showing the task's latest delivery again hands it back.
_RELEASE = (
    "UPDATE kombu_message SET visible = true, version = version + 1 WHERE id = ("
    " SELECT id FROM kombu_message WHERE visible = false"
    " AND strpos(payload, %(task_id)s) > 0"
    " AND payload::jsonb -> 'headers' ->> 'id' = %(task_id)s"
    " ORDER BY id DESC LIMIT 1 FOR UPDATE) RETURNING id"
)


async def alive(connection: AsyncConnection, window: float) -> list[tuple[str, float]]:
    """Workers (name, seconds since their last report) that reported within ``window``."""
    result = await connection.exec_driver_sql(_ALIVE, {"window": window})
    rows: list[tuple[Any, Any]] = [tuple(row) for row in result]
    return [(str(name), float(seconds)) for name, seconds in rows]


async def gone(
    connection: AsyncConnection, window: float, within: float
) -> list[tuple[str, float]]:
    """Workers (name, seconds since their last report) that stopped reporting without a
    clean stop (which removes the report) in the last ``within`` seconds, latest first."""
    result = await connection.exec_driver_sql(_GONE, {"window": window, "within": within})
    rows: list[tuple[Any, Any]] = [tuple(row) for row in result]
    return [(str(name), float(seconds)) for name, seconds in rows]


def live_names(connection: Connection, window: float) -> dict[str, float]:
    """The workers that reported within ``window``: name → seconds since their report."""
    result = connection.exec_driver_sql(_ALIVE, {"window": window})
    return {str(name): float(seconds) for name, seconds in result}


def seconds_since_report(connection: psycopg.Connection, host: str) -> float | None:
    """Seconds since a worker on ``host`` last reported; None if none ever did."""
    row = connection.execute(_AGE_ON_HOST, {"host": host}).fetchone()
    return float(row[0]) if row and row[0] is not None else None


def beat(connection: Connection, hostname: str, concurrency: int, started_at: datetime) -> None:
    """Record that worker ``hostname`` (this process) is alive now."""
    parameters = {
        "hostname": hostname,
        "pid": os.getpid(),
        "concurrency": concurrency,
        "started_at": started_at,
    }
    connection.exec_driver_sql(_BEAT, parameters)


def forget(connection: Connection, hostname: str) -> None:
    """Remove worker ``hostname``'s report: it stopped cleanly."""
    connection.exec_driver_sql(_FORGET, {"hostname": hostname})


def prune(connection: Connection, older_than: float) -> None:
    """Remove the reports of workers silent for longer than ``older_than`` seconds."""
    connection.exec_driver_sql(_PRUNE, {"older_than": older_than})


def try_sweep_lock(connection: Connection) -> bool:
    """Take the sweep's lock for this transaction; False when another worker holds it."""
    return bool(connection.exec_driver_sql(_TRY_SWEEP_LOCK, {"key": _SWEEP_LOCK_KEY}).scalar())


def started_tasks(connection: Connection) -> list[tuple[str, str | None, str | None]]:
    """Tasks (id, name, worker) the embedded broker's result table says are running."""
    if not connection.exec_driver_sql(_HAS_RESULTS).scalar():
        return []
    result = connection.exec_driver_sql(_STARTED)
    return [(str(task_id), name, worker) for task_id, name, worker in result]


def release_message(connection: Connection, task_id: str) -> bool:
    """Make the embedded broker deliver task ``task_id`` again; False when its message is not
    held (already handed back, or the task was sent some other way)."""
    return connection.exec_driver_sql(_RELEASE, {"task_id": task_id}).first() is not None
