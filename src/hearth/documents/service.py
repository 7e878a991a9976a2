"""Documents: store now, embed in the worker, search by meaning.

``accept`` stores them and asks for the embedding task once its unit of work is committed;
the worker's part is ``hearth.documents.embedding``; ``search`` embeds the query with the
LLM in force.
Documents are the user's data: once committed they are kept even if the task queue is down
(Redis rebooting), instead of a 503 that would make the client send them again as
duplicates. Pending documents are embedded by the next embedding run, whichever asked for
it: a run that leaves some queues the next, every worker sends one when it starts, and each
worker's beat sends one every ``EMBEDDING_SWEEP_SECONDS``.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from hearth.db import vector
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
    rows = [(document.text, document.metadata_json()) for document in documents]
    ids = await repository.insert_documents(unit.session, rows)
    log.info("documents_added", count=len(ids), first_id=ids[0] if ids else None)
    queue.request_after_commit(unit, EMBED_TASK)
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
    [query_vector] = await embed_texts(llm, [query], model)
    found = await repository.nearest(session, query_vector, model, k)
    return SearchResults(
        query=query,
        model=model,
        results=[
            SearchHit(id=row.id, text=row.text, metadata=row.metadata, score=row.score)
            for row in found.rows
        ],
        # Not "not embedded": what this search could not see, by the query's model.
        pending=found.unsearchable,
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


async def embed_texts(llm: LLMAdapter, texts: list[str], model: str) -> list[list[float]]:
    """The model's vectors: one per text, all of one non-zero size (the adapter checks)."""
    if not model:
        raise LLMUnavailable("no embedding model is set; set it on the config page")
    return await llm.embed(texts, model=model)
