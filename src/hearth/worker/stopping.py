"""Whether this process's worker was told to stop, for a task that does several pieces of
work in one run (an embedding run does batch after batch): it ends after the piece in hand.

Celery hears SIGTERM in the worker's main process and waits for the pool's children to
finish their task; the children are not told. So the main process keeps one shared byte,
mapped before the children are forked (they see it change), and sets it as its shutdown
begins; a task reads it between two pieces of work.
"""

from __future__ import annotations

import mmap

from celery.signals import worker_shutting_down

_flag: mmap.mmap | None = None


def install() -> None:
    """In the worker's main process, before the pool is forked: the shared byte, set when
    the worker begins to shut down (warm or cold)."""
    global _flag  # noqa: PLW0603 (one flag per worker, shared with its pool's children)
    if _flag is None:
        _flag = mmap.mmap(-1, 1)  # anonymous and shared: what a forked child maps too
    worker_shutting_down.connect(_set, weak=False, dispatch_uid=__name__)


def _set(**_kwargs: object) -> None:
    if _flag is not None:
        _flag[0] = 1


def requested() -> bool:
    """Whether the worker began to shut down; False outside a worker (nothing installed)."""
    return _flag is not None and _flag[0] == 1
