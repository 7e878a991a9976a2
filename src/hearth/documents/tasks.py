"""The worker's side of documents: embed what is pending, about a second's batches per run.

Idempotent, as every Hearth task: a run embeds the oldest pending documents no other run
has claimed, so a redelivered run, or one queued twice, simply finds less to do (or every
pending document claimed by runs on other workers, and ends at once). A run claims batches
for ``embedding.RUN_BUDGET_SECONDS``, then queues the next: a ping waits for about that and
one batch more, not for the backlog, and a worker told to stop (``hearth.worker.stopping``)
finishes the call to the model in flight and stores its batch.

Runs come from four places: a document added, the run before (more remain), a worker
starting, and each worker's beat every ``EMBEDDING_SWEEP_SECONDS`` (the sweep); the last
two only when a document waits (``documents_wait``). Whatever
stops a run (the database, the broker, the LLM) leaves the documents pending; the run is
retried with backoff, and the sweep carries on after the retries, so nothing stays pending
while a worker runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
from typing import TYPE_CHECKING, Any

import psycopg
from celery import shared_task
from celery.signals import worker_process_shutdown, worker_ready
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from hearth.config.service import ConfigService
from hearth.config.settings import Settings
from hearth.db import driver
from hearth.db import engine as db_engine
from hearth.db.vector import VectorSupport
from hearth.documents import embedding, repository, service
from hearth.kit.text import first_line
from hearth.llm.adapter import LLMUnavailable
from hearth.llm.provider import LLMChoice, LLMProvider
from hearth.log import get_logger
from hearth.worker import metrics as worker_metrics
from hearth.worker import schedule, stopping

if TYPE_CHECKING:
    import httpx
    from sqlalchemy.ext.asyncio import AsyncEngine

log = get_logger(__name__)

# Whether the database can store vectors, read once per worker process.
_vector_support = VectorSupport()

# What a run may meet that passes: the database or the broker restarting, the LLM away.
TRANSIENT = (LLMUnavailable, SQLAlchemyError, psycopg.Error, BrokerError, OSError)
# A failed run is tried again after 2 s, 4 s, 8 s … but never later than the next sweep
# would, so a run is not parked long after the LLM or the database is back.
MAX_RETRIES = 6
FIRST_BACKOFF_SECONDS = 2.0


@worker_ready.connect  # type: ignore[untyped-decorator]
def _embed_what_waits(sender: Any, **_kwargs: object) -> None:  # noqa: ANN401 (Celery is untyped: the worker's consumer)
    """A starting worker asks for one embedding run: documents stored while the queue was
    down (or while no worker ran) get embedded without waiting for the sweep."""
    if documents_wait(sender.app):
        _queue_run(sender.app)


@schedule.only_when(service.EMBED_TASK)
def documents_wait(app: Any) -> bool:  # noqa: ANN401 (Celery is untyped: its app)
    """Whether any document waits to be embedded: asked in the worker's main process before
    it sends a run (starting, and at each sweep), so that a worker at rest sends none and
    its pool process builds nothing (hearth.worker.schedule). One connection, closed after
    the question; True when the database cannot answer (the run is sent, and fails and is
    retried as any run would)."""
    try:
        with driver.connect(app.conf.hearth_database_url, autocommit=True) as connection:
            return repository.has_pending_driver(connection)
    except (psycopg.Error, OSError) as exc:
        log.debug("documents_pending_unknown", reason=first_line(exc))
        return True


def _queue_run(app: Any) -> None:  # noqa: ANN401 (Celery is untyped: its app)
    try:
        app.send_task(service.EMBED_TASK)
    except Exception as exc:  # noqa: BLE001 (the broker went away again; the sweep will do it)
        log.warning("documents_run_not_queued", reason=first_line(exc))


@shared_task(name=service.EMBED_TASK, bind=True, max_retries=MAX_RETRIES)  # type: ignore[untyped-decorator]
def embed_documents(self: Any, *, periodic: bool = False) -> dict[str, int]:  # noqa: ANN401 (Celery is untyped: the bound task)
    """Embed pending documents for about a second, and queue a run for the rest.

    ``periodic``: sent by the beat; its retry is the next sweep, so it is not retried.
    """
    settings: Settings = self.app.conf.hearth_settings
    retries: int = self.request.retries
    try:
        outcome = _loop.run(
            settings, self.app.conf.hearth_database_url, probe=periodic or retries > 0
        )
    except TRANSIENT as exc:
        reason = _reason(exc)
        if periodic or retries >= MAX_RETRIES:
            # The documents stay pending (an LLM failure recorded on them); the sweep
            # tries again every EMBEDDING_SWEEP_SECONDS.
            log.info("documents_embedding_left_to_sweep", reason=reason)
            return {"embedded": 0}
        countdown = min(settings.embedding_sweep_seconds, FIRST_BACKOFF_SECONDS * 2**retries)
        log.info("documents_embedding_retry", in_seconds=countdown, reason=reason)
        raise self.retry(countdown=countdown) from None
    if outcome.more:
        _queue_run(self.app)
    return {"embedded": outcome.embedded, "busy": int(outcome.busy)}


def _reason(exc: BaseException) -> str:
    if isinstance(exc, LLMUnavailable):
        return exc.message
    return db_engine.error_reason(exc)


class _ProcessLoop:
    """One event loop per pool process for the embedding runs, with the database engine
    and the HTTP client they share: a run then costs its own queries and its call to the
    model, where a new loop, engine and client each time cost more than the batch's store
    (new connections, the dialect's first queries, the TLS context). Made on first use in
    the process that runs the task (never inherited across a fork); closed when that
    process stops."""

    def __init__(self) -> None:
        self._pid: int | None = None
        self._runner: asyncio.Runner | None = None
        self._engine: AsyncEngine | None = None
        self._client: httpx.AsyncClient | None = None

    def run(self, settings: Settings, database_url: str, *, probe: bool) -> embedding.RunOutcome:
        """One embedding run on this process's loop."""
        if self._pid != os.getpid():  # a forked child: what the parent made is not its own
            self._runner, self._engine, self._client = None, None, None
            self._pid = os.getpid()
        if self._runner is None:
            self._runner = asyncio.Runner()
        # In the context of the task that runs it (its trace span, its log fields), not in the
        # one the runner copied when it was made, on the process's first run.
        return self._runner.run(
            self._run(settings, database_url, probe=probe), context=contextvars.copy_context()
        )

    async def _run(
        self, settings: Settings, database_url: str, *, probe: bool
    ) -> embedding.RunOutcome:
        import httpx

        if self._engine is None:
            self._engine = db_engine.create_engine(database_url)
        if self._client is None:
            self._client = httpx.AsyncClient()
        return await _embed_pending(settings, self._engine, self._client, probe=probe)

    def close(self) -> None:
        """Close the engine, the client and the loop, if this process made them."""
        if self._runner is None or self._pid != os.getpid():
            return
        with contextlib.suppress(Exception):  # stopping: nothing left to report to
            self._runner.run(self._aclose())
        self._runner.close()
        self._runner = None

    async def _aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        if self._engine is not None:
            await self._engine.dispose()
        self._engine, self._client = None, None


_loop = _ProcessLoop()


@worker_process_shutdown.connect  # type: ignore[untyped-decorator]
def _close_loop(**_kwargs: object) -> None:
    _loop.close()


async def _embed_pending(
    settings: Settings, engine: AsyncEngine, client: httpx.AsyncClient, *, probe: bool
) -> embedding.RunOutcome:
    config = ConfigService(settings)

    async def model_in_force() -> str:
        async with AsyncSession(engine) as session:
            return (await config.values_in_force(session))["embedding_model"].value

    async with AsyncSession(engine) as session:
        values = await config.values_in_force(session)
    provider = LLMProvider(
        lambda: client, settings.bound_llm_api_key(), worker_metrics.llm_recorder()
    )
    llm = provider.adapter(LLMChoice.of(values))
    model = values["embedding_model"].value
    return await embedding.embed_pending(
        engine,
        _vector_support,
        llm,
        model,
        probe=probe,
        model_in_force=model_in_force,
        stop_requested=stopping.requested,
    )
