"""Liveness (``/livez``): whether this process can still do its job, or should be restarted.

It checks no dependency: a database outage must not restart every replica. It fails only
when the process itself has given up on something only a restart can mend (the embedded
PostgreSQL that would not come back), and then says why.
"""

from __future__ import annotations

from collections.abc import Callable

from hearth.log import get_logger

log = get_logger(__name__)


class Liveness:
    """Alive until ``fail`` is called; then failing for good, with the reason."""

    def __init__(self) -> None:
        self.reason = ""
        self._listeners: list[Callable[[str], None]] = []

    @property
    def alive(self) -> bool:
        """False once something called ``fail``."""
        return not self.reason

    def fail(self, reason: str) -> None:
        """Fail from now on for ``reason`` (Hearth's own words, shown to every caller), and
        tell the listeners (the server, which then stops with exit status 1)."""
        if self.reason:
            return
        self.reason = reason
        log.error("liveness_failed", reason=reason)
        for listener in self._listeners:
            listener(reason)

    def on_failure(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(reason)`` when ``fail`` is first called."""
        self._listeners.append(listener)
