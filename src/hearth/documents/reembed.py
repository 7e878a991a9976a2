"""Re-embedding: after the embedding model changes, every document embedded by another
model is queued again, and the worker embeds it with the new one.

Nothing here keeps state of its own: progress is read from the documents themselves (how
many hold a vector of the model in force, out of all), so the page, the command line and
any number of web processes agree, and a re-embedding interrupted anywhere (the web process,
the command, a worker killed) is finished by pressing the button again, or by nothing at
all once the documents are marked: the embedding runs and the worker's sweep carry on.

Old vectors stay until the new ones are stored, but a search only compares vectors of the
query's model (vectors of two models are not comparable), so meanwhile it answers from the
documents already re-embedded and says how many it could not see.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from hearth.documents import repository
from hearth.documents.schemas import ReembedProgress
from hearth.errors import HearthError
from hearth.log import get_logger

log = get_logger(__name__)

# Documents marked per transaction: short row locks, and a store of the worker's waits
# at most one batch's update.
REQUEUE_BATCH_SIZE = 500


class NoEmbeddingModel(HearthError):
    """No embedding model is set, so there is nothing to re-embed with: 409."""

    status_code = 409


async def requeue_other_models(engine: AsyncEngine, model: str) -> int:
    """Mark pending every document embedded by another model than ``model``, in batches of
    ``REQUEUE_BATCH_SIZE``, each its own transaction; how many were marked. Idempotent:
    what a run interrupted half way did stays done, and the next run marks the rest."""
    if not model:
        raise NoEmbeddingModel("No embedding model is set: set one on the config page first.")
    marked, after = 0, 0
    while True:
        async with engine.begin() as connection:
            ids = await repository.requeue_batch(connection, model, after, REQUEUE_BATCH_SIZE)
        if not ids:
            break
        marked += len(ids)
        after = ids[-1]
    log.info("documents_requeued", count=marked, model=model)
    return marked


async def progress(connection: AsyncConnection | AsyncSession, model: str) -> ReembedProgress:
    """How far the documents are from all holding a vector of ``model``."""
    done, total, waiting, failed = await repository.progress(connection, model)
    return ReembedProgress(model=model, done=done, total=total, waiting=waiting, failed=failed)
