"""Structured, redacted logs: ``configure_logging()`` once, then ``get_logger()``."""

from hearth.log.setup import configure_logging, get_logger

__all__ = ["configure_logging", "get_logger"]
