"""The worker's side of documents: embed what is pending.

Idempotent, as every Hearth task: it embeds whatever is still pending, so a redelivered
task, or one whose documents another task already took, simply finds less to do.
"""

from __future__ import annotations

import asyncio
from typing import Any

from celery import shared_task
from celery.signals import worker_ready
from sqlalchemy.ext.asyncio import AsyncSession

from hearth.config.service import ConfigService
from hearth.config.settings import Settings
from hearth.db import engine as db_engine
from hearth.db.vector import VectorSupport
from hearth.documents import service
from hearth.kit.text import first_line
from hearth.llm.adapter import LLMUnavailable
from hearth.llm.provider import LLMChoice, LLMProvider
from hearth.log import get_logger

log = get_logger(__name__)

# Whether the database can store vectors, read once per worker process.
_vector_support = VectorSupport()

# The LLM may be away for a while (a Pi rebooting, a model loading): try again after
# 10 s, 20 s, 40 s … up to 10 minutes apart, for about an hour in all.
MAX_RETRIES = 10
MAX_BACKOFF_SECONDS = 600


@worker_ready.connect  # type: ignore[untyped-decorator]
def _embed_what_waits(sender: Any, **_kwargs: object) -> None:  # noqa: ANN401 (Celery is untyped: the worker's consumer)
    """A starting worker asks for one embedding run: documents stored while the queue was
    down (or while no worker ran) get embedded without anyone adding another."""
    try:
        sender.app.send_task(service.EMBED_TASK)
    except Exception as exc:  # noqa: BLE001 (the broker went away again; the next document will do it)
        log.warning("documents_sweep_not_sent", reason=first_line(exc))


@shared_task(name=service.EMBED_TASK, bind=True, max_retries=MAX_RETRIES)  # type: ignore[untyped-decorator]
def embed_documents(self: Any) -> dict[str, int]:  # noqa: ANN401 (Celery is untyped: the bound task)
    """Embed every pending document with the embedding model in force."""
    settings: Settings = self.app.conf.hearth_settings
    try:
        embedded = asyncio.run(_embed_pending(settings, self.app.conf.hearth_database_url))
    except LLMUnavailable as exc:
        countdown = min(MAX_BACKOFF_SECONDS, 10 * 2**self.request.retries)
        log.info("documents_embedding_retry", in_seconds=countdown, reason=exc.message)
        # After the last retry the task fails with the reason; the documents stay pending
        # and the next document added (or a worker restart) takes them up again.
        raise self.retry(exc=exc, countdown=countdown) from None
    return {"embedded": embedded}


async def _embed_pending(settings: Settings, database_url: str) -> int:
    import httpx

    engine = db_engine.create_engine(database_url)
    try:
        async with AsyncSession(engine) as session:
            values = await ConfigService(settings).values_in_force(session)
        async with httpx.AsyncClient() as client:
            provider = LLMProvider(lambda: client, settings.bound_llm_api_key())
            llm = provider.adapter(LLMChoice.of(values))
            model = values["embedding_model"].value
            return await service.embed_pending(engine, _vector_support, llm, model)
    finally:
        await engine.dispose()
