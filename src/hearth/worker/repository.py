"""All SQL of the workers' heartbeats (the ``worker_heartbeats`` table).

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
_AGE_OF = f"SELECT {_AGE} FROM worker_heartbeats WHERE hostname = %(hostname)s"  # noqa: S608 (a constant, no input)
_BEAT = (
    "INSERT INTO worker_heartbeats (hostname, pid, concurrency, started_at, seen_at) "
    "VALUES (%(hostname)s, %(pid)s, %(concurrency)s, %(started_at)s, now()) "
    "ON CONFLICT (hostname) DO UPDATE SET seen_at = now(), pid = excluded.pid, "
    "started_at = excluded.started_at"
)
_FORGET = "DELETE FROM worker_heartbeats WHERE hostname = %(hostname)s"


async def alive(connection: AsyncConnection, window: float) -> list[tuple[str, float]]:
    """Workers (name, seconds since their last report) that reported within ``window``."""
    result = await connection.exec_driver_sql(_ALIVE, {"window": window})
    rows: list[tuple[Any, Any]] = [tuple(row) for row in result]
    return [(str(name), float(seconds)) for name, seconds in rows]


def seconds_since_report(connection: psycopg.Connection, hostname: str) -> float | None:
    """Seconds since worker ``hostname`` last reported; None if it never did."""
    row = connection.execute(_AGE_OF, {"hostname": hostname}).fetchone()
    return float(row[0]) if row else None


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
