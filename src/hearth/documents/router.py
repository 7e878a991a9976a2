"""The documents API: add text, follow its embedding, search by meaning."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from hearth.access.dependencies import require
from hearth.config.dependencies import RuntimeValuesDep
from hearth.db.dependencies import SessionDep, UnitOfWorkDep, VectorSupportDep
from hearth.documents import service
from hearth.documents.schemas import (
    MAX_DOCUMENT_ID,
    MAX_RESULTS,
    DocumentBatchIn,
    DocumentIn,
    DocumentOut,
    DocumentsAccepted,
    SearchResults,
)
from hearth.llm.dependencies import LLMDep
from hearth.web.openapi import error_responses
from hearth.worker.dependencies import QueueDep

router = APIRouter(prefix="/documents", tags=["documents"])


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DocumentsAccepted,
    dependencies=[require("write")],
    responses=error_responses(401, 403, 503),
)
async def add_document(
    document: DocumentIn, unit: UnitOfWorkDep, queue: QueueDep
) -> DocumentsAccepted:
    """Store one document; the worker embeds it."""
    return await service.accept(unit, queue, [document])


@router.post(
    "/batch",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DocumentsAccepted,
    dependencies=[require("write")],
    responses=error_responses(401, 403, 503),
)
async def add_documents(
    batch: DocumentBatchIn, unit: UnitOfWorkDep, queue: QueueDep
) -> DocumentsAccepted:
    """Store up to 100 documents at once, embedded by one task."""
    return await service.accept(unit, queue, batch.documents)


@router.get(
    "/search",
    response_model=SearchResults,
    dependencies=[require("read")],
    responses=error_responses(401, 403, 503),
)
async def search(
    session: SessionDep,
    llm: LLMDep,
    values: RuntimeValuesDep,
    vector: VectorSupportDep,
    q: Annotated[str, Query(min_length=1, max_length=2000, description="What to look for.")],
    k: Annotated[int, Query(ge=1, le=MAX_RESULTS, description="How many results.")] = 5,
) -> SearchResults:
    """The ``k`` documents nearest in meaning to ``q``; 503 with the reason when the LLM or
    pgvector is not there."""
    model = values["embedding_model"].value
    return await service.search(session, vector, llm, model, q, k)


@router.get(
    "/{document_id}",
    response_model=DocumentOut,
    dependencies=[require("read")],
    responses=error_responses(401, 403, 404, 503),
)
async def get_document(
    document_id: Annotated[int, Path(ge=1, le=MAX_DOCUMENT_ID, description="The document's id.")],
    session: SessionDep,
) -> DocumentOut:
    """A document and whether the worker has embedded it yet."""
    return await service.get(session, document_id)
