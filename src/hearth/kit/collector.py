"""The garbage collector while a long-running process starts.

A process that starts imports about a thousand modules and builds its app: some 190 000
objects that live as long as it does. With automatic collection on, the collector walks
them again and again as they pile up (a tenth to a fifth of the server's start-up: 0.05 to
0.14 s of CPU on a 2-core machine), and every full collection later walks them once more,
a pause of 35 to 70 ms in the middle of a request. ``pause`` turns it off for the start-up;
``resume`` sets what start-up built where no collection looks (``gc.freeze``), then turns
it back on. A start that waits (the worker, for the migrations) resumes while it waits.

What is frozen is never collected: the few hundred cyclic leftovers of the imports (884
objects in ``hearth serve``) stay for the life of the process. Python's documentation gives
the same recipe for a process that forks (the worker): off early, frozen before the fork,
so that a child's collections do not write to the pages it shares with its parent.
"""

from __future__ import annotations

import gc


def pause() -> None:
    """No automatic collection until ``resume``: call it first thing at start-up."""
    gc.disable()


def resume(*, set_aside: bool = True) -> None:
    """Put every object built so far out of the collector's sight, then collect again as
    usual: call it once the long-lived objects (modules, the app) exist. ``set_aside=False``
    for a process that has built nothing to keep (a short command): collect, nothing more."""
    if set_aside:
        gc.freeze()
    gc.enable()
