"""The last log events at WARNING or above of this process, kept in memory for diagnostics.

A structlog processor placed after the redaction (``setup.py``): what it keeps has had every
secret masked already, exactly as the line written. It keeps a bounded number of events (a
``deque`` drops the oldest), never a file: a bug report asks "what went wrong lately here",
not a log archive. A line the repeat limiter holds back never reaches it; the count that
sums those lines up does.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from typing import Any

from structlog.typing import EventDict, WrappedLogger

CAPACITY = 200
# The levels kept, as ``add_log_level`` names them (``exception`` is logged as ``error``).
KEPT_LEVELS = frozenset({"warning", "error", "critical"})
# A value longer than this is cut (a traceback, a library's dump of its state): 200 events
# stay within about a megabyte whatever they carry.
MAX_VALUE_CHARACTERS = 4000


class LogRing:
    """A thread-safe ring of the newest ``capacity`` events at WARNING or above."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self.dropped = 0  # events pushed out by newer ones since the process started
        os.register_at_fork(after_in_child=self._forget)

    @property
    def capacity(self) -> int:
        """How many events the ring holds at most."""
        return self._events.maxlen or 0

    def __call__(
        self, _logger: WrappedLogger, _method_name: str, event_dict: EventDict
    ) -> EventDict:
        """Keep a copy of ``event_dict`` if it is a warning or worse; pass it on unchanged."""
        # The one test every line pays: a lookup and a set membership.
        if event_dict.get("level") in KEPT_LEVELS:
            self.keep(event_dict)
        return event_dict

    def keep(self, event_dict: EventDict) -> None:
        """Add a copy of one event (values cut at ``MAX_VALUE_CHARACTERS``)."""
        kept = {str(key): _bounded(value) for key, value in event_dict.items()}
        with self._lock:
            if len(self._events) == self._events.maxlen:
                self.dropped += 1
            self._events.append(kept)

    def events(self) -> list[dict[str, Any]]:
        """The events held, oldest first (copies: the caller may change them)."""
        with self._lock:
            return [dict(event) for event in self._events]

    def clear(self) -> None:
        """Forget every event (tests, and a forked child)."""
        with self._lock:
            self._events.clear()
            self.dropped = 0

    def _forget(self) -> None:
        # A forked child (Celery's pool) keeps its own events; the lock may have been held by
        # another thread of the parent at the fork.
        self._lock = threading.Lock()
        self._events = deque(maxlen=self._events.maxlen)
        self.dropped = 0


def _bounded(value: object) -> object:
    """``value`` as kept: long text cut; containers as they are (the redactor built them)."""
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARACTERS:
        return value[:MAX_VALUE_CHARACTERS] + f"… ({len(value) - MAX_VALUE_CHARACTERS} more)"
    return value
