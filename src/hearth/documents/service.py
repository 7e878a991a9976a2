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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from hearth.db import vector
from hearth.db.engine import error_reason
from hearth.db.unit import UnitOfWork
from hearth.documents import reembed, repository
from hearth.documents.schemas import (
    DocumentIn,
    DocumentOut,
    DocumentsAccepted,
    DocumentsOverview,
    Failure,
    ModelCount,
    ReembedQueued,
    SearchHit,
    SearchResults,
    StatusCounts,
)
from hearth.errors import HearthError
from hearth.llm.adapter import LLMAdapter, LLMUnavailable
from hearth.log import get_logger
from hearth.worker.queue import PendingTask, QueueUnavailable, TaskQueue

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
# Failed documents the Documents page lists, oldest first.
FAILURES_SHOWN = 50


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
        # Not "not embedded": what this search could not see, by the query's model.
        pending=await repository.count_unsearchable(session, model, len(query_vector)),
    )


async def delete(session: AsyncSession, document_id: int) -> None:
    """Delete a document and its vector; ``DocumentNotFound`` (404)."""
    if not await repository.delete(session, document_id):
        raise DocumentNotFound(f"There is no document {document_id}.")
    log.info("document_deleted", document_id=document_id)


async def overview(session: AsyncSession, model: str) -> DocumentsOverview:
    """What the Documents page shows: counts by status and by model (``model`` being the
    one in force), the oldest failures with their reason, the re-embedding's progress."""
    counts = {"embedded": 0, "pending": 0, "failed": 0}
    by_model: dict[str, dict[str, int]] = {}
    for status, held_model, count in await repository.status_counts(session):
        counts[status] += count
        if held_model is not None:
            held = by_model.setdefault(held_model, {"embedded": 0, "requeued": 0})
            held["embedded" if status == "embedded" else "requeued"] += count
    models = [
        ModelCount(model=name, current=name == model, **held)
        for name, held in sorted(by_model.items(), key=lambda item: (item[0] != model, item[0]))
    ]
    failures = [
        Failure(id=row.id, excerpt=row.excerpt, error=row.error)
        for row in await repository.failures(session, FAILURES_SHOWN)
    ]
    return DocumentsOverview(
        model=model,
        counts=StatusCounts(**counts, total=sum(counts.values())),
        models=models,
        other_models=sum(m.embedded for m in models if not m.current),
        failures=failures,
        progress=await reembed.progress(session, model),
    )


async def reembed_all(engine: AsyncEngine, queue: TaskQueue, model: str) -> ReembedQueued:
    """Queue every document embedded by another model than ``model`` and send an embedding
    run. The documents are marked (committed) first: a queue that is down then delays them
    until the worker's sweep, and loses nothing."""
    queued = await reembed.requeue_other_models(engine, model)
    detail = f"Queued {queued} document{'s' * (queued != 1)} to be embedded by {model}."
    if queued:
        try:
            await queue.send(PendingTask(EMBED_TASK))
        except QueueUnavailable as exc:
            log.warning("task_send_deferred", task=EMBED_TASK, reason=exc.reason)
            detail += " The task queue is unavailable; the worker's sweep will start them."
    else:
        detail = f"Every embedded document is embedded by {model} already: nothing to queue."
    async with engine.connect() as connection:
        now = await reembed.progress(connection, model)
    return ReembedQueued(model=model, queued=queued, progress=now, detail=detail)


@dataclass(frozen=True)
class BatchOutcome:
    """What one embedding run did: how many it embedded, whether documents still wait
    (the caller queues the next run), or that every pending document was claimed by other
    runs (``busy``: each of them queues what remains)."""

    embedded: int = 0
    more: bool = False
    busy: bool = False


# The embedding model in force, read again after a batch is stored.
ModelInForce = Callable[[], Awaitable[str]]


async def embed_next_batch(  # noqa: PLR0913 (the resources its caller holds)
    engine: AsyncEngine,
    support: vector.VectorSupport,
    llm: LLMAdapter,
    model: str,
    *,
    probe: bool = False,
    model_in_force: ModelInForce | None = None,
) -> BatchOutcome:
    """Embed the oldest pending documents no other run has claimed, ``EMBED_BATCH_SIZE`` of
    them in one call to the model. Runs on several workers share the backlog: each claims
    its own batch (``repository.claim_pending``), so none is embedded twice, and a claim
    dies with its session, so none is stranded by a worker that dies.

    Bounded work, so a worker told to stop finishes within one call to the model. With
    ``probe`` (a retry, a sweep) the LLM's health check is asked first, so a server known to
    be down costs a second, not the embedding timeout. ``LLMUnavailable`` when the model
    cannot answer, its reason recorded on the batch; a database error as it comes. Either
    way the documents stay pending for the next run.

    ``model_in_force`` is asked once the batch is stored: if the model changed while the
    run worked, the batch is queued again, so that no document keeps a vector of a model a
    re-embedding, which may have run meanwhile, no longer wants.
    """
    async with engine.connect() as connection:
        try:
            embedded = await _embed_claimed(engine, connection, support, llm, model, probe=probe)
            if embedded and model_in_force is not None:
                await _requeue_if_model_changed(connection, embedded, model, model_in_force)
        finally:
            await _release(connection)
        # Read once the claims are given back: a document added while this run held them
        # is seen here, and gets the next run.
        more = await repository.has_pending(connection)
        await connection.commit()
    if embedded is None:
        return BatchOutcome(busy=more)
    return BatchOutcome(embedded=len(embedded), more=more)


async def _release(connection: AsyncConnection) -> None:
    """Give back the run's claims; where that fails, end the session (its claims go with
    it) rather than let the pool hand it on still holding them."""
    try:
        await repository.release_claims(connection)
        await connection.commit()
    except SQLAlchemyError:
        with contextlib.suppress(SQLAlchemyError):
            await connection.invalidate()


async def _requeue_if_model_changed(
    connection: AsyncConnection, ids: list[int], model: str, model_in_force: ModelInForce
) -> None:
    now = await model_in_force()
    if now != model:
        count = await repository.requeue_stale(connection, ids, model)
        await connection.commit()
        log.info("documents_requeued_model_changed", count=count, used=model, in_force=now)


async def _embed_claimed(  # noqa: PLR0913 (the resources its caller holds)
    engine: AsyncEngine,
    connection: AsyncConnection,
    support: vector.VectorSupport,
    llm: LLMAdapter,
    model: str,
    *,
    probe: bool,
) -> list[int] | None:
    """One batch, claimed on ``connection``'s session: the ids embedded; None when there is
    nothing this run can do."""
    if not await support.available(connection):
        if not probe:  # the sweep would say it every period
            log.warning("documents_not_embedded", reason=PGVECTOR_MISSING)
        await connection.commit()
        return None
    rows = await repository.claim_pending(connection, EMBED_BATCH_SIZE)
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
    return ids


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
    database error after that. The lost session's claims went with it: they are taken
    again where they are free, so a run that starts meanwhile does not ask the model for
    the same documents."""
    deadline = time.monotonic() + STORE_RETRY_SECONDS
    while True:
        await asyncio.sleep(STORE_RETRY_INTERVAL_SECONDS)
        try:
            async with engine.connect() as connection:
                await repository.reclaim(connection, ids)
                await _store(connection, ids, vectors, model)
                await repository.release_claims(connection)
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
