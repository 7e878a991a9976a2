"""A pool process runs every embedding run on one event loop it keeps; each run still runs
in the context of the task that asked for it (its trace span, its log fields), not in the
context the loop's runner copied on the process's first run."""

from __future__ import annotations

import contextvars

from hearth.config.settings import Settings
from hearth.documents import embedding, tasks

caller = contextvars.ContextVar[str]("caller")


class _ContextProbe(tasks._ProcessLoop):
    """The process loop, with a run that reports which task's context it ran in."""

    async def _run(
        self,
        settings: Settings,  # noqa: ARG002 (the signature of the method it stands in for)
        database_url: str,  # noqa: ARG002
        *,
        probe: bool,  # noqa: ARG002
    ) -> embedding.RunOutcome:
        return embedding.RunOutcome(embedded=len(caller.get()))


def _run_as(loop: tasks._ProcessLoop, name: str) -> int:
    def task() -> int:
        caller.set(name)
        return loop.run(Settings.model_construct(), "unused", probe=False).embedded

    return contextvars.copy_context().run(task)


def test_each_run_sees_the_context_of_its_own_task() -> None:
    loop = _ContextProbe()
    try:
        assert _run_as(loop, "a") == 1
        assert _run_as(loop, "second") == len("second")  # was 1: the first task's context
        assert _run_as(loop, "third!!") == len("third!!")
    finally:
        loop.close()
