"""Libraries without the parts of them Hearth never uses.

Some libraries import more when it happens to be installed (development tools and Hearth's
`traces` extra bring it in): structlog imports rich to draw tracebacks in colour on a
terminal, httpx its own command line (``httpx/_main.py``, with rich and pygments), and
redis-py (8) the OpenTelemetry SDK's metrics, for metrics of its own that Hearth never turns
on. That costs every process that imports them about 10 MB, 2.5 MB and 2.3 MB, and a tenth
of its start-up, for features a service never uses: console logs print plain tracebacks
instead, Hearth never runs httpx's command line, and its metrics are Prometheus's (its
traces use the SDK's traces, never its metrics).
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

# Modules refused to every importer, each with the reason its ImportError gives. Each
# importer above imports it inside ``try`` and does without it when the import fails:
# httpx defines a ``main`` that says its command line is not installed, redis-py leaves
# its own metrics off.
REFUSED = {
    "httpx._main": "httpx's command line is not used here",
    "opentelemetry.sdk.metrics": "Hearth exports no OpenTelemetry metrics (see /metrics)",
}


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


class _RefuseUnused(importlib.abc.MetaPathFinder):
    """Refuses to import the modules in ``REFUSED``, whichever module asks, and when."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,  # noqa: ARG002 (the finder protocol's signature)
        target: ModuleType | None = None,  # noqa: ARG002
    ) -> ModuleSpec | None:
        if (reason := REFUSED.get(fullname)) is not None:
            raise ImportError(reason, name=fullname)
        return None  # every other module: the next finder's


def refuse_unused_modules() -> None:
    """From now on, ``import httpx`` leaves rich, pygments and its command line out, and
    ``import redis`` the OpenTelemetry SDK's metrics. Once per process; no effect on a
    module already imported."""
    if not any(isinstance(finder, _RefuseUnused) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RefuseUnused())
