"""Sending tasks from the web app, and reading their state."""

from __future__ import annotations

import asyncio
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hearth import traces
from hearth.errors import HearthError
from hearth.kit.text import first_line, innermost
from hearth.log import get_logger

if TYPE_CHECKING:
    from celery import Celery

    from hearth.db.unit import UnitOfWork

log = get_logger(__name__)

# How long the broker's client waits for an answer (``hearth.worker.app``, which imports
# Celery, reads it from here): a send refused for a broker that hangs takes about this long.
BROKER_SOCKET_TIMEOUT_SECONDS = 5.0
# A state read that outlasts this is given up (its thread is left to end on its own: a read
# changes nothing). Sends are never given up this way: see ``TaskQueue.send``.
READ_TIMEOUT_SECONDS = 5.0
# Requests for a task that takes whatever work is stored, arriving within this long of its
# last send, share the next one (TaskQueue.request_after_commit).
MERGE_WINDOW_SECONDS = 0.05


class QueueUnavailable(HearthError):
    """The broker cannot take the task right now; nothing was queued. ``reason`` is the
    broker's one-line cause, for callers that phrase their own message."""

    status_code = 503

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class PendingTask:
    """A task to send by name, with its arguments and the id it will have."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


class TaskQueue:
    """Celery seen from the web app: send by name (no task code is imported), read state.
    Celery is built (and imported) only when the first task is sent: it costs the web app
    nothing until then. ``build`` is None when there is no database, hence no queue."""

    def __init__(self, build: Callable[[], Celery] | None) -> None:
        self._build = build
        self._app: Celery | None = None
        self._building = threading.Lock()
        self._merged: dict[str, MergedSends] = {}

    @property
    def app(self) -> Celery:
        """The Celery app, built on first use; ``QueueUnavailable`` without a database."""
        with self._building:
            if self._app is None:
                if self._build is None:
                    raise QueueUnavailable(
                        "The task queue needs the database, which is not available.",
                        reason="no database",
                    )
                self._app = self._build()
                _watch_publishing()
        return self._app

    async def _built(self) -> Celery:
        """``app``, built in a thread the first time: importing Celery takes about a tenth
        of a second, which the event loop would otherwise spend not answering."""
        return self._app or await asyncio.to_thread(lambda: self.app)

    def close(self) -> None:
        """Close the broker and result connections, if a task was ever sent."""
        if self._app is not None:
            self._app.close()
            self._app = None
            embedded_queue = sys.modules.get("hearth.worker.pg_transport")
            if embedded_queue is not None:  # its pool of connections outlives kombu's
                embedded_queue.dispose()

    def send_after_commit(self, unit: UnitOfWork, task: PendingTask) -> None:
        """Send ``task`` once ``unit`` is committed. The data it works on is stored by then,
        so a broker that is down does not undo the request: the failure is logged, and the
        worker's sweep of stored work sends the task later."""
        unit.after_commit(lambda: self._send_or_defer(task))

    def request_after_commit(self, unit: UnitOfWork, name: str) -> None:
        """Have task ``name`` (no arguments) sent after ``unit`` commits, merged with the
        other requests for it (``MergedSends``): for a task that takes whatever work is
        stored, such as an embedding run. The request does not wait for the send; failures
        are logged as by ``send_after_commit``."""
        merged = self._merged.get(name)
        if merged is None:
            merged = self._merged[name] = MergedSends(
                lambda: self._send_or_defer(PendingTask(name)), MERGE_WINDOW_SECONDS
            )

        async def request() -> None:
            merged.request()

        unit.after_commit(request)

    async def flush(self) -> None:
        """Wait for the merged sends requested so far (before ``close``)."""
        for merged in self._merged.values():
            await merged.flush()

    async def _send_or_defer(self, task: PendingTask) -> None:
        try:
            await self.send(task)
        except QueueUnavailable as exc:
            log.warning("task_send_deferred", task=task.name, reason=exc.reason)

    async def send(self, task: PendingTask) -> None:
        """Publish ``task``; ``QueueUnavailable`` (503) saying why when it was not queued.

        The wait is bounded by the broker client's own timeouts (``create_celery``), and the
        thread is always waited for: a send that gave up has not published behind the
        caller's back. The one answer that cannot be known, a publish written to the broker
        whose reply never came, counts as queued (the broker runs it once it answers) and is
        logged ``task_send_unconfirmed``."""
        app = await self._built()
        try:
            with traces.sending(task.name, task.id) as headers:
                unconfirmed = await asyncio.to_thread(_publish, app, task, headers)
        except Exception as exc:  # noqa: BLE001 (any failure here means the broker is away)
            # Celery, kombu and redis-py raise many kinds of errors for one cause: the broker
            # (or the result backend) is not there. None of them may become a 500.
            reason = _reason(exc)
            log.warning("task_send_failed", task=task.name, task_id=task.id, reason=reason)
            raise QueueUnavailable(
                f"The task queue is unavailable ({reason}); nothing was queued, try again later.",
                reason=reason,
            ) from None
        if unconfirmed is not None:
            log.warning(
                "task_send_unconfirmed", task=task.name, task_id=task.id, reason=unconfirmed
            )
            return
        log.info("task_sent", task=task.name, task_id=task.id)

    async def state(self, task_id: str) -> dict[str, Any]:
        """``{"id", "state", "result"}``; an unknown id reads as PENDING (Celery cannot tell)."""
        from celery.result import AsyncResult

        app = await self._built()

        def read() -> dict[str, Any]:
            result = AsyncResult(task_id, app=app)
            state = result.state
            value = result.result if state == "SUCCESS" else None
            # RETRY: the reason it runs again (a worker that died names itself here).
            error = str(result.result) if state in ("FAILURE", "RETRY") else None
            return {"id": task_id, "state": state, "result": value, "error": error}

        try:
            return await asyncio.wait_for(asyncio.to_thread(read), READ_TIMEOUT_SECONDS)
        except Exception as exc:  # noqa: BLE001 (as in send(): whatever the library, the backend is away)
            reason = _reason(exc)
            raise QueueUnavailable(
                f"Task results are unavailable ({reason}).", reason=reason
            ) from None


# Merged sends not yet ended (MergedSends.request).
_SENDS: set[asyncio.Task[None]] = set()


class MergedSends:
    """Requests to send one task that takes whatever work is stored (an embedding run takes
    every pending document), merged into few sends, none of which the request waits for.

    A request in a quiet moment is sent at once; the requests that follow within
    ``window`` seconds of a send's start share one send at the window's end. Each request
    is served by a send that begins after it was made, so the task always sees its data.
    At 100 documents a request, sending one embedding run for each batch cost the api
    process a sixth of its work; a thousand batches now send a few dozen runs."""

    def __init__(self, send: Callable[[], Awaitable[None]], window: float) -> None:
        self._send = send
        self._window = window
        self._last_start = -window
        self._waiting: asyncio.Task[None] | None = None  # the next send, not begun yet
        self._under_way: asyncio.Task[None] | None = None
        self._flushing = asyncio.Event()  # no more waiting out the window

    def request(self) -> None:
        """Have a send begin after this call (the waiting one, if there is one)."""
        if self._waiting is None:
            self._waiting = asyncio.ensure_future(self._send_after(self._under_way))
            # The loop keeps only a weak reference to a task: this one must run to its end.
            _SENDS.add(self._waiting)
            self._waiting.add_done_callback(_SENDS.discard)

    async def flush(self) -> None:
        """Send what was requested without waiting out the window, and wait for it (on
        shutdown: no request is left behind)."""
        self._flushing.set()
        for task in (self._under_way, self._waiting):
            if task is not None:
                await asyncio.wait([task])

    async def _send_after(self, before: asyncio.Task[None] | None) -> None:
        if before is not None and not before.done():
            await asyncio.wait([before])  # one send at a time
        loop = asyncio.get_running_loop()
        if (delay := self._last_start + self._window - loop.time()) > 0:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._flushing.wait(), delay)
        # From here on this send is under way: later requests wait for the next.
        self._under_way, self._waiting = self._waiting, None
        self._last_start = loop.time()
        try:
            await self._send()
        except Exception:  # no request waits to be told: say it here
            log.exception("merged_send_failed")


# The id of the task this thread is publishing, set by Celery's ``before_task_publish``
# signal: an error after it may have reached the broker, an error before it cannot have.
_publishing = threading.local()


def _note_publishing(headers: dict[str, Any] | None = None, **_: object) -> None:
    _publishing.task_id = (headers or {}).get("id")


def _watch_publishing() -> None:
    """Have Celery tell ``_publishing`` when a publish starts (once per process; Celery is
    imported only once the web app sends its first task)."""
    from celery.signals import before_task_publish

    before_task_publish.connect(_note_publishing, weak=False, dispatch_uid=__name__)


def _publish(app: Celery, task: PendingTask, headers: dict[str, str]) -> str | None:
    """Publish ``task`` once, without Celery's retries (a retry of a publish that did reach
    the broker would queue it twice), with ``headers`` added to the message (the trace it
    continues). None when the broker took it; the reason when the publish was written but
    never confirmed. Raises when nothing can have been queued."""
    _publishing.task_id = None
    with app.producer_or_acquire() as producer:
        _confirm_broker(producer.channel)
        try:
            app.send_task(
                task.name,
                args=task.args,
                kwargs=task.kwargs,
                task_id=task.id,
                producer=producer,
                retry=False,
                headers=headers or None,
            )
        except Exception as exc:
            if _publishing.task_id != task.id or _refused(exc):
                raise
            return _reason(exc)
    return None


def _confirm_broker(channel: object) -> None:
    """Ask the broker to answer, on the connection the publish will use next, before
    anything of the task is written: a broker that hangs fails here, within its client's
    timeout, and nothing is queued. The publish that follows can only be left unconfirmed
    if the broker stops in the moment between the two.

    The embedded queue (``hearth.worker.pg_transport``) needs nothing here: each publish
    takes a connection from its pool that is pinged first, then writes in one statement."""
    redis = sys.modules.get("redis")  # imported by kombu's Redis transport, if in use
    pool = getattr(channel, "pool", None)  # kombu's Redis channel: redis-py's pool
    if redis is not None and isinstance(pool, redis.ConnectionPool):
        redis.Redis(connection_pool=pool).ping()


def _cause(exc: BaseException) -> BaseException:
    """The innermost error of ``exc``'s chain that says something: libraries re-raise with
    empty messages, or leave an unrelated error they handled as the context."""
    chain: list[BaseException] = [exc]
    while (inner := chain[-1].__cause__ or chain[-1].__context__) is not None:
        chain.append(inner)
    telling = [error for error in chain if str(error).strip() not in {"", "()", "None"}]
    return telling[-1] if telling else innermost(exc)


def _refused(exc: BaseException) -> bool:
    """Whether the broker answered the publish with a refusal (out of memory, read-only):
    then it has not queued the task. Nor has the embedded queue when it had no connection
    to send it on, or when PostgreSQL answered its one statement with an error (an SQLSTATE
    other than a broken connection's): that statement was rolled back."""
    error: BaseException | None = exc
    while error is not None:
        if getattr(error, "nothing_sent", False):
            return True  # the embedded queue had no connection to send it on
        error = error.__cause__ or error.__context__
    inner = innermost(exc)
    redis = sys.modules.get("redis")
    if redis is not None and isinstance(inner, redis.ResponseError):
        return True
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(inner, psycopg.Error):
        sqlstate = inner.sqlstate
        return sqlstate is not None and not sqlstate.startswith("08")
    return False


def _reason(exc: BaseException) -> str:
    """The innermost error's message, one line, no password; a timeout says so plainly."""
    cause = _cause(exc)
    redis = sys.modules.get("redis")
    timeouts = (TimeoutError,) if redis is None else (redis.TimeoutError, TimeoutError)
    if isinstance(cause, timeouts):
        # The driver's own words are "timed out": say who did not answer, and since when.
        return f"the broker did not answer within {BROKER_SOCKET_TIMEOUT_SECONDS:g} s"
    return first_line(cause)
