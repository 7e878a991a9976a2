"""The worker's embedding run: batch after batch of the oldest pending documents, each in one
call to the model, for about ``RUN_BUDGET_SECONDS``; the task then queues the next run if
more wait.

Runs on several workers share the backlog: each claims its batches (a session advisory lock
per document, ``repository.claim_pending``), so none is embedded twice, and a claim dies with
its session, so none is stranded by a worker that dies.

Within a run the model and PostgreSQL work at once: when the model has answered for one
batch, the next is claimed (on the run's session, before anything else uses it) and sent to
the model, and the answered one is stored while the model works (and while the worker
writes the vectors it answered as text). Storing (PostgreSQL inserting each vector into the
HNSW index) is the larger part; done one after the other, each would wait for the other.

Bounded: a run claims no new batch once its budget is spent or its worker is told to stop,
so a ping queued behind a backlog waits for about one batch more than the budget, and a
stopping worker finishes the call in flight and stores its batch
(``hearth.worker.run.STOP_BOUND_SECONDS``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hearth.db import vector
from hearth.db.engine import error_reason
from hearth.documents import repository, service
from hearth.llm.adapter import LLMAdapter, LLMUnavailable
from hearth.log import get_logger

log = get_logger(__name__)

# Texts per request to the embedding model: large enough to amortise the round trip, small
# enough that a Raspberry Pi's model answers well within its timeout.
EMBED_BATCH_SIZE = 32
# What of a document the model sees: about 2000 tokens, within every common embedding model's
# context (OpenAI's refuses longer input, and one refused text would hold up the whole queue).
EMBED_MAX_CHARS = 8000
# A run claims batches for this long, then ends (the task queues the next): its fixed costs
# (the task's trip through the broker, its run record, reading the settings) are spread over
# the batches of a second, and another task queued behind it (a ping) waits about as long.
RUN_BUDGET_SECONDS = 1.0
# A batch the model has embedded is not asked for again because the database connection
# dropped: the run stores it on a new connection, trying this long (within the worker's
# stop bound, hearth.worker.run.STOP_BOUND_SECONDS).
STORE_RETRY_SECONDS = 20.0
STORE_RETRY_INTERVAL_SECONDS = 0.5

# The embedding model in force, read again once the run's batches are stored.
ModelInForce = Callable[[], Awaitable[str]]
# Whether the worker was told to stop: the run then claims no further batch.
StopRequested = Callable[[], bool]


@dataclass(frozen=True)
class RunOutcome:
    """What one embedding run did: how many it embedded, whether documents still wait
    (the caller queues the next run), or that every pending document was claimed by other
    runs (``busy``: each of them queues what remains)."""

    embedded: int = 0
    more: bool = False
    busy: bool = False


def _never() -> bool:
    return False


async def embed_pending(  # noqa: PLR0913 (the resources its caller holds, then the run's bounds)
    engine: AsyncEngine,
    support: vector.VectorSupport,
    llm: LLMAdapter,
    model: str,
    *,
    probe: bool = False,
    model_in_force: ModelInForce | None = None,
    budget_seconds: float = RUN_BUDGET_SECONDS,
    stop_requested: StopRequested = _never,
) -> RunOutcome:
    """Embed the oldest pending documents no other run has claimed, ``EMBED_BATCH_SIZE`` a
    call to the model, claiming batches until ``budget_seconds`` have passed or
    ``stop_requested()`` (at least one batch). Each document is embedded once, by one run.

    With ``probe`` (a retry, a sweep) the LLM's health check is asked first, so a server
    known to be down costs a second, not the embedding timeout. ``LLMUnavailable`` when the
    model cannot answer, its reason recorded on that batch; a database error as it comes.
    Either way what was not stored stays pending for the next run.

    ``model_in_force`` is asked once the run's batches are stored (however it ends): if the
    model changed while the run worked, they are queued again, so that no document keeps a
    vector of a model a re-embedding, which may have run meanwhile, no longer wants.
    """
    deadline = time.monotonic() + budget_seconds

    def go_on() -> bool:
        return time.monotonic() < deadline and not stop_requested()

    async with engine.connect() as connection:
        await _each_statement_committed(connection)
        run = _Run(engine, connection, llm, model)
        try:
            claimed = await run.embed(
                support, probe=probe, go_on=go_on, model_in_force=model_in_force
            )
        finally:
            await _release(connection)
        # Read once the claims are given back: a document added while this run held them
        # is seen here, and gets the next run.
        more = await repository.has_pending(connection)
    if not claimed:
        return RunOutcome(busy=more)
    return RunOutcome(embedded=len(run.stored), more=more)


async def _each_statement_committed(connection: AsyncConnection) -> None:
    """Autocommit, until the connection goes back to the pool: every statement of a run is
    a transaction of its own (a store is one statement), so none costs a BEGIN and a
    COMMIT more, and no transaction stays open while the model works."""
    await connection.execution_options(isolation_level="AUTOCOMMIT")


async def _release(connection: AsyncConnection) -> None:
    """Give back the run's claims; where that fails, end the session (its claims go with
    it) rather than let the pool hand it on still holding them."""
    try:
        await repository.release_claims(connection)
    except SQLAlchemyError:
        with contextlib.suppress(SQLAlchemyError):
            await connection.invalidate()


@dataclass
class _Batch:
    """Documents the run claimed, and its call to the model for them, under way."""

    ids: list[int]
    vectors: asyncio.Task[list[repository.VectorText]]


class _Run:
    """One embedding run: its session (which holds its claims), what it stored, and
    whether that session was lost."""

    def __init__(
        self, engine: AsyncEngine, connection: AsyncConnection, llm: LLMAdapter, model: str
    ) -> None:
        self.engine = engine
        self.connection = connection
        self.llm = llm
        self.model = model
        self.stored: list[int] = []
        # The session went away, its claims with it: what the model answers is stored on a
        # new connection, and no further batch is claimed.
        self.lost = False
        self.indexed: set[int] = set()  # vector sizes whose HNSW index this run made sure of

    async def embed(
        self,
        support: vector.VectorSupport,
        *,
        probe: bool,
        go_on: Callable[[], bool],
        model_in_force: ModelInForce | None,
    ) -> bool:
        """Batch after batch while ``go_on()``; False when there was nothing this run could
        do (no pgvector, or nothing left to claim)."""
        if not await support.available(self.connection):
            if not probe:  # the sweep would say it every period
                log.warning("documents_not_embedded", reason=service.PGVECTOR_MISSING)
            return False
        in_flight = await self._claim(probe=probe, held=[])
        if in_flight is None:
            return False
        try:
            while in_flight is not None:
                batch, in_flight = in_flight, None
                vectors = await self._answer(batch)
                if go_on() and not self.lost:
                    in_flight = await self._claim_next(held=batch.ids)
                await self._store(batch.ids, vectors)
        finally:
            if in_flight is not None:  # never stored: its documents stay pending
                await _abandon(in_flight.vectors)
            if model_in_force is not None and self.stored:
                await self._requeue_if_model_changed(model_in_force)
        return True

    async def _claim(self, *, probe: bool, held: list[int]) -> _Batch | None:
        """The next batch, claimed, its call to the model started; None when none is left.
        ``held``: claimed by this run and not stored yet (a session's advisory locks are
        its own to take again)."""
        rows = await repository.claim_pending(self.connection, EMBED_BATCH_SIZE, held)
        if not rows:
            return None
        texts = [row.text[:EMBED_MAX_CHARS] for row in rows]
        return _Batch([row.id for row in rows], asyncio.create_task(self._ask(texts, probe)))

    async def _claim_next(self, *, held: list[int]) -> _Batch | None:
        """``_claim`` while a batch is in hand: a session lost here leaves that batch to be
        stored on a new connection, and no next batch."""
        try:
            return await self._claim(probe=False, held=held)
        except (OperationalError, InterfaceError) as exc:
            self.lost = True
            log.warning("documents_claim_failed", reason=error_reason(exc))
            return None

    async def _ask(self, texts: list[str], probe: bool) -> list[repository.VectorText]:  # noqa: FBT001 (a task's coroutine)
        if probe:
            result = await self.llm.check()
            if result.status != "ok":
                raise LLMUnavailable(result.detail or f"the LLM is {result.status}")
        vectors = await service.embed_texts(self.llm, texts, self.model)
        # Written here, while the batch before is stored, rather than when this one is.
        return [repository.vector_text(vector) for vector in vectors]

    async def _answer(self, batch: _Batch) -> list[repository.VectorText]:
        """The batch's vectors; ``LLMUnavailable`` with its reason recorded on the batch."""
        try:
            return await batch.vectors
        except LLMUnavailable as exc:
            await repository.record_failure(self.connection, batch.ids, exc.message)
            log.warning("documents_embedding_failed", count=len(batch.ids), reason=exc.message)
            raise

    async def _store(self, ids: list[int], vectors: list[repository.VectorText]) -> None:
        if not self.lost:
            try:
                await self._store_on(self.connection, ids, vectors)
            except (OperationalError, InterfaceError) as exc:
                # The connection was lost after the model answered: store on a new one
                # rather than ask the model again.
                self.lost = True
                log.warning("documents_store_retry", count=len(ids), reason=error_reason(exc))
        if self.lost:
            await self._store_again(ids, vectors)
        self.stored += ids
        log.info("documents_embedded", count=len(ids), model=self.model)

    async def _store_on(
        self, connection: AsyncConnection, ids: list[int], vectors: list[repository.VectorText]
    ) -> None:
        size = vectors[0].size
        if size not in self.indexed:
            # In a transaction (its lock holds until the index is made), before the store.
            async with self.engine.begin() as schema:
                await schema.run_sync(vector.ensure_index, size)
            self.indexed.add(size)
        await repository.store_embeddings(connection, ids, vectors, self.model)

    async def _store_again(self, ids: list[int], vectors: list[repository.VectorText]) -> None:
        """Store the batch on a new connection, trying for ``STORE_RETRY_SECONDS``; the
        last database error after that. The lost session's claims went with it: they are
        taken again where they are free, so a run that starts meanwhile does not ask the
        model for the same documents."""
        deadline = time.monotonic() + STORE_RETRY_SECONDS
        while True:
            await asyncio.sleep(STORE_RETRY_INTERVAL_SECONDS)
            try:
                async with self.engine.connect() as connection:
                    await _each_statement_committed(connection)
                    await repository.reclaim(connection, ids)
                    await self._store_on(connection, ids, vectors)
                    await repository.release_claims(connection)
            except (OperationalError, InterfaceError):
                if time.monotonic() >= deadline:
                    raise
            else:
                return

    async def _requeue_if_model_changed(self, model_in_force: ModelInForce) -> None:
        now = await model_in_force()
        if now != self.model:
            async with self.engine.begin() as connection:
                count = await repository.requeue_stale(connection, self.stored, self.model)
            log.info("documents_requeued_model_changed", count=count, used=self.model, in_force=now)


async def _abandon(call: asyncio.Task[list[repository.VectorText]]) -> None:
    """Cancel a call to the model whose answer the run will not store."""
    call.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await call
