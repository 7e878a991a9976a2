"""The documents API: add text, follow its embedding, search by meaning."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from hearth.documents import intake, service
from hearth.documents.schemas import (
    MAX_RESULTS,
    DocumentBatchIn,
    DocumentIn,
    DocumentOut,
    DocumentsAccepted,
    SearchResults,
)
from hearth.errors import HearthError
from hearth.health.dependencies import RuntimeDep

router = APIRouter(prefix="/documents", tags=["documents"])


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=DocumentsAccepted)
async def add_document(document: DocumentIn, runtime: RuntimeDep) -> DocumentsAccepted:
    """Store one document; the worker embeds it."""
    return await intake.accept(runtime, [document])


@router.post("/batch", status_code=status.HTTP_202_ACCEPTED, response_model=DocumentsAccepted)
async def add_documents(batch: DocumentBatchIn, runtime: RuntimeDep) -> DocumentsAccepted:
    """Store up to 100 documents at once, embedded by one task."""
    return await intake.accept(runtime, batch.documents)


@router.get("/search", response_model=SearchResults)
async def search(
    runtime: RuntimeDep,
    q: Annotated[str, Query(min_length=1, max_length=2000, description="What to look for.")],
    k: Annotated[int, Query(ge=1, le=MAX_RESULTS, description="How many results.")] = 5,
) -> SearchResults:
    """The ``k`` documents nearest in meaning to ``q``; 503 with the reason when the LLM or
    pgvector is not there."""
    return await intake.search(runtime, q, k)


@router.get("/{document_id}", response_model=DocumentOut)
async def get_document(document_id: int, runtime: RuntimeDep) -> DocumentOut:
    """A document and whether the worker has embedded it yet."""
    if runtime.sessions is None:
        raise HearthError("The database is not available.", status_code=503)
    async with runtime.sessions() as session:
        return await service.get(session, document_id)
