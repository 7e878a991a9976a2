"""The embedded queue: a kombu transport on PostgreSQL, for when there is no Redis.

Messages are rows of ``task_messages`` (created by the migrations). What each side costs:

- Publishing is one statement, the INSERT of the message and a ``pg_notify`` of its queue
  together, on a connection from a small pool that is checked (pinged) before use, so a
  restarted PostgreSQL does not fail the first send after it.
- A consumer takes the oldest waiting message of a queue with ``UPDATE … SET taken_at`` on a
  ``FOR UPDATE SKIP LOCKED`` pick (several workers never take the same one), deletes it when
  the task is acknowledged, and makes it wait again when it is rejected for requeueing or
  handed back at shutdown.
- A consumer waits on a ``LISTEN`` connection and looks at the table when a notification
  comes, when one of its tasks ends (a slot freed), and every ``poll_seconds`` in any case,
  so a notification missed (the listener reconnecting) delays a task, never loses it. At rest
  it asks the database nothing between those polls.
- A message taken by a worker that died (its row stays taken, never acknowledged) waits again
  after ``visibility_timeout`` seconds, which each consumer's poll looks for; a STARTED task of
  a worker that stopped reporting comes back sooner, through the sweep of orphaned tasks
  (``orphans.py``).

Celery's worker runs kombu's blocking loop (``synloop``) on this transport: the pool's results
and acknowledgements arrive on a thread of their own, hence a thread-safe pool of connections
and a pipe that wakes the waiting loop.
"""

from __future__ import annotations

import os
import select
import threading
import time
from contextlib import suppress
from queue import Empty
from typing import Any

import psycopg
import sqlalchemy
import sqlalchemy.exc
from kombu.transport import virtual
from kombu.utils.json import dumps, loads

NOTIFY_CHANNEL = "hearth_tasks"
DEFAULT_POLL_SECONDS = 10.0
DEFAULT_VISIBILITY_TIMEOUT = 3600
DEFAULT_CONNECT_TIMEOUT = 3
# Publishers share a few connections (the web app sends from a thread per request).
POOL_SIZE = 2
POOL_OVERFLOW = 8

# Every statement wakes the listeners of NOTIFY_CHANNEL when it makes a message wait.
_PUBLISH = (
    "WITH message AS (INSERT INTO task_messages (queue, payload, task_id)"
    " VALUES (%(queue)s, %(payload)s, %(task_id)s) RETURNING queue)"
    " SELECT pg_notify('hearth_tasks', queue) FROM message"
)
_TAKE = (
    "UPDATE task_messages SET taken_at = now(), taken_by = %(consumer)s WHERE id = ("
    " SELECT id FROM task_messages WHERE queue = %(queue)s AND taken_at IS NULL"
    " ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id, payload"
)
_ACK = "DELETE FROM task_messages WHERE id = %(id)s"
_RETURN = (
    "WITH message AS (UPDATE task_messages SET taken_at = NULL, taken_by = NULL"
    " WHERE id = ANY(%(ids)s) AND taken_at IS NOT NULL RETURNING queue)"
    " SELECT pg_notify('hearth_tasks', queue) FROM message"
)
_RETURN_EXPIRED = (
    "WITH message AS (UPDATE task_messages SET taken_at = NULL, taken_by = NULL"
    " WHERE taken_at < now() - make_interval(secs => %(seconds)s) RETURNING queue)"
    " SELECT pg_notify('hearth_tasks', queue) FROM message"
)
_SIZE = "SELECT count(*) FROM task_messages WHERE queue = %(queue)s AND taken_at IS NULL"
_PURGE = "DELETE FROM task_messages WHERE queue = %(queue)s AND taken_at IS NULL"

# Each process (a pool child after the fork included) has engines of its own: a connection
# must never be shared across a fork.
_engines: dict[tuple[int, str], sqlalchemy.Engine] = {}
_engines_lock = threading.Lock()


def _engine(url: str, connect_timeout: int) -> sqlalchemy.Engine:
    """The process's pool of connections to ``url`` (libpq form), made on first use."""
    key = (os.getpid(), url)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            scheme, _, rest = url.partition("://")
            engine = sqlalchemy.create_engine(
                f"{scheme.split('+', 1)[0]}+psycopg://{rest}",
                pool_size=POOL_SIZE,
                max_overflow=POOL_OVERFLOW,
                pool_pre_ping=True,  # a connection PostgreSQL dropped is replaced, not used
                isolation_level="AUTOCOMMIT",  # each statement is its own transaction
                connect_args={"connect_timeout": connect_timeout},
            )
            _engines[key] = engine
        return engine


class NotSent(ConnectionError):
    """No connection to the database could be had: the statement was never sent (a publish
    that fails so has queued nothing)."""

    nothing_sent = True


def dispose() -> None:
    """Close this process's pooled connections (the web app's, when it stops)."""
    with _engines_lock:
        for (pid, url), engine in list(_engines.items()):
            if pid == os.getpid():
                engine.dispose()
                del _engines[pid, url]


class QoS(virtual.QoS):
    """Acknowledgement deletes the message's row; a requeue makes it wait again."""

    def ack(self, delivery_tag: str) -> None:
        """The task is done: its message is gone for good."""
        row = self.channel.taken.pop(delivery_tag, None)
        if row is not None:
            self.channel.execute(_ACK, {"id": row})
        super().ack(delivery_tag)  # type: ignore[no-untyped-call]  # kombu
        self.channel.slot_freed()

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:  # noqa: FBT001, FBT002 (kombu's signature)
        """Rejected: requeued, the message waits again (where it was: its id keeps its
        place); else it is dropped."""
        row = self.channel.taken.pop(delivery_tag, None)
        if row is not None:
            if requeue:
                self.channel.execute(_RETURN, {"ids": [row]})
            else:
                self.channel.execute(_ACK, {"id": row})
        self._quick_ack(delivery_tag)
        self.channel.slot_freed()

    def restore_unacked(self) -> list[tuple[BaseException, Any]]:
        """At shutdown: every message taken and not acknowledged waits again."""
        self._flush()  # type: ignore[no-untyped-call]  # kombu
        tags = list(self._delivered)
        self._delivered.clear()
        rows = [row for tag in tags if (row := self.channel.taken.pop(tag, None)) is not None]
        if not rows:
            return []
        try:
            self.channel.execute(_RETURN, {"ids": rows})
        except Exception as exc:  # noqa: BLE001 (kombu reports these; the visibility timeout restores them)
            return [(exc, rows)]
        return []


class Channel(virtual.Channel):
    """One kombu channel: queues are names in ``task_messages.queue``, nothing to declare."""

    QoS = QoS
    do_restore = True

    def __init__(self, connection: Transport, **kwargs: Any) -> None:  # noqa: ANN401 (kombu's)
        super().__init__(connection, **kwargs)  # type: ignore[no-untyped-call]  # kombu
        self.transport_ = connection
        # Delivery tag -> row id of each message this channel took and has not settled.
        self.taken: dict[str, int] = {}

    def execute(self, statement: str, parameters: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run one statement in a transaction of its own; its rows. ``NotSent`` when no
        connection could be had."""
        try:
            connection = self.transport_.engine().connect()
        except sqlalchemy.exc.DBAPIError as exc:
            raise NotSent(str(exc.orig)) from exc
        with connection:
            result = connection.exec_driver_sql(statement, parameters)
            return [tuple(row) for row in result] if result.returns_rows else []

    def slot_freed(self) -> None:
        """A task ended: the waiting consumer may take another (no transport once the
        channel is closed)."""
        transport = self.connection
        if transport is not None:
            transport.wake()

    def _put(self, queue: str, message: dict[str, Any], **_kwargs: Any) -> None:  # noqa: ANN401 (kombu's)
        task_id = message.get("headers", {}).get("id")
        payload = dumps(message)  # type: ignore[no-untyped-call]  # kombu
        parameters = {"queue": queue, "payload": payload, "task_id": task_id}
        self.execute(_PUBLISH, parameters)

    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:  # noqa: ARG002 (kombu's signature)
        rows = self.execute(_TAKE, {"queue": queue, "consumer": self.transport_.consumer})
        if not rows:
            raise Empty
        row, payload = rows[0]
        message: dict[str, Any] = loads(payload)  # type: ignore[no-untyped-call]  # kombu
        self.taken[message["properties"]["delivery_tag"]] = int(row)
        return message

    def _size(self, queue: str) -> int:
        return int(self.execute(_SIZE, {"queue": queue})[0][0])

    def _purge(self, queue: str) -> int:
        with self.transport_.engine().connect() as connection:
            return int(connection.exec_driver_sql(_PURGE, {"queue": queue}).rowcount)

    def _delete(self, queue: str, *_args: Any, **_kwargs: Any) -> None:  # noqa: ANN401 (kombu's)
        self._purge(queue)

    def _new_queue(self, queue: str, **_kwargs: Any) -> None:  # noqa: ANN401 (kombu's)
        """A queue is a name on its messages: nothing to create."""

    def _has_queue(self, queue: str, **_kwargs: Any) -> bool:  # noqa: ANN401, ARG002 (kombu's signature)
        return True


class Transport(virtual.Transport):
    """kombu's transport for ``broker_transport``; the broker URL is the database's."""

    Channel = Channel
    can_parse_url = True  # the URL goes to libpq as it is
    driver_type = "sql"
    driver_name = "psycopg"
    polling_interval = 0.0  # unused: drain_events waits on notifications instead
    connection_errors: tuple[type[BaseException], ...] = (  # type: ignore[assignment]  # kombu's own is too narrow
        *virtual.Transport.connection_errors,
        NotSent,
        psycopg.OperationalError,
        psycopg.InterfaceError,
        sqlalchemy.exc.OperationalError,
        sqlalchemy.exc.InterfaceError,
    )
    channel_errors: tuple[type[BaseException], ...] = (  # type: ignore[assignment]  # as above
        *virtual.Transport.channel_errors,
        sqlalchemy.exc.DatabaseError,
    )

    def __init__(self, client: Any, **kwargs: Any) -> None:  # noqa: ANN401 (kombu's)
        super().__init__(client, **kwargs)  # type: ignore[no-untyped-call]  # kombu
        self.url = str(client.hostname)  # the database's, as libpq reads it
        options = client.transport_options
        self.poll_seconds = float(options.get("poll_seconds", DEFAULT_POLL_SECONDS))
        self.visibility_timeout = float(
            options.get("visibility_timeout", DEFAULT_VISIBILITY_TIMEOUT)
        )
        self.connect_timeout = int(options.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT))
        # The worker's name, recorded on what it takes (None: a consumer that is no worker).
        self.consumer: str | None = options.get("consumer")
        self._listener: psycopg.Connection[Any] | None = None
        self._wake_read, self._wake_write = -1, -1
        self._due = True  # look at the table on the first drain
        self._next_poll = 0.0

    def driver_version(self) -> str:
        """The version of psycopg, for Celery's report."""
        return str(psycopg.__version__)

    def engine(self) -> sqlalchemy.Engine:
        """The pool of connections for statements, of this process."""
        return _engine(self.url, self.connect_timeout)

    def establish_connection(self) -> Transport:
        """Fail here, not at the first task, when the database cannot be reached."""
        with self.engine().connect():
            pass
        result: Transport = super().establish_connection()  # type: ignore[no-untyped-call]  # kombu
        return result

    def close_connection(self, connection: Any) -> None:  # noqa: ANN401 (kombu's)
        """Close the channels (handing back what they hold), then the listener."""
        super().close_connection(connection)  # type: ignore[no-untyped-call]  # kombu
        if self._listener is not None:
            with suppress(psycopg.Error):
                self._listener.close()
            self._listener = None
        for fd in (self._wake_read, self._wake_write):
            if fd >= 0:
                with suppress(OSError):
                    os.close(fd)
        self._wake_read, self._wake_write = -1, -1

    def wake(self) -> None:
        """Have a waiting ``drain_events`` look at the table again (a slot was freed)."""
        self._due = True
        if self._wake_write >= 0:
            with suppress(OSError):  # a full pipe already wakes it
                os.write(self._wake_write, b"\0")

    def drain_events(self, connection: Any, timeout: float | None = None, **_: Any) -> None:  # noqa: ANN401, ARG002 (kombu's signature)
        """Deliver one message, waiting up to ``timeout`` (``socket.timeout`` after)."""
        listener = self._listen()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            now = time.monotonic()
            if now >= self._next_poll:
                self._next_poll = now + self.poll_seconds
                self._return_expired()
                self._due = True
            if self._due and self._can_consume():
                self._due = False
                try:
                    self.cycle.get(self._deliver, timeout=0)  # type: ignore[union-attr]  # set in __init__
                except Empty:
                    pass
                else:
                    self._due = True  # more may be waiting: look again on the next call
                    return
            waits = [self._next_poll - time.monotonic()]
            if deadline is not None:
                waits.append(deadline - time.monotonic())
            wait = max(0.0, min(waits))
            if deadline is not None and wait <= 0 and time.monotonic() >= deadline:
                raise TimeoutError  # socket.timeout, which kombu's callers expect
            self._wait(listener, wait)

    def _can_consume(self) -> bool:
        return any(channel._consumers and channel.qos.can_consume() for channel in self.channels)  # noqa: SLF001 (kombu's own state)

    def _listen(self) -> psycopg.Connection[Any]:
        """The consumer's LISTEN connection, opened on its first wait."""
        if self._listener is None or self._listener.closed:
            listener = psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=self.connect_timeout,
            )
            listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self._listener = listener
            self._due = True  # what was sent before it listened
            if self._wake_read < 0:
                self._wake_read, self._wake_write = os.pipe()
                os.set_blocking(self._wake_write, False)
        return self._listener

    def _wait(self, listener: psycopg.Connection[Any], seconds: float) -> None:
        """Sleep until a notification, a wake-up or ``seconds``."""
        readable, _, _ = select.select([listener.fileno(), self._wake_read], [], [], seconds)
        if self._wake_read in readable:
            os.read(self._wake_read, 4096)
            self._due = True
        if listener.fileno() in readable:
            # Reads what arrived; a connection that broke raises here (a connection error).
            for _ in listener.notifies(timeout=0):
                self._due = True

    def _return_expired(self) -> None:
        """Messages taken longer ago than the visibility timeout wait again: their worker
        died before it acknowledged them."""
        with self.engine().connect() as connection:
            connection.exec_driver_sql(_RETURN_EXPIRED, {"seconds": self.visibility_timeout})
