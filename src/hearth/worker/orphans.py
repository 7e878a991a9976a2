"""Tasks held by a worker that died are handed back to the queue within about two heartbeat
windows, by the workers still alive.

A task is acknowledged after it ran (``task_acks_late``), so a worker killed mid-task leaves
its message taken but never acknowledged. Without this sweep the message waits: Redis hands it
out again only after ``TASK_VISIBILITY_TIMEOUT_SECONDS`` (an hour, since a live worker's long
task must not be handed out twice), and so does the embedded queue in PostgreSQL
(``pg_transport.py``).

Each worker sweeps once per heartbeat (see ``heartbeat.py``). A task is orphaned when its
result says STARTED (``task_track_started``) by a Hearth worker (one whose run-named heartbeat
``hearth-<run>@host`` it writes; see ``identity.py``) that has not reported within the window
(``MISSED_BEATS`` heartbeats), while its message is still held:

- Redis: the message is in kombu's ``unacked`` hash; kombu's own ``restore_by_tag`` moves it
  back to its queue in one transaction (WATCH on the hash), so it is restored once.
- PostgreSQL: the task's message in ``task_messages``, if the dead worker still holds it
  (``taken_by``), waits again, by an UPDATE that also wakes the workers (NOTIFY). One that
  waits already (the visibility timeout handed it back first) counts as handed back; one a
  live worker has taken since is left to it (its STARTED follows).

The task's state becomes RETRY with a ``WorkerLostError`` naming the dead worker (what
``GET /tasks/{id}`` shows until a worker takes it), and ``task_redelivered`` is logged. One
sweep runs at a time (a PostgreSQL advisory lock), whichever the broker: all workers share the
database. A task that a dying worker had taken but not started yet has no owner on record; it
falls back to the visibility timeout. ``-O fair`` keeps that gap to a moment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from celery.exceptions import WorkerLostError

from hearth.log import get_logger
from hearth.worker import repository
from hearth.worker.app import embedded

if TYPE_CHECKING:
    from celery import Celery
    from sqlalchemy import Connection, Engine

log = get_logger(__name__)

# Only workers that write heartbeats are judged by them (not a plain `celery worker`).
HEARTH_WORKER_PREFIX = "hearth-"
# Reports of workers silent this long are removed (after their tasks were swept).
FORGET_AFTER_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Orphan:
    """A task whose worker stopped reporting while running it."""

    task_id: str
    name: str | None
    worker: str


class OrphanSweeper:
    """Finds the tasks of workers that stopped reporting and hands them back to the queue."""

    def __init__(self, app: Celery, engine: Engine, window: float) -> None:
        self.app = app
        self.engine = engine
        self.window = window
        self.embedded = embedded(app)

    def sweep(self) -> list[Orphan]:
        """Hand back every orphaned task; those handed back (none while another worker
        sweeps)."""
        with self.engine.begin() as connection:
            if not repository.try_sweep_lock(connection):
                return []
            live = repository.live_names(connection, self.window)
            if self.embedded:
                handed_back = self._sweep_database(connection, live)
            else:
                handed_back = self._sweep_redis(live)
            repository.prune(connection, FORGET_AFTER_SECONDS)
        return handed_back

    def _sweep_redis(self, live: dict[str, float]) -> list[Orphan]:
        handed_back = []
        with self.app.connection_for_write() as connection:
            channel: Any = connection.default_channel  # kombu's redis Channel (untyped)
            qos = channel.qos
            held: dict[bytes, bytes] = channel.client.hgetall(qos.unacked_key)
            for tag, raw in held.items():
                orphan = self._orphan(_task_id(raw), live)
                if orphan is None:
                    continue
                self._mark(orphan)  # before the restore: the next worker's STARTED follows
                qos.restore_by_tag(tag.decode())  # gone already if it was acked meanwhile
                self._report(orphan)
                handed_back.append(orphan)
        return handed_back

    def _sweep_database(self, connection: Connection, live: dict[str, float]) -> list[Orphan]:
        handed_back = []
        for task_id, name, worker in repository.started_tasks(connection):
            if not _judged(worker, live):
                continue
            orphan = Orphan(task_id, name, str(worker))
            # Locked until this transaction commits, after the mark: no worker can take the
            # task (and record STARTED) before the mark.
            message = repository.task_message(connection, task_id)
            if message is None:
                self._mark_lost(orphan)
                continue
            if message.taken and message.taken_by not in (None, orphan.worker):
                continue  # taken again by a live worker since: its STARTED follows
            if message.taken:
                repository.release_message(connection, message.id)
            self._mark(orphan)
            self._report(orphan)
            handed_back.append(orphan)
        return handed_back

    def _orphan(self, task_id: str | None, live: dict[str, float]) -> Orphan | None:
        """The task as an orphan if its result says a worker now silent was running it."""
        if task_id is None:
            return None
        meta = self.app.backend.get_task_meta(task_id, cache=False)
        if meta.get("status") != "STARTED":
            return None  # not started yet, finished (its ack on the way), or ours already
        result = meta.get("result")
        started_by = meta.get("worker")
        if started_by is None and isinstance(result, dict):
            started_by = result.get("hostname")  # STARTED's own record: {"pid", "hostname"}
        if not _judged(started_by, live):
            return None
        return Orphan(task_id, meta.get("name"), str(started_by))

    def _mark(self, orphan: Orphan) -> None:
        """What a client reads until a worker takes the task again."""
        reason = WorkerLostError(
            f"worker {orphan.worker} stopped reporting while running this task; "
            "it was handed back to the queue and will run again on a live worker"
        )
        self.app.backend.mark_as_retry(orphan.task_id, reason)

    def _mark_lost(self, orphan: Orphan) -> None:
        """A STARTED task of a dead worker whose message is no longer held: say so, rather
        than STARTED for ever."""
        reason = WorkerLostError(
            f"worker {orphan.worker} stopped reporting while running this task, "
            "and its message is no longer in the queue"
        )
        self.app.backend.mark_as_failure(orphan.task_id, reason)
        log.warning(
            "task_lost", task_id=orphan.task_id, task=orphan.name, dead_worker=orphan.worker
        )

    def _report(self, orphan: Orphan) -> None:
        log.warning(
            "task_redelivered",
            task_id=orphan.task_id,
            task=orphan.name,
            dead_worker=orphan.worker,
            broker="postgresql" if self.embedded else "redis",
        )


def _judged(worker: object, live: dict[str, float]) -> bool:
    """Whether ``worker`` is a Hearth worker that is not alive."""
    return (
        isinstance(worker, str) and worker.startswith(HEARTH_WORKER_PREFIX) and worker not in live
    )


def _task_id(raw: bytes) -> str | None:
    """The task id in an entry of kombu's ``unacked`` hash: ``[message, exchange, key]``."""
    try:
        message = json.loads(raw)[0]
        task_id = message["headers"]["id"]
    except (ValueError, LookupError, TypeError):
        return None  # not a Celery task message of protocol 2
    return task_id if isinstance(task_id, str) else None
