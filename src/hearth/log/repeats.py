"""A dependency that stays down must not flood the log: the same line is let through a few
times a window, then counted, and the count is logged once as ``log_repeats_suppressed``.

"The same line" is the same logger and the same event name (Hearth's own events) or message
template (standard-library records, Celery's and kombu's among them: the template, not the
text, whose numbers change from one retry to the next), the same exception type, if any, and
the same client address, if the line names one (``login_failed``: one address's flood of
wrong passwords is limited, another address's first one is still written).
What is limited: every line at WARNING and above; below that, only a library's line repeated
word for word (Celery's "Skipping prefetch count reduction…" in its reconnect loop). Hearth's
own events below WARNING (``request_finished``, ``health_check``…) are never limited: they
are the record of what happened, one line per thing done.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import structlog

SUMMARY_EVENT = "log_repeats_suppressed"
SUMMARY_LOGGER = "hearth.log.repeats"

DEFAULT_LIMIT = 5
DEFAULT_WINDOW_SECONDS = 60.0

# Keys are forgotten once this many are tracked (all but those holding a count), so a stream
# of distinct lines (one per task id) cannot grow the table without bound.
_MAX_KEYS = 1000
# A template longer than this is cut in the summary line (Celery's run to several lines).
_SHOWN_CHARACTERS = 200

# A %-placeholder of the standard library's message templates: ``%s``, ``%(name)r``, ``%5.2f``.
_PLACEHOLDER = re.compile(r"%(\([^)]*\))?[-#0 +]*(\*|\d+)?(\.(\*|\d+))?[a-zA-Z%]")

# Logger, event or template, exception type and client address ("" without one).
Key = tuple[str, str, str, str]


@dataclass
class _Window:
    """One key's current window: when it ends, lines let through, lines held back."""

    ends: float
    passed: int = 1
    suppressed: int = 0
    level: int = logging.NOTSET  # the highest level held back: the summary's own


class RepeatLimiter(logging.Filter):
    """A filter for the one log handler: at most ``limit`` lines per key per ``window``
    seconds; the rest are counted and summed up in one line when the window ends (or
    earlier, when the next line of that key arrives; at the latest when the process exits).

    Thread-safe (Uvicorn and Celery log from threads); a forked child (Celery's pool) starts
    with a clean slate. ``limit`` 0 turns it off.
    """

    def __init__(
        self,
        limit: int = DEFAULT_LIMIT,
        window: float = DEFAULT_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.limit = limit
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[Key, _Window] = {}
        self._timer: threading.Timer | None = None
        self._summaries = structlog.stdlib.get_logger(SUMMARY_LOGGER)
        os.register_at_fork(after_in_child=self._forget)

    def configure(self, limit: int, window: float) -> None:
        """New bounds; what was held back so far is summed up first, and counting restarts."""
        self.flush()
        self.limit = limit
        self.window = window

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether ``record`` is written: False for a repeat past the limit, which is counted."""
        if self.limit <= 0 or record.name == SUMMARY_LOGGER:
            return True
        key = _key(record)
        if key is None:
            return True
        now = self._clock()
        ended: _Window | None = None
        with self._lock:
            window = self._windows.get(key)
            if window is None or now >= window.ends:
                if window is not None and window.suppressed:
                    ended = window  # its summary goes out before this line
                self._windows[key] = _Window(ends=now + self.window)
                if len(self._windows) > _MAX_KEYS:
                    self._forget_quiet_keys()
                passes = True
            elif window.passed < self.limit:
                window.passed += 1
                passes = True
            else:
                window.suppressed += 1
                window.level = max(window.level, record.levelno)
                if self._timer is None:
                    self._start_timer(window.ends - now)
                passes = False
        if ended is not None:
            self._summarize(key, ended)
        return passes

    def flush(self) -> None:
        """Sum up every count now, ended window or not (at exit, and on reconfiguring)."""
        with self._lock:
            held = [(key, w) for key, w in self._windows.items() if w.suppressed]
            self._windows.clear()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        for key, window in held:
            self._summarize(key, window)

    def _sweep(self) -> None:
        """The timer's work: sum up each window that has ended with a count."""
        now = self._clock()
        with self._lock:
            self._timer = None
            ended = [(key, w) for key, w in self._windows.items() if w.suppressed and w.ends <= now]
            for key, _ in ended:
                del self._windows[key]
            pending = [w.ends for w in self._windows.values() if w.suppressed]
            if pending:
                self._start_timer(min(pending) - now)
        for key, window in ended:
            self._summarize(key, window)

    def _start_timer(self, delay: float) -> None:
        # Called with the lock held. One timer at a time, for the earliest window to end.
        self._timer = threading.Timer(max(delay, 0.0), self._sweep)
        self._timer.daemon = True  # never holds up an exit; flush() covers the exit
        self._timer.name = "hearth-log-repeats"
        self._timer.start()

    def _summarize(self, key: Key, window: _Window) -> None:
        logger, event, error, client = key
        fields: dict[str, object] = {
            "suppressed": window.suppressed,
            "repeated_logger": logger,
            "repeated_event": event[:_SHOWN_CHARACTERS],
            "window_seconds": self.window,
        }
        if error:
            fields["repeated_error"] = error
        if client:
            fields["repeated_client"] = client
        # A fresh context: the request or task that happens to trigger the summary is not the
        # one the summary is about, so none of its bound values (request_id…) belong on it.
        contextvars.Context().run(self._summaries.log, window.level, SUMMARY_EVENT, **fields)

    def _forget_quiet_keys(self) -> None:
        # Called with the lock held. A key without a count loses nothing by being forgotten:
        # at worst its next lines are let through as if new.
        for key in [key for key, w in self._windows.items() if not w.suppressed]:
            del self._windows[key]

    def _forget(self) -> None:
        # In a forked child: the parent's counts are the parent's to report, its lock may
        # have been held by another thread at the fork, and its timer thread is not here.
        self._lock = threading.Lock()
        self._windows = {}
        self._timer = None


def _key(record: logging.LogRecord) -> Key | None:
    """What makes ``record`` "the same" as an earlier line; None when it is never limited."""
    message = record.msg
    if isinstance(message, dict):  # one of Hearth's events, from structlog
        if record.levelno < logging.WARNING:
            return None
        client = message.get("client")
        return (
            record.name,
            str(message.get("event")),
            _error_name(message.get("exc_info")),
            "" if client is None else str(client),
        )
    if record.levelno >= logging.WARNING and isinstance(message, str) and _has_words(message):
        return record.name, message, _error_name(record.exc_info), ""
    # A quiet line, or a template that is only placeholders (the ``py.warnings`` logger's
    # "%s"): the same only when word for word the same.
    try:
        text = record.getMessage()
    except Exception:  # noqa: BLE001 (a broken template is the formatter's to report)
        text = str(message)
    return record.name, text, _error_name(record.exc_info), ""


@lru_cache(maxsize=1024)
def _has_words(template: str) -> bool:
    """Whether a template says something besides its placeholders."""
    return any(character.isalpha() for character in _PLACEHOLDER.sub("", template))


def _error_name(exc_info: object) -> str:
    """The exception type of a record's ``exc_info`` in any of its forms, or ""."""
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        return type(exc_info).__name__
    if isinstance(exc_info, tuple) and exc_info and isinstance(exc_info[0], type):
        return exc_info[0].__name__
    return ""
