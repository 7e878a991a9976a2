"""Documents: store now, embed in the worker, search by meaning.

``accept`` stores them and asks for the embedding task once its unit of work is committed;
``embed_next_batch`` is the worker's part, one batch per run; ``search`` embeds the query
with the LLM in force.
Documents are the user's data: once committed they are kept even if the task queue is down
(Redis rebooting), instead of a 503 that would make the client send them again as
duplicates. Pending documents are embedded by the next embedding run, whichever asked for
it: a run that leaves some queues the next, every worker sends one when it starts, and each
worker's beat sends one every ``EMBEDDING_SWEEP_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from hearth.db import vector
from hearth.db.engine import error_reason
from hearth.db.unit import UnitOfWork
from hearth.documents import repository
from hearth.documents.schemas import (
    DocumentIn,
    DocumentOut,
    DocumentsAccepted,
    SearchHit,
    SearchResults,
)
from hearth.errors import HearthError
from hearth.llm.adapter import LLMAdapter, LLMUnavailable
from hearth.log import get_logger
from hearth.worker.queue import PendingTask, TaskQueue

log = get_logger(__name__)

EMBED_TASK = "hearth.embed_documents"
# Texts per request to the embedding model: large enough to amortise the round trip, small
# enough that a Raspberry Pi's model answers well within its timeout.
EMBED_BATCH_SIZE = 32
# What of a document the model sees: about 2000 tokens, within every common embedding model's
# context (OpenAI's refuses longer input, and one refused text would hold up the whole queue).
EMBED_MAX_CHARS = 8000
# A batch the model has embedded is not asked for again because the database connection
# dropped: the run stores it on a new connection, trying this long (within the worker's
# stop bound, hearth.worker.run.STOP_BOUND_SECONDS).
STORE_RETRY_SECONDS = 20.0
STORE_RETRY_INTERVAL_SECONDS = 0.5


class SearchUnavailable(HearthError):
    """Search cannot run on this database (no pgvector); the message says how to fix it."""

    status_code = 503


class DocumentNotFound(HearthError):
    """There is no document with that id: 404."""

    status_code = 404


PGVECTOR_MISSING = (
    "document search needs the pgvector extension, which this PostgreSQL server does not "
    "have: install it (the pgvector/pgvector image, or the postgresql-NN-pgvector package), "
    "then restart Hearth or run `hearth migrate`"
)


async def accept(
    unit: UnitOfWork, queue: TaskQueue, documents: Sequence[DocumentIn]
) -> DocumentsAccepted:
    """Store ``documents`` as pending in ``unit`` and have them embedded once it commits."""
    ids = await repository.insert_documents(unit.session, [(d.text, d.metadata) for d in documents])
    log.info("documents_added", count=len(ids), first_id=ids[0] if ids else None)
    queue.send_after_commit(unit, PendingTask(EMBED_TASK))
    return DocumentsAccepted(ids=ids)


async def get(session: AsyncSession, document_id: int) -> DocumentOut:
    """One document and whether it is embedded yet; ``DocumentNotFound`` (404)."""
    row = await repository.get(session, document_id)
    if row is None:
        raise DocumentNotFound(f"There is no document {document_id}.")
    return DocumentOut(
        id=row.id,
        text=row.text,
        metadata=row.meta,
        status="embedded" if row.embedded_at else "pending",
        embedding_model=row.embedding_model,
        embedded_at=row.embedded_at,
        error=row.error,
        created_at=row.created_at,
    )


async def search(  # noqa: PLR0913, PLR0917 (the resources its callers hold, then the query)
    session: AsyncSession,
    support: vector.VectorSupport,
    llm: LLMAdapter,
    model: str,
    query: str,
    k: int,
) -> SearchResults:
    """The ``k`` documents nearest to ``query``, best first. ``LLMUnavailable`` (503) when
    the query cannot be embedded; ``SearchUnavailable`` (503) without pgvector."""
    if not await support.available(await session.connection()):
        raise SearchUnavailable(f"Search is unavailable: {PGVECTOR_MISSING}.")
    [query_vector] = await _embed(llm, [query], model)
    rows = await repository.nearest(session, query_vector, model, k)
    return SearchResults(
        query=query,
        model=model,
        results=[
            SearchHit(id=row.id, text=row.text, metadata=row.metadata, score=row.score)
            for row in rows
        ],
        pending=await repository.count_pending(session),
    )


@dataclass(frozen=True)
class BatchOutcome:
    """What one embedding run did: how many it embedded, whether documents still wait
    (the caller queues the next run), or that another run was embedding (``busy``: that
    run queues what remains)."""

    embedded: int = 0
    more: bool = False
    busy: bool = False


async def embed_next_batch(
    engine: AsyncEngine,
    support: vector.VectorSupport,
    llm: LLMAdapter,
    model: str,
    *,
    probe: bool = False,
) -> BatchOutcome:
    """Embed the oldest pending documents, ``EMBED_BATCH_SIZE`` of them in one call to the
    model, unless another run is embedding (one run at a time, across all workers).

    Bounded work, so a worker told to stop finishes within one call to the model. With
    ``probe`` (a retry, a sweep) the LLM's health check is asked first, so a server known to
    be down costs a second, not the embedding timeout. ``LLMUnavailable`` when the model
    cannot answer, its reason recorded on the batch; a database error as it comes. Either
    way the documents stay pending for the next run.
    """
    async with engine.connect() as connection:
        if not await repository.try_lock_embedding(connection):
            return BatchOutcome(busy=True)
        await connection.commit()
        try:
            embedded = await _embed_locked(engine, connection, support, llm, model, probe=probe)
        finally:
            with contextlib.suppress(SQLAlchemyError):  # a lost session holds no lock
                await repository.unlock_embedding(connection)
                await connection.commit()
    if embedded is None:
        return BatchOutcome()
    # Read after the lock is given back: a document added while this run held it (whose
    # own run found the lock taken) is seen here, and gets the next run.
    async with engine.connect() as connection:
        return BatchOutcome(embedded=embedded, more=await repository.has_pending(connection))


async def _embed_locked(  # noqa: PLR0913 (the resources its caller holds)
    engine: AsyncEngine,
    connection: AsyncConnection,
    support: vector.VectorSupport,
    llm: LLMAdapter,
    model: str,
    *,
    probe: bool,
) -> int | None:
    """One batch, under the embedding lock; None when there is nothing this run can do."""
    if not await support.available(connection):
        if not probe:  # the sweep would say it every period
            log.warning("documents_not_embedded", reason=PGVECTOR_MISSING)
        return None
    rows = await repository.next_pending(connection, EMBED_BATCH_SIZE)
    await connection.commit()  # no transaction stays open while the model works
    if not rows:
        return None
    ids = [row.id for row in rows]
    try:
        if probe:
            await _probe(llm)
        vectors = await _embed(llm, [row.text[:EMBED_MAX_CHARS] for row in rows], model)
    except LLMUnavailable as exc:
        await repository.record_failure(connection, ids, exc.message)
        await connection.commit()
        log.warning("documents_embedding_failed", count=len(ids), reason=exc.message)
        raise
    try:
        await _store(connection, ids, vectors, model)
    except (OperationalError, InterfaceError) as exc:
        # The connection was lost after the model answered: store on a new one rather
        # than ask the model again.
        log.warning("documents_store_retry", count=len(ids), reason=error_reason(exc))
        await _store_again(engine, ids, vectors, model)
    log.info("documents_embedded", count=len(ids), model=model)
    return len(ids)


async def _probe(llm: LLMAdapter) -> None:
    """``LLMUnavailable`` saying why, unless the LLM's health check is ok."""
    result = await llm.check()
    if result.status != "ok":
        raise LLMUnavailable(result.detail or f"the LLM is {result.status}")


async def _store(
    connection: AsyncConnection, ids: list[int], vectors: list[list[float]], model: str
) -> None:
    await connection.run_sync(vector.ensure_index, len(vectors[0]))
    await repository.store_embeddings(connection, ids, vectors, model)
    await connection.commit()


async def _store_again(
    engine: AsyncEngine, ids: list[int], vectors: list[list[float]], model: str
) -> None:
    """Store the batch on a new connection, trying for ``STORE_RETRY_SECONDS``; the last
    database error after that. Under the embedding lock when it can be had, so a run that
    starts meanwhile finds it taken rather than ask the model for the same documents."""
    deadline = time.monotonic() + STORE_RETRY_SECONDS
    while True:
        await asyncio.sleep(STORE_RETRY_INTERVAL_SECONDS)
        try:
            async with engine.connect() as connection:
                locked = await repository.try_lock_embedding(connection)
                await _store(connection, ids, vectors, model)
                if locked:
                    await repository.unlock_embedding(connection)
                    await connection.commit()
        except (OperationalError, InterfaceError):
            if time.monotonic() >= deadline:
                raise
        else:
            return


async def _embed(llm: LLMAdapter, texts: list[str], model: str) -> list[list[float]]:
    """The model's vectors: one per text, all of one non-zero size (the adapter checks)."""
    if not model:
        raise LLMUnavailable("no embedding model is set; set it on the config page")
    return await llm.embed(texts, model=model)
