"""structlog and httpx without rich.

Both import rich when it is installed (development tools bring it in): structlog to draw
tracebacks in colour on a terminal, httpx for its own command line (``httpx/_main.py``, with
pygments). That costs every process that imports them about 10 MB and 2.5 MB, and a tenth of
its start-up, for features a service never uses: console logs print plain tracebacks instead,
and Hearth never runs httpx's command line.
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

# httpx's command line: ``httpx/__init__`` imports it inside ``try``, and defines a ``main``
# that says it is not installed when the import fails.
HTTPX_COMMAND_LINE = "httpx._main"


def import_structlog_plain() -> None:
    """Import structlog as if rich were not installed; rich stays importable afterwards, for
    whatever else uses it. A no-op once structlog is imported."""
    if "structlog" in sys.modules or "rich" in sys.modules:
        return
    sys.modules["rich"] = None  # type: ignore[assignment]  # "import rich" raises ImportError
    try:
        import structlog  # noqa: F401 (the import is the point)
    finally:
        del sys.modules["rich"]


class _RefuseHttpxCommandLine(importlib.abc.MetaPathFinder):
    """Refuses to import httpx's command line, whichever module imports httpx, and when."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,  # noqa: ARG002 (the finder protocol's signature)
        target: ModuleType | None = None,  # noqa: ARG002
    ) -> ModuleSpec | None:
        if fullname == HTTPX_COMMAND_LINE:
            raise ImportError("httpx's command line is not used here", name=fullname)
        return None  # every other module: the next finder's


def refuse_httpx_command_line() -> None:
    """From now on, ``import httpx`` leaves rich, pygments and its command line out. Once
    per process; no effect on an httpx already imported."""
    if not any(isinstance(finder, _RefuseHttpxCommandLine) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RefuseHttpxCommandLine())
