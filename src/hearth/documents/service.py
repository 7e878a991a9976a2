"""Documents: store now, embed in the worker, search by meaning.

``accept`` stores them and asks for the embedding task once its unit of work is committed;
``embed_pending`` is the worker's part; ``search`` embeds the query with the LLM in force.
Documents are the user's data: once committed they are kept even if the task queue is down
(Redis rebooting), instead of a 503 that would make the client send them again as
duplicates. Pending documents are embedded by the next embedding task, whichever asked for
it; every worker sends one when it starts.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from hearth.db import vector
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


async def embed_pending(
    engine: AsyncEngine, support: vector.VectorSupport, llm: LLMAdapter, model: str
) -> int:
    """Embed every pending document, ``EMBED_BATCH_SIZE`` per call to the model, each batch
    in its own transaction; how many were embedded. ``LLMUnavailable`` when the model cannot
    answer: the batch stays pending with the reason recorded, for the task's retry."""
    async with engine.connect() as connection:
        if not await support.available(connection):
            log.warning("documents_not_embedded", reason=PGVECTOR_MISSING)
            return 0
    embedded = 0
    while True:
        async with engine.begin() as connection:
            rows = await repository.claim_pending(connection, EMBED_BATCH_SIZE)
            if not rows:
                return embedded
            ids = [row.id for row in rows]
            try:
                texts = [row.text[:EMBED_MAX_CHARS] for row in rows]
                vectors = await _embed(llm, texts, model)
            except LLMUnavailable as exc:
                failure = exc
            else:
                await connection.run_sync(vector.ensure_index, len(vectors[0]))
                await repository.store_embeddings(connection, ids, vectors, model)
                embedded += len(ids)
                log.info("documents_embedded", count=len(ids), model=model)
                continue
        async with engine.begin() as connection:
            await repository.record_failure(connection, ids, failure.message)
        log.warning("documents_embedding_failed", count=len(ids), reason=failure.message)
        raise failure


async def _embed(llm: LLMAdapter, texts: list[str], model: str) -> list[list[float]]:
    """The model's vectors: one per text, all of one non-zero size (the adapter checks)."""
    if not model:
        raise LLMUnavailable("no embedding model is set; set it on the config page")
    return await llm.embed(texts, model=model)
