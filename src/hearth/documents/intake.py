"""The documents' edges, shared by the HTTP API and the MCP tools: taking documents in
(commit them, then ask the worker to embed them) and searching them.
 Documents are the user's data: once committed
they are kept even if the task queue is down (Redis rebooting), and the answer says so,
instead of a 503 that would make the client send them again as duplicates. Pending
documents are embedded by the next embedding task, whichever asked for it; every worker
sends one when it starts.
"""

from __future__ import annotations

from collections.abc import Sequence

from hearth.documents import service
from hearth.documents.schemas import DocumentIn, DocumentsAccepted, SearchResults
from hearth.errors import HearthError
from hearth.log import get_logger
from hearth.runtime import Runtime
from hearth.worker.queue import PendingTask, QueueUnavailable

log = get_logger(__name__)


async def accept(runtime: Runtime, documents: Sequence[DocumentIn]) -> DocumentsAccepted:
    """Store ``documents`` (committed) and queue their embedding; what happened."""
    if runtime.sessions is None:
        raise HearthError("The database is not available.", status_code=503)
    async with runtime.sessions() as session:
        ids = await service.add(session, documents)
        await session.commit()
    task = PendingTask(service.EMBED_TASK)
    try:
        await runtime.task_queue().send(task)
    except QueueUnavailable as exc:
        log.warning("documents_embedding_deferred", ids=ids, reason=exc.reason)
        return DocumentsAccepted(
            ids=ids,
            task_id=None,
            detail=f"Stored, not embedded yet: the task queue is unavailable ({exc.reason}). "
            "They are embedded when a worker next starts or another document is added; "
            "do not send them again.",
        )
    return DocumentsAccepted(ids=ids, task_id=task.id)


async def search(runtime: Runtime, query: str, k: int) -> SearchResults:
    """The ``k`` documents nearest in meaning to ``query``, with the embedding model and LLM
    in force; 503 errors saying why when the LLM or pgvector is not there."""
    if runtime.sessions is None:
        raise HearthError("The database is not available.", status_code=503)
    values = await runtime.runtime_settings()
    llm = await runtime.current_llm(values)
    async with runtime.sessions() as session:
        return await service.search(session, llm, values["embedding_model"].value, query, k)
