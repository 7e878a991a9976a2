"""The Documents page and its htmx fragments: how the router's answers look to a browser."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from hearth.db.vector import VectorSupport
from hearth.documents import service
from hearth.documents.schemas import DocumentsOverview, ReembedProgress, SearchResults
from hearth.errors import HearthError
from hearth.llm.adapter import LLMAdapter
from hearth.web import csrf
from hearth.web.templating import TEMPLATES, render

# How often the page asks for the re-embedding's progress while documents wait.
PROGRESS_POLL = "every 2s"


async def documents(  # noqa: PLR0913 (the resources the page shows)
    request: Request,
    overview: DocumentsOverview,
    *,
    session: AsyncSession,
    support: VectorSupport,
    llm: LLMAdapter,
    query: str | None,
    k: int,
) -> Response:
    """The page; with ``query``, its results (or why there are none) under the search box,
    so that the search works without JavaScript too."""
    found: SearchResults | None = None
    search_error: str | None = None
    if query:
        try:
            found = await service.search(session, support, llm, overview.model, query, k)
        except HearthError as exc:  # the LLM or pgvector away: the page says so, still 200
            search_error = exc.message
    context = {
        "overview": overview,
        "progress_view": overview.progress,
        "poll": PROGRESS_POLL,
        "query": query or "",
        "k": k,
        "found": found,
        "search_error": search_error,
    }
    return await render(request, "documents.html", context)


def progress(request: Request, found: ReembedProgress) -> Response:
    """The progress fragment; it polls on while documents wait, and stops once none do."""
    context = {"progress_view": found, "poll": PROGRESS_POLL}
    return TEMPLATES.TemplateResponse(request, "_documents_progress.html", context)


def results(request: Request, found: SearchResults) -> Response:
    """The search results fragment."""
    context = {"found": found, "csrf_token": csrf.token_for(request.session)}
    return TEMPLATES.TemplateResponse(request, "_documents_results.html", context)
