"""Structured, redacted logs: ``configure_logging()`` once, then ``get_logger()``."""

from hearth.log.plain import import_structlog_plain, refuse_unused_modules

import_structlog_plain()  # before anything below imports structlog
refuse_unused_modules()  # before anything imports httpx or redis

from hearth.log.setup import configure_logging, get_logger, recent_events  # noqa: E402

__all__ = ["configure_logging", "get_logger", "recent_events"]
