"""The documents API and page: add text, follow its embedding, search by meaning, delete,
re-embed after the embedding model changed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.responses import Response

from hearth.access.dependencies import require
from hearth.config.dependencies import RuntimeValuesDep, StoredRuntimeValuesDep
from hearth.db.dependencies import SessionDep, UnitOfWorkDep, VectorSupportDep
from hearth.documents import pages, reembed, service
from hearth.documents.dependencies import EngineDep
from hearth.documents.schemas import (
    MAX_DOCUMENT_ID,
    MAX_RESULTS,
    DocumentBatchIn,
    DocumentIn,
    DocumentOut,
    DocumentsAccepted,
    DocumentsOverview,
    ReembedProgress,
    ReembedQueued,
    SearchResults,
)
from hearth.llm.dependencies import LLMDep
from hearth.web.forms import submitted_values
from hearth.web.openapi import error_responses, form_or_json
from hearth.web.templating import flash, wants_html
from hearth.worker.dependencies import QueueDep

router = APIRouter(prefix="/documents", tags=["documents"])

DocumentId = Annotated[int, Path(ge=1, le=MAX_DOCUMENT_ID, description="The document's id.")]
Q = Annotated[str, Query(min_length=1, max_length=2000, description="What to look for.")]
K = Annotated[int, Query(ge=1, le=MAX_RESULTS, description="How many results.")]
_CSRF_BODY = form_or_json(
    {
        "csrf_token": "The operator session's CSRF token (or the X-CSRF-Token header); "
        "API tokens need none."
    },
    required=False,
)


@router.get(
    "",
    response_model=DocumentsOverview,
    dependencies=[require("read", login_page=True)],
    responses=error_responses(401, 403, 503),
)
async def documents_page(
    request: Request,
    session: SessionDep,
    llm: LLMDep,
    values: RuntimeValuesDep,
    vector: VectorSupportDep,
    q: Annotated[str | None, Query(max_length=2000, description="Search, on the page.")] = None,
    k: K = 5,
) -> Response:
    """Counts by status and by embedding model, the failures with their reason and the
    re-embedding's progress (the page to browsers, with a search box, JSON to programs)."""
    model = values["embedding_model"].value
    overview = await service.overview(session, model)
    if not wants_html(request):
        return JSONResponse(overview.model_dump(mode="json"))
    return await pages.documents(
        request, overview, session=session, support=vector, llm=llm, query=q or None, k=k
    )


@router.get(
    "/progress",
    response_model=ReembedProgress,
    dependencies=[require("read")],
    responses=error_responses(401, 403, 503),
)
async def progress(request: Request, session: SessionDep, values: RuntimeValuesDep) -> Response:
    """How many documents hold a vector of the embedding model in force, out of all (an
    HTML fragment for htmx, which polls it while documents wait)."""
    found = await reembed.progress(session, values["embedding_model"].value)
    if wants_html(request):
        return pages.progress(request, found)
    return JSONResponse(found.model_dump(mode="json"))


@router.post(
    "/reembed",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ReembedQueued,
    dependencies=[require("write")],
    openapi_extra=_CSRF_BODY,
    responses=error_responses(401, 403, 409, 415, 503),
)
async def reembed_documents(
    request: Request, engine: EngineDep, queue: QueueDep, values: StoredRuntimeValuesDep
) -> Response:
    """Queue every document embedded by another model than the one in force: marked pending
    (their old vectors kept until the new ones are stored), then embedded by the worker.
    Idempotent; ``GET /documents/progress`` follows it."""
    await submitted_values(request)  # a form or JSON, else 415 (require() checked the CSRF token)
    queued = await service.reembed_all(engine, queue, values["embedding_model"].value)
    if wants_html(request):
        flash(request, "success", queued.detail)
        return RedirectResponse("/documents#reembed-heading", status_code=303)
    return JSONResponse(queued.model_dump(mode="json"), status_code=202)


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
    """Store up to 100 documents at once; the worker embeds them."""
    return await service.accept(unit, queue, batch.documents)


@router.get(
    "/search",
    response_model=SearchResults,
    dependencies=[require("read")],
    responses=error_responses(401, 403, 503),
)
async def search(
    request: Request,
    session: SessionDep,
    llm: LLMDep,
    values: RuntimeValuesDep,
    vector: VectorSupportDep,
    q: Q,
    k: K = 5,
) -> Response:
    """The ``k`` documents nearest in meaning to ``q``, compared by the embedding model in
    force only; ``pending`` counts the documents not searched (no vector of that model
    yet). 503 with the reason when the LLM or pgvector is not there. The results as an
    HTML fragment for htmx (the Documents page)."""
    model = values["embedding_model"].value
    found = await service.search(session, vector, llm, model, q, k)
    if request.headers.get("hx-request"):
        return pages.results(request, found)
    return JSONResponse(found.model_dump(mode="json"))


@router.get(
    "/{document_id}",
    response_model=DocumentOut,
    dependencies=[require("read")],
    responses=error_responses(401, 403, 404, 503),
)
async def get_document(document_id: DocumentId, session: SessionDep) -> DocumentOut:
    """A document and whether the worker has embedded it yet."""
    return await service.get(session, document_id)


@router.delete(
    "/{document_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[require("write")],
    responses=error_responses(401, 403, 404, 503),
)
async def delete_document(document_id: DocumentId, session: SessionDep) -> None:
    """Delete a document and its vector; 404 if there is none."""
    await service.delete(session, document_id)


@router.post(
    "/{document_id}/delete",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[require("write")],
    openapi_extra=_CSRF_BODY,
    responses=error_responses(401, 403, 404, 415, 503),
)
async def delete_document_form(
    request: Request, document_id: DocumentId, session: SessionDep
) -> Response:
    """``DELETE /documents/{id}`` for an HTML form (a browser without JavaScript cannot
    send DELETE): back to the Documents page, saying what was deleted."""
    await submitted_values(request)  # a form or JSON, else 415 (require() checked the CSRF token)
    await service.delete(session, document_id)
    if wants_html(request):
        flash(request, "success", f"Deleted document {document_id}.")
        return RedirectResponse("/documents", status_code=303)
    return Response(status_code=204)
