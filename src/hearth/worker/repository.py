"""All SQL of the workers' heartbeats (the ``worker_heartbeats`` table), of the task runs the
pool children record (``task_runs``, the Tasks page), and what the sweep of orphaned tasks
reads and changes of the embedded broker's tables (``task_messages``, Celery's
``celery_taskmeta``).

Plain SQL in psycopg's parameter style, run through SQLAlchemy (``exec_driver_sql``) by the
worker's heartbeat and the health check, and through psycopg alone by ``hearth check
--worker`` (a container health check run every few seconds must not pay for importing
SQLAlchemy) and by the pool's processes (the runs they record, the hourly prune).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

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
    "INSERT INTO worker_heartbeats "
    "(hostname, pid, concurrency, started_at, seen_at, metrics, running) "
    "VALUES (%(hostname)s, %(pid)s, %(concurrency)s, %(started_at)s, now(), %(metrics)s, "
    "%(running)s) "
    "ON CONFLICT (hostname) DO UPDATE SET seen_at = now(), pid = excluded.pid, "
    "started_at = excluded.started_at, metrics = excluded.metrics, running = excluded.running"
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
# The embedded queue (hearth.worker.pg_transport) marks a message it delivers taken, by
# which worker, until it is acknowledged (deleted): clearing the mark hands it back, and the
# notification wakes the workers. The message is locked until the sweep's transaction ends:
# no worker takes it in between (their pick skips locked rows).
_TASK_MESSAGE = (
    "SELECT id, taken_at IS NOT NULL, taken_by FROM task_messages"
    " WHERE task_id = %(task_id)s ORDER BY id DESC LIMIT 1 FOR UPDATE"
)
_RELEASE = (
    "WITH message AS (UPDATE task_messages SET taken_at = NULL, taken_by = NULL"
    " WHERE id = %(id)s RETURNING queue)"
    " SELECT pg_notify('hearth_tasks', queue) FROM message"
)


class TaskMessage(NamedTuple):
    """The embedded queue's message of a task: its row, and whether (and by whom) it is
    taken."""

    id: int
    taken: bool
    taken_by: str | None


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


def beat(  # noqa: PLR0913 (a parameter per column of the heartbeat's row)
    connection: Connection,
    hostname: str,
    concurrency: int,
    started_at: datetime,
    *,
    metrics: str | None = None,
    running: str | None = None,
) -> None:
    """Record that worker ``hostname`` (this process) is alive now, with its metrics
    snapshot (JSON text) when it keeps metrics, and the tasks it is running (JSON text)."""
    parameters = {
        "hostname": hostname,
        "pid": os.getpid(),
        "concurrency": concurrency,
        "started_at": started_at,
        "metrics": metrics,
        "running": running,
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


def task_message(connection: Connection, task_id: str) -> TaskMessage | None:
    """Task ``task_id``'s message in the embedded queue, locked for this transaction; None
    when there is none (acknowledged, or the task was sent some other way)."""
    row = connection.exec_driver_sql(_TASK_MESSAGE, {"task_id": task_id}).first()
    if row is None:
        return None
    message_id, taken, taken_by = row
    return TaskMessage(int(message_id), bool(taken), taken_by)


def release_message(connection: Connection, message_id: int) -> None:
    """Make the embedded queue deliver message ``message_id`` again, and wake the workers."""
    connection.exec_driver_sql(_RELEASE, {"id": message_id})


# --- Task runs (the Tasks page) -------------------------------------------------------

# One statement per run, by the pool child once the run ended (hearth.worker.runs). A task
# run again under the same id (handed back after its worker died, or retried by Celery)
# rewrites its row.
_RECORD_RUN = (
    "INSERT INTO task_runs (task_id, name, state, arguments, worker, started_at, finished_at,"
    " runtime_seconds, error) VALUES (%(task_id)s, %(name)s, %(state)s, %(arguments)s,"
    " %(worker)s, %(started_at)s, %(finished_at)s, %(runtime_seconds)s, %(error)s)"
    " ON CONFLICT (task_id) DO UPDATE SET name = excluded.name, state = excluded.state,"
    " arguments = excluded.arguments, worker = excluded.worker,"
    " started_at = excluded.started_at, finished_at = excluded.finished_at,"
    " runtime_seconds = excluded.runtime_seconds, error = excluded.error,"
    " runs = task_runs.runs + 1"
)
# Older than the days kept, or past the newest ``rows`` (a runaway of tiny tasks must not
# fill the disk before the days are up).
_PRUNE_RUNS = (
    "DELETE FROM task_runs WHERE finished_at < now() - make_interval(days => %(days)s)"
    " OR finished_at <= (SELECT finished_at FROM task_runs"
    " ORDER BY finished_at DESC OFFSET %(rows)s LIMIT 1)"
)
_RUN_COLUMNS = (
    "task_id, name, state, arguments, worker, started_at, finished_at, runtime_seconds,"
    " error, runs, retried_as, retried_at"
)
_RECENT_RUNS = f"SELECT {_RUN_COLUMNS} FROM task_runs ORDER BY finished_at DESC LIMIT %(limit)s"  # noqa: S608 (constants, no input)
_FAILED_RUNS = (
    f"SELECT {_RUN_COLUMNS} FROM task_runs WHERE state = 'FAILURE'"  # noqa: S608 (constants, no input)
    " ORDER BY finished_at DESC LIMIT %(limit)s"
)
# Locked until the request's transaction ends: two Retry clicks cannot both send a task.
_RUN_FOR_UPDATE = f"SELECT {_RUN_COLUMNS} FROM task_runs WHERE task_id = %(task_id)s FOR UPDATE"  # noqa: S608 (constants, no input)
_MARK_RETRIED = (
    "UPDATE task_runs SET retried_as = %(new_id)s, retried_at = now() WHERE task_id = %(task_id)s"
)
_WORKERS = (
    f"SELECT hostname, pid, concurrency, started_at, seen_at, {_AGE} AS age, running"  # noqa: S608 (a constant, no input)
    " FROM worker_heartbeats ORDER BY hostname"
)


def record_runs(connection: psycopg.Connection, runs: list[dict[str, Any]]) -> None:
    """Store ended runs (each with the keys of ``_RECORD_RUN``; ``arguments`` as JSON text),
    in one transaction."""
    with connection.transaction(), connection.cursor() as cursor:
        cursor.executemany(_RECORD_RUN, runs)


def prune_runs(connection: psycopg.Connection, *, days: int, rows: int) -> int:
    """Forget runs that ended more than ``days`` ago, and all but the newest ``rows``; how
    many went."""
    return connection.execute(_PRUNE_RUNS, {"days": days, "rows": rows}).rowcount


async def recent_runs(connection: AsyncConnection, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` runs that ended last, latest first."""
    result = await connection.exec_driver_sql(_RECENT_RUNS, {"limit": limit})
    return [dict(row._mapping) for row in result]  # noqa: SLF001 (SQLAlchemy's public row API)


async def failed_runs(connection: AsyncConnection, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` runs that failed last, latest first."""
    result = await connection.exec_driver_sql(_FAILED_RUNS, {"limit": limit})
    return [dict(row._mapping) for row in result]  # noqa: SLF001 (SQLAlchemy's public row API)


async def run_for_update(connection: AsyncConnection, task_id: str) -> dict[str, Any] | None:
    """Task ``task_id``'s run, locked for this transaction; None when none is recorded."""
    row = (await connection.exec_driver_sql(_RUN_FOR_UPDATE, {"task_id": task_id})).first()
    return dict(row._mapping) if row is not None else None  # noqa: SLF001 (SQLAlchemy's public row API)


async def mark_retried(connection: AsyncConnection, task_id: str, new_id: str) -> None:
    """Record that task ``task_id`` was sent again as ``new_id``."""
    await connection.exec_driver_sql(_MARK_RETRIED, {"task_id": task_id, "new_id": new_id})


async def workers(connection: AsyncConnection) -> list[dict[str, Any]]:
    """Every worker's last report (live or silent; reports are forgotten after a day)."""
    result = await connection.exec_driver_sql(_WORKERS)
    return [dict(row._mapping) for row in result]  # noqa: SLF001 (SQLAlchemy's public row API)
