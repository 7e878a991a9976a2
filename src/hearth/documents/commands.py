"""``hearth documents reembed``: the Documents page's re-embed button for terminals and
scripts. It starts nothing: it connects to ``DATABASE_URL`` or to the embedded PostgreSQL of
a running ``hearth serve``, marks the documents, sends one embedding run to the queue the
workers read, and with ``--wait`` follows the progress the workers make."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, TextIO

from sqlalchemy.ext.asyncio import AsyncEngine

from hearth.config.service import ConfigService
from hearth.db.commands import command_session
from hearth.db.embedded import running_database_url
from hearth.documents import reembed, service
from hearth.documents.schemas import ReembedProgress
from hearth.worker.queue import TaskQueue

if TYPE_CHECKING:
    from celery import Celery

    from hearth.config.settings import Settings

EXIT_OK = 0
EXIT_FAILURE = 1
POLL_SECONDS = 1.0


class ProgressLine:
    """On a terminal, one line rewritten in place; otherwise a plain line per change, so a
    log file or a pipe gets no carriage returns."""

    def __init__(self, out: TextIO, *, terminal: bool) -> None:
        self.out = out
        self.terminal = terminal
        self.last: str | None = None

    def show(self, now: ReembedProgress) -> None:
        """Show ``now`` if it differs from what is shown."""
        text = describe(now)
        if text == self.last:
            return
        self.last = text
        if self.terminal:
            self.out.write(f"\r\x1b[2K{text}")
        else:
            self.out.write(f"{text}\n")
        self.out.flush()

    def end(self) -> None:
        """Leave the line as it is and go to the next."""
        if self.terminal and self.last is not None:
            self.out.write("\n")
            self.out.flush()


def describe(now: ReembedProgress) -> str:
    """``1200/5000 documents embedded by MODEL (24%), 3800 waiting (12 failed)``."""
    percent = 100 * now.done // now.total if now.total else 100
    text = f"{now.done}/{now.total} documents embedded by {now.model} ({percent}%)"
    if now.waiting:
        text += f", {now.waiting} waiting"
        if now.failed:
            text += f" ({now.failed} after a failed attempt)"
    return text


async def run(
    settings: Settings, out: TextIO, *, wait: bool, terminal: bool, stall_seconds: float
) -> int:
    """Queue every document embedded by another model; with ``wait``, follow until each
    holds a vector of the model in force (0), or until ``stall_seconds`` pass without
    progress (1, naming the failures' reasons)."""
    url = running_database_url(settings.database_url, settings.hearth_data_dir)
    async with command_session(settings.database_url, settings.hearth_data_dir) as session:
        values = await ConfigService(settings).values_in_force(session)
        model = values["embedding_model"].value
        engine = session.bind
        assert isinstance(engine, AsyncEngine)
        queue = TaskQueue(lambda: _celery(settings, url))
        try:
            queued = await service.reembed_all(engine, queue, model)
        finally:
            queue.close()
        out.write(queued.detail + "\n")
        if not wait:
            out.write(describe(queued.progress) + "\n")
            return EXIT_OK
        return await _follow(engine, model, out, terminal=terminal, stall_seconds=stall_seconds)


def _celery(settings: Settings, url: str) -> Celery:
    from hearth.worker.app import create_celery

    return create_celery(settings, url, waits=False)


async def _follow(
    engine: AsyncEngine, model: str, out: TextIO, *, terminal: bool, stall_seconds: float
) -> int:
    line = ProgressLine(out, terminal=terminal)
    best, since = -1, time.monotonic()
    while True:
        # A connection per look: no transaction stays open (and holds back VACUUM) for
        # the hours a large library may take.
        async with engine.connect() as connection:
            now = await reembed.progress(connection, model)
        line.show(now)
        if now.complete:
            line.end()
            out.write(f"Done: every document is embedded by {model}.\n")
            return EXIT_OK
        if now.done > best:
            best, since = now.done, time.monotonic()
        elif not now.waiting or time.monotonic() - since >= stall_seconds:
            line.end()
            await _explain_stall(engine, now, out)
            return EXIT_FAILURE
        await asyncio.sleep(POLL_SECONDS)


async def _explain_stall(engine: AsyncEngine, now: ReembedProgress, out: TextIO) -> None:
    if not now.waiting:
        out.write(
            f"{now.total - now.done} documents are embedded by another model and not queued "
            "(the model changed meanwhile?): run `hearth documents reembed` again.\n"
        )
        return
    out.write("No progress: is a worker running (`hearth worker`) and the LLM reachable?\n")
    from sqlalchemy.ext.asyncio import AsyncSession

    from hearth.documents import repository

    async with AsyncSession(engine) as session:
        failures = await repository.failures(session, 5)
    out.writelines(f"  document {failure.id}: {failure.error}\n" for failure in failures)
